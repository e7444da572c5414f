#include "kernels/ref/convert.h"

namespace pytransformer::kernels::ref {

void convert_row(const void* matrix, DType dtype, const float* row_scales, int64_t row, int64_t cols,
                 float* dst) {
  const int64_t first = row * cols;
  switch (dtype) {
    case DType::F32: {
      std::memcpy(dst, static_cast<const float*>(matrix) + first, sizeof(float) * cols);
      return;
    }
    case DType::F16: {
      const uint16_t* src = static_cast<const uint16_t*>(matrix) + first;
      for (int64_t c = 0; c < cols; ++c) dst[c] = f16_to_float(src[c]);
      return;
    }
    case DType::BF16: {
      const uint16_t* src = static_cast<const uint16_t*>(matrix) + first;
      for (int64_t c = 0; c < cols; ++c) dst[c] = bf16_to_float(src[c]);
      return;
    }
    case DType::INT8: {
      const int8_t* src = static_cast<const int8_t*>(matrix) + first;
      const float scale = row_scales[row];
      for (int64_t c = 0; c < cols; ++c) dst[c] = static_cast<float>(src[c]) * scale;
      return;
    }
    case DType::Q8_0:
    case DType::Q4_1: {
      const int64_t blocks = cols / kBlockValues;
      const auto* src = static_cast<const unsigned char*>(matrix) + row * row_bytes(dtype, cols);
      for (int64_t b = 0; b < blocks; ++b) {
        const unsigned char* block = src + b * static_cast<int64_t>(block_bytes(dtype));
        block_to_floats(block, dtype, dst + b * kBlockValues);
      }
      return;
    }
  }
}

void block_to_floats(const unsigned char* block, DType dtype, float* dst) {
  const float d = f16_to_float(load_u16(block));
  if (dtype == DType::Q8_0) {
    const auto* q = reinterpret_cast<const int8_t*>(block + 2);
    for (int64_t i = 0; i < kBlockValues; ++i) dst[i] = d * static_cast<float>(q[i]);
    return;
  }
  const float m = f16_to_float(load_u16(block + 2));
  const unsigned char* nibbles = block + 4;
  for (int64_t i = 0; i < kBlockValues / 2; ++i) {
    // Two roundings (no fused multiply-add), as ggml and the gguf package dequantise.
    const float low = d * static_cast<float>(nibbles[i] & 15);
    const float high = d * static_cast<float>(nibbles[i] >> 4);
    dst[i] = low + m;
    dst[i + kBlockValues / 2] = high + m;
  }
}

}  // namespace pytransformer::kernels::ref

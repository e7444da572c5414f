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
  }
}

}  // namespace pytransformer::kernels::ref

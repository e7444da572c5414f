// Element conversions of stored weights to float: IEEE half, bfloat16, int8 with per-row
// scales and the q8_0 / q4_1 blocks (docs/format.md). Exact: every f16/bf16 value is
// representable in f32, and blocks dequantise with ggml's f32 operations.
#pragma once

#include <cstdint>
#include <cstring>

#include "format/dtype.h"

namespace pytransformer::kernels::ref {

inline float bits_to_float(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, sizeof(value));
  return value;
}

inline float bf16_to_float(uint16_t value) { return bits_to_float(static_cast<uint32_t>(value) << 16); }

inline float f16_to_float(uint16_t value) {
  const uint32_t sign = static_cast<uint32_t>(value & 0x8000u) << 16;
  const uint32_t exponent = (value >> 10) & 0x1fu;
  const uint32_t mantissa = value & 0x3ffu;
  if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // inf, nan
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24, exact in float.
  const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

inline uint16_t load_u16(const unsigned char* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));  // little-endian, any alignment
}

// dst[c] = value of row `row` of the [rows, cols] matrix `matrix` of `dtype`, c < cols.
// row_scales: [rows], required for DType::INT8 and ignored otherwise. Block dtypes: cols a
// multiple of kBlockValues.
void convert_row(const void* matrix, DType dtype, const float* row_scales, int64_t row, int64_t cols,
                 float* dst);

// dst[0..kBlockValues) = the values of one q8_0 or q4_1 block (q8_0: d * q[i]; q4_1:
// d * n[i] + m rounded after each operation).
void block_to_floats(const unsigned char* block, DType dtype, float* dst);

}  // namespace pytransformer::kernels::ref

#include "kernels/ref/linear.h"

#include <cstddef>
#include <vector>

#include "kernels/ref/convert.h"

namespace pytransformer::kernels::ref {
namespace {

// Lanes of partial sums: the inner loops below are written so that the compiler turns each
// lane array into SIMD registers (SSE2 on the baseline build) without reassociating floats.
constexpr int64_t kLanes = 8;
// Rows of x kept in cache while every weight row of the column range streams past them.
constexpr int64_t kRowBlock = 64;

float reduce_lanes(const float* lanes) {
  const float a = (lanes[0] + lanes[4]) + (lanes[2] + lanes[6]);
  const float b = (lanes[1] + lanes[5]) + (lanes[3] + lanes[7]);
  return a + b;
}

float dot(const float* x, int64_t k, const float* w) {
  float acc[kLanes] = {};
  const int64_t body = k - k % kLanes;
  for (int64_t c = 0; c < body; c += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += x[c + l] * w[c + l];
  }
  for (int64_t c = body; c < k; ++c) acc[c - body] += x[c] * w[c];
  return reduce_lanes(acc);
}

// x . W[j] for a row W[j] of q8_0 / q4_1 blocks (linear.h): per block, the integers' dot
// product with x and (q4_1) the sum of x, scaled by the block's d and m.
float block_dot(const float* x, int64_t k, const unsigned char* row, DType dtype) {
  const int64_t stride = static_cast<int64_t>(block_bytes(dtype));
  float total = 0.0f;
  for (int64_t b = 0; b < k / kBlockValues; ++b) {
    const unsigned char* block = row + b * stride;
    const float* xb = x + b * kBlockValues;
    const float d = f16_to_float(load_u16(block));
    float products = 0.0f;
    if (dtype == DType::Q8_0) {
      const auto* q = reinterpret_cast<const int8_t*>(block + 2);
      for (int64_t i = 0; i < kBlockValues; ++i) products += xb[i] * static_cast<float>(q[i]);
      total += d * products;
      continue;
    }
    const unsigned char* nibbles = block + 4;
    float sum = 0.0f;
    for (int64_t i = 0; i < kBlockValues / 2; ++i) {
      products += xb[i] * static_cast<float>(nibbles[i] & 15);
      products += xb[i + kBlockValues / 2] * static_cast<float>(nibbles[i] >> 4);
      sum += xb[i] + xb[i + kBlockValues / 2];
    }
    total += d * products + f16_to_float(load_u16(block + 2)) * sum;
  }
  return total;
}

}  // namespace

void linear(const float* x, int64_t m, int64_t k, const void* weight, DType weight_dtype,
            const float* row_scales, const float* bias, int64_t n, int64_t column_begin,
            int64_t column_end, float* y) {
  if (is_block_dtype(weight_dtype)) {
    const auto* rows = static_cast<const unsigned char*>(weight);
    const int64_t stride = row_bytes(weight_dtype, k);
    for (int64_t j = column_begin; j < column_end; ++j) {
      const float b = bias ? bias[j] : 0.0f;
      for (int64_t i = 0; i < m; ++i) {
        y[i * n + j] = block_dot(x + i * k, k, rows + j * stride, weight_dtype) + b;
      }
    }
    return;
  }
  std::vector<float> converted;
  if (weight_dtype != DType::F32) converted.resize(static_cast<size_t>(k));
  for (int64_t row_begin = 0; row_begin < m; row_begin += kRowBlock) {
    const int64_t row_end = row_begin + kRowBlock < m ? row_begin + kRowBlock : m;
    for (int64_t j = column_begin; j < column_end; ++j) {
      const float* w;
      if (weight_dtype == DType::F32) {
        w = static_cast<const float*>(weight) + j * k;
      } else {
        convert_row(weight, weight_dtype, row_scales, j, k, converted.data());
        w = converted.data();
      }
      const float b = bias ? bias[j] : 0.0f;
      for (int64_t i = row_begin; i < row_end; ++i) y[i * n + j] = dot(x + i * k, k, w) + b;
    }
  }
}

}  // namespace pytransformer::kernels::ref

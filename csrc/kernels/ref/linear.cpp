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

}  // namespace

void linear(const float* x, int64_t m, int64_t k, const void* weight, DType weight_dtype,
            const float* row_scales, const float* bias, int64_t n, int64_t column_begin,
            int64_t column_end, float* y) {
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

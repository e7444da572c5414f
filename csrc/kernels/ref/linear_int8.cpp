#include "kernels/ref/linear_int8.h"

#include <cfloat>
#include <cmath>
#include <cstring>

namespace pytransformer::kernels::ref {

void quantize_rows_fixed(const float* x, int64_t m, int64_t k, float step, int8_t* q,
                         float* scales) {
  const int64_t stride = quantized_row_stride(k);
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    int8_t* qi = q + i * stride;
    std::memset(qi, 0, static_cast<size_t>(stride));
    scales[i] = step;
    for (int64_t c = 0; c < k; ++c) {
      float v = std::nearbyint(xi[c] / step);
      v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);  // NaN stays NaN: cast below
      qi[c] = v == v ? static_cast<int8_t>(v) : 0;
    }
  }
}

void quantize_rows(const float* x, int64_t m, int64_t k, int8_t* q, float* scales) {
  const int64_t stride = quantized_row_stride(k);
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    int8_t* qi = q + i * stride;
    std::memset(qi, 0, static_cast<size_t>(stride));
    float amax = 0.0f;
    for (int64_t c = 0; c < k; ++c) amax = std::fabs(xi[c]) > amax ? std::fabs(xi[c]) : amax;
    if (!(amax >= FLT_MIN)) {
      scales[i] = 1.0f;
      continue;
    }
    scales[i] = amax / 127.0f;
    const float inverse = 127.0f / amax;
    for (int64_t c = 0; c < k; ++c) {
      float v = std::nearbyint(xi[c] * inverse);
      v = v > 127.0f ? 127.0f : (v < -127.0f ? -127.0f : v);
      qi[c] = static_cast<int8_t>(v);
    }
  }
}

void linear_int8(const int8_t* q, const float* scales, int64_t m, int64_t k, const int8_t* weight,
                 const float* w_scales, const float* bias, int64_t n, int64_t column_begin,
                 int64_t column_end, float* y) {
  const int64_t stride = quantized_row_stride(k);
  for (int64_t i = 0; i < m; ++i) {
    const int8_t* qi = q + i * stride;
    for (int64_t j = column_begin; j < column_end; ++j) {
      const int8_t* wj = weight + j * k;
      int32_t acc = 0;
      for (int64_t c = 0; c < k; ++c) acc += static_cast<int32_t>(qi[c]) * wj[c];
      const float scale = scales[i] * w_scales[j];
      const float product = static_cast<float>(acc) * scale;
      y[i * n + j] = bias ? product + bias[j] : product;
    }
  }
}

}  // namespace pytransformer::kernels::ref

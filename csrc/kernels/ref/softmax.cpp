#include "kernels/ref/softmax.h"

#include <cmath>
#include <limits>

namespace pytransformer::kernels::ref {

void softmax(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * cols;
    float max_value = xr[0];
    for (int64_t c = 1; c < cols; ++c) max_value = xr[c] > max_value ? xr[c] : max_value;
    double total = 0.0;
    for (int64_t c = 0; c < cols; ++c) {
      xr[c] = std::exp(xr[c] - max_value);
      total += xr[c];
    }
    const float inverse = static_cast<float>(1.0 / total);
    for (int64_t c = 0; c < cols; ++c) xr[c] *= inverse;
  }
}

void log_softmax(float* x, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * cols;
    float max_value = -std::numeric_limits<float>::infinity();
    for (int64_t c = 0; c < cols; ++c) max_value = xr[c] > max_value ? xr[c] : max_value;
    if (max_value == -std::numeric_limits<float>::infinity()) continue;
    double total = 0.0;
    for (int64_t c = 0; c < cols; ++c) total += std::exp(double(xr[c]) - max_value);
    const double log_total = std::log(total);
    for (int64_t c = 0; c < cols; ++c) {
      xr[c] = static_cast<float>(double(xr[c]) - max_value - log_total);
    }
  }
}

int64_t argmax(const float* x, int64_t count) {
  int64_t best = 0;
  for (int64_t i = 1; i < count; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

}  // namespace pytransformer::kernels::ref

#include "kernels/ref/softmax.h"

#include <cmath>

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

}  // namespace pytransformer::kernels::ref

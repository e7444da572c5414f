#include "kernels/ref/rms_norm.h"

#include <cmath>

namespace pytransformer::kernels::ref {

void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, double epsilon,
              float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    double squares = 0.0;
    for (int64_t c = 0; c < dim; ++c) squares += static_cast<double>(xr[c]) * xr[c];
    const double inverse_rms = 1.0 / std::sqrt(squares / static_cast<double>(dim) + epsilon);
    float* yr = y + r * dim;
    for (int64_t c = 0; c < dim; ++c) {
      yr[c] = static_cast<float>(xr[c] * inverse_rms) * gamma[c];
    }
  }
}

}  // namespace pytransformer::kernels::ref

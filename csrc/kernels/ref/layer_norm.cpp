#include "kernels/ref/layer_norm.h"

#include <cmath>
#include <cstddef>
#include <vector>

namespace pytransformer::kernels::ref {

void layer_norm(const float* x, const float* residual, const float* gamma, const float* beta,
                int64_t rows, int64_t dim, double epsilon, float* y) {
  std::vector<float> sum(static_cast<size_t>(dim));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    const float* rr = residual ? residual + r * dim : nullptr;
    // The residual sum is rounded to f32 first, as the reference frameworks do.
    double mean = 0.0;
    for (int64_t c = 0; c < dim; ++c) {
      sum[c] = rr ? xr[c] + rr[c] : xr[c];
      mean += sum[c];
    }
    mean /= static_cast<double>(dim);
    double variance = 0.0;
    for (int64_t c = 0; c < dim; ++c) {
      const double centered = sum[c] - mean;
      variance += centered * centered;
    }
    variance /= static_cast<double>(dim);
    const double inverse_std = 1.0 / std::sqrt(variance + epsilon);
    float* yr = y + r * dim;
    for (int64_t c = 0; c < dim; ++c) {
      yr[c] = static_cast<float>((sum[c] - mean) * inverse_std) * gamma[c] + beta[c];
    }
  }
}

}  // namespace pytransformer::kernels::ref

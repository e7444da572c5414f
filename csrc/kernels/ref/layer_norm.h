// Reference layer normalisation over the last dimension, with an optional fused residual add:
//   s = x[r] + residual[r] (or x[r] when residual is nullptr)
//   y[r, c] = (s[c] - mean(s)) / sqrt(var(s) + epsilon) * gamma[c] + beta[c]
// x, residual, y: [rows, dim] row-major; y may alias x or residual. gamma, beta: [dim].
// Mean and (biased) variance are accumulated in double, the result rounded to f32.
#pragma once

#include <cstdint>

namespace pytransformer::kernels::ref {

void layer_norm(const float* x, const float* residual, const float* gamma, const float* beta,
                int64_t rows, int64_t dim, double epsilon, float* y);

}  // namespace pytransformer::kernels::ref

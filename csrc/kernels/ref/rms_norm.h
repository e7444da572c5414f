// Reference root-mean-square normalisation over the last dimension (Llama's RMSNorm):
//   y[r, c] = x[r, c] / sqrt(mean_c(x[r, c]^2) + epsilon) * gamma[c]
// x, y: [rows, dim] row-major; y may alias x. gamma: [dim].
// The mean of squares is accumulated in double, the normalised value rounded to f32 before the
// gain, as transformers' LlamaRMSNorm rounds it (to the input dtype) before `weight *`.
#pragma once

#include <cstdint>

namespace pytransformer::kernels::ref {

void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, double epsilon,
              float* y);

}  // namespace pytransformer::kernels::ref

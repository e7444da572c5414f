// CUDA layer normalisation fused with the residual add (reference: kernels/ref/layer_norm.h):
//   s = x[r] + residual[r] (or x[r]); y[r, c] = (s[c] - mean(s)) / sqrt(var(s) + epsilon) * gamma[c]
//   + beta[c]
// x, residual, y: [rows, dim] device memory; y may alias x or residual. gamma, beta: [dim].
// One block per row; mean and variance accumulated in double like the reference (in a
// different order, so they may differ from it in the last bits of the double).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pytransformer::kernels::cuda {

void layer_norm(const float* x, const float* residual, const float* gamma, const float* beta,
                int64_t rows, int64_t dim, double epsilon, float* y, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

// CUDA RMS normalisation (reference: kernels/ref/rms_norm.h):
//   y[r, c] = x[r, c] / sqrt(mean_c(x[r, c]^2) + epsilon) * gamma[c]
// x, y: [rows, dim] device memory; y may alias x. gamma: [dim].
// One block per row; the mean of squares accumulated in double like the reference (in a
// different order, so it may differ from it in the last bits of the double).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pytransformer::kernels::cuda {

void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, double epsilon,
              float* y, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

// CUDA element-wise sum (reference: kernels/ref/add.h): y[i] += x[i] for i < count, the residual
// connection of pre-norm layers. Device pointers; queued on `stream`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pytransformer::kernels::cuda {

void add(const float* x, float* y, int64_t count, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

// CUDA SSRU step (reference: kernels/ref/ssru.h). gates [n, 2d], previous [*, d] or nullptr,
// parent [n] (device memory; ignored when previous is null), cells and out [n, d] (out += the
// result when accumulate).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pytransformer::kernels::cuda {

void ssru_step(const float* gates, const float* previous, const int32_t* parent, int64_t n,
               int64_t d, bool accumulate, float* cells, float* out, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

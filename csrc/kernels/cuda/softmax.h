// CUDA softmax over the last dimension (reference: kernels/ref/softmax.h), in place.
// x: [rows, cols] device memory, cols >= 1. One block per row; the row is staged in shared
// memory, so cols is limited to max_softmax_columns().
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pytransformer::kernels::cuda {

int64_t max_softmax_columns();
void softmax(float* x, int64_t rows, int64_t cols, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

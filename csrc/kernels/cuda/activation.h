// CUDA activation (reference: kernels/ref/activation.h).
// Pointers are device memory; work is queued on `stream` (not synchronised).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "format/model_config.h"

namespace pytransformer::kernels::cuda {

// x[i] = activation(x[i]) for i < count, in place.
void activation(format::Activation kind, float* x, int64_t count, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

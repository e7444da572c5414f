// CUDA activation (reference: kernels/ref/activation.h).
// Pointers are device memory; work is queued on `stream` (not synchronised).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "format/model_config.h"

namespace pytransformer::kernels::cuda {

// x[i] = activation(x[i]) for i < count, in place.
void activation(format::Activation kind, float* x, int64_t count, cudaStream_t stream);

// kernels/ref/activation.h's gated_activation: y[r, j] = act(x[r, j]) * x[r, width + j] from x
// [rows, 2 * width] into y [rows, width]; y must not alias x (threads of other rows would race).
void gated_activation(format::Activation kind, const float* x, int64_t rows, int64_t width,
                      float* y, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

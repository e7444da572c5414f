// CUDA rotary position embeddings (reference: kernels/ref/rotary.h, whose rotary_tables the
// host computes once; the tables are then uploaded).
// x: [rows, heads * head_dim] device memory, rotated in place; positions [rows] device memory;
// cos, sin: [table positions, rotary_dim / 2] device memory.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/ref/rotary.h"

namespace pytransformer::kernels::cuda {

void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t rotary_dim,
                  const int32_t* positions, const float* cos, const float* sin,
                  ref::RotaryLayout layout, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

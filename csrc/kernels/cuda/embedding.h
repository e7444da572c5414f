// CUDA token embedding with scale and sinusoidal positions (reference: kernels/ref/embedding.h):
//   out[i, :] = table[ids[i], :] * scale + position_table[positions[i], :]     for i < count
// ids [count] int32, positions [count] int64, table [vocab, dim] of `dtype` (row_scales [vocab]
// for int8), position_table [*, dim] f32 (made on the host by kernels::ref::sinusoidal_positions,
// so it is the reference's table bit for bit), out [count, dim]: all device memory. ids and
// positions must be in range (checked by the caller). One block per token; queued on `stream`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "format/dtype.h"

namespace pytransformer::kernels::cuda {

void embedding(const int32_t* ids, const int64_t* positions, int64_t count, const void* table,
               DType dtype, const float* row_scales, int64_t dim, float scale,
               const float* position_table, float* out, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

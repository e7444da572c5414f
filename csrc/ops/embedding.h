// Token embeddings plus sinusoidal positions.
#pragma once

#include <cstdint>

#include "format/model_config.h"
#include "ops/device.h"
#include "tensor/tensor.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::ops {

// out[i, :] = table[ids[i], :] * scale + position_table[positions[i], :]   for i < count, on
// `device`: table (its data and int8 row scales) and position_table in its memory, ids and
// positions on the host. ids must be < table.rows and positions < position_table.dim(0)
// (checked by the caller, who reports the argument at fault). out: resized to
// [count, table.cols].
void embedding(const int32_t* ids, const int64_t* positions, int64_t count,
               const tensor::WeightMatrix& table, float scale, const tensor::Tensor& position_table,
               tensor::Tensor& out, const Device& device);

// Resized to [count, dim] in host memory: the encodings of positions first_position ... +
// count - 1.
void sinusoidal_positions(int64_t first_position, int64_t count, int64_t dim,
                          format::PositionLayout layout, format::PositionFrequencies frequencies,
                          tensor::Tensor& out);

}  // namespace pytransformer::ops

// Reference token embedding with scale and sinusoidal positions (docs/format.md).
#pragma once

#include <cstdint>

#include "format/dtype.h"
#include "format/model_config.h"

namespace pytransformer::kernels::ref {

// out[i, :] = table[ids[i], :] * scale + position_table[positions[i], :]     for i < count
// table: [vocab, dim] of `dtype` (row_scales [vocab] for DType::INT8); ids must be < vocab.
// position_table: [*, dim] f32; positions index its rows. out: [count, dim].
void embedding(const int32_t* ids, const int64_t* positions, int64_t count, const void* table,
               DType dtype, const float* row_scales, int64_t dim, float scale,
               const float* position_table, float* out);

// out: [count, dim], row r = the sinusoidal encoding of position first_position + r.
// dim must be even. Frequencies f_i, i < dim / 2, are computed as the reference of each
// convention does, so tables match it to the last bit where possible:
//   PAPER:         angle = p / 10000^(2i/dim) in double (Hugging Face Marian);
//   TENSOR2TENSOR: f_i = exp(-i * log(10000) / (dim/2 - 1)) and angle = p * f_i in f32
//                  (CTranslate2);
// then sin and cos in double, rounded to f32, placed as `layout` says.
void sinusoidal_positions(int64_t first_position, int64_t count, int64_t dim,
                          format::PositionLayout layout, format::PositionFrequencies frequencies,
                          float* out);

}  // namespace pytransformer::kernels::ref

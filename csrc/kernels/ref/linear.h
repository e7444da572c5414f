// Reference fully connected layer (GEMM with a transposed weight):
//   y[i, j] = sum_c x[i, c] * W[j, c] + bias[j]     for i < m, j in [column_begin, column_end)
// x: [m, k] f32 row-major. W: [n, k] row-major of `weight_dtype` (PyTorch nn.Linear layout),
// converted to f32 on the fly; row_scales: [n] for DType::INT8 (value = W[j, c] * row_scales[j]),
// ignored otherwise. bias: [n] or nullptr. y: [m, n] row-major; only the columns
// [column_begin, column_end) are written, so threads may split the columns between them.
// Accumulates in f32 in a fixed blocked order (deterministic, independent of the split).
// Block dtypes (q8_0, q4_1; k a multiple of kBlockValues) keep x in f32 and factor each block's
// scales out of its sum: with the block's integers n[c] (q8_0: q[c]) over its 32 positions c,
//   x[i] . W[j] = sum over blocks of  d * (sum_c x[i, c] * n[c])  +  m * (sum_c x[i, c])
// (q4_1; q8_0 has no m term): the real value of x . dequantised(W[j]), rounded differently.
#pragma once

#include <cstdint>

#include "format/dtype.h"

namespace pytransformer::kernels::ref {

void linear(const float* x, int64_t m, int64_t k, const void* weight, DType weight_dtype,
            const float* row_scales, const float* bias, int64_t n, int64_t column_begin,
            int64_t column_end, float* y);

}  // namespace pytransformer::kernels::ref

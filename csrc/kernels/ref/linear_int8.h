// Reference int8 linear layer: activations quantised per row on the fly, int32 dot products
// with int8 weights. Every int8 kernel variant (kernels/cpu/) computes exactly these integers
// and rounds exactly as below, so their outputs are bit-identical to this reference.
//
// Quantisation of a row x[i, :] of k floats (symmetric, per row, like the weights):
//   amax = max_c |x[i, c]|; when amax < FLT_MIN (0 or subnormal) the row quantises to zeros
//   with scale 1; otherwise scale[i] = amax / 127 and
//   q[i, c] = clamp(round_half_even(x[i, c] * (127 / amax)), -127, 127).
// Product with W [n, k] int8 and its per-row scales w_scales [n] (docs/format.md):
//   acc = sum_c q[i, c] * W[j, c]                (int32, exact in any order for k < 2^17)
//   y[i, j] = float(acc) * (scale[i] * w_scales[j]) + bias[j]   (each operation rounded to f32)
#pragma once

#include <cstdint>

namespace pytransformer::kernels::ref {

// Rows of q are padded to a multiple of this many bytes (zeros past k), so vector kernels read
// whole vectors of activations.
constexpr int64_t kQuantizedRowAlignment = 64;

inline int64_t quantized_row_stride(int64_t k) {
  return (k + kQuantizedRowAlignment - 1) / kQuantizedRowAlignment * kQuantizedRowAlignment;
}

// x: [m, k] f32 -> q: [m, stride] int8 (stride = quantized_row_stride(k)), scales: [m].
void quantize_rows(const float* x, int64_t m, int64_t k, int8_t* q, float* scales);

// The same with one fixed step for every row (a matrix's `.input_scale`, docs/format.md; Marian's
// int8shiftAlphaAll quantises activations with a precomputed multiplier so):
//   scales[i] = step, q[i, c] = clamp(round_half_even(x[i, c] / step), -127, 127).
// step: finite and >= FLT_MIN.
void quantize_rows_fixed(const float* x, int64_t m, int64_t k, float step, int8_t* q,
                         float* scales);

// y[i, j] for i < m and j in [column_begin, column_end) as above; y: [m, n] row-major.
// q: [m, quantized_row_stride(k)]; weight: [n, k]; bias: [n] or nullptr.
void linear_int8(const int8_t* q, const float* scales, int64_t m, int64_t k, const int8_t* weight,
                 const float* w_scales, const float* bias, int64_t n, int64_t column_begin,
                 int64_t column_end, float* y);

}  // namespace pytransformer::kernels::ref

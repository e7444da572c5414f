// Reference softmax over the last dimension of x: [rows, cols] row-major, in place.
//   x[r, c] = exp(x[r, c] - max_r) / sum_c exp(x[r, c] - max_r)
// cols >= 1. The sum is accumulated in double.
#pragma once

#include <cstdint>

namespace pytransformer::kernels::ref {

void softmax(float* x, int64_t rows, int64_t cols);

// Reference log-softmax over the last dimension of x: [rows, cols] row-major, in place.
//   x[r, c] = x[r, c] - max_r - log(sum_c exp(x[r, c] - max_r))
// computed in double and rounded once; a row of only -infinity stays so. cols >= 1.
void log_softmax(float* x, int64_t rows, int64_t cols);

// Reference argmax: the lowest index i < count whose x[i] no later value exceeds (a scan that
// moves on only to a strictly greater value from index 0; NaNs are never greater, so a NaN at
// index 0 stays the answer). 0 for count <= 0.
int64_t argmax(const float* x, int64_t count);

}  // namespace pytransformer::kernels::ref

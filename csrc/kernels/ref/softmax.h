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

}  // namespace pytransformer::kernels::ref

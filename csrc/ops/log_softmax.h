// In-place log-softmax over the last dimension of rows of scores (the searches' token
// log-probabilities). rows x cols, row-major; a row of only -infinity stays so.
#pragma once

#include <cstdint>

namespace pytransformer::ops {

void log_softmax(float* scores, int64_t rows, int64_t cols);

}  // namespace pytransformer::ops

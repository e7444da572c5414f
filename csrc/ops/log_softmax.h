// In-place log-softmax over the last dimension of rows of scores (the searches' token
// log-probabilities). rows x cols, row-major; a row of only -infinity stays so. argmax: the
// lowest index of the largest of count scores (kernels/ref/softmax.h: the greedy choice).
#pragma once

#include <cstdint>

namespace pytransformer::ops {

void log_softmax(float* scores, int64_t rows, int64_t cols);
int64_t argmax(const float* scores, int64_t count);

}  // namespace pytransformer::ops

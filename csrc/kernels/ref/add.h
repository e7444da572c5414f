// Reference element-wise sum: y[i] += x[i] for i < count.
#pragma once

#include <cstdint>

namespace pytransformer::kernels::ref {

void add(const float* x, float* y, int64_t count);

}  // namespace pytransformer::kernels::ref

// One step of the SSRU recurrence (kernels/ref/ssru.h) over n hypotheses:
// gates: [n, 2 d] (candidate | forget gate); previous: the cells of the previous step [*, d],
// or nullptr at the first step (a zero state); parent: [n] host, rows of previous; cells:
// resized to [n, d] (must not be previous); y: [n, d], overwritten with max(cells, 0), or
// y += max(cells, 0) when accumulate (then y must already be [n, d]).
#pragma once

#include <cstdint>

#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::ops {

void ssru_step(const tensor::Tensor& gates, const tensor::Tensor* previous, const int32_t* parent,
               tensor::Tensor& cells, tensor::Tensor& y, bool accumulate, const Device& device);

}  // namespace pytransformer::ops

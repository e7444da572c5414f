// y = x W^T + b over the last dimension.
// x: [..., in_features]; weight: [out_features, in_features] (any stored dtype);
// bias: [out_features] or nullptr; y: resized to [..., out_features] (must not alias x).
// The output columns are split between the pool's threads.
#pragma once

#include "tensor/tensor.h"
#include "tensor/thread_pool.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::ops {

void linear(const tensor::Tensor& x, const tensor::WeightMatrix& weight, const float* bias,
            tensor::Tensor& y, const tensor::ThreadPool& pool);

}  // namespace pytransformer::ops

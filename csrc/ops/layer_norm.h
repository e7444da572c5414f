// y = LayerNorm(x + residual) over the last dimension (residual optional).
// x, residual: [..., dim]; gamma, beta: [dim]; y: resized to x's shape, may be x or residual.
#pragma once

#include "tensor/tensor.h"

namespace pytransformer::ops {

void layer_norm(const tensor::Tensor& x, const tensor::Tensor* residual, const float* gamma,
                const float* beta, double epsilon, tensor::Tensor& y);

}  // namespace pytransformer::ops

// y = LayerNorm(x + residual) over the last dimension (residual optional).
// x, residual: [..., dim]; gamma, beta: [dim]; y: resized to x's shape, may be x or residual.
// On the device of the model (ops/device.h): tensors and parameters in its memory.
#pragma once

#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::ops {

void layer_norm(const tensor::Tensor& x, const tensor::Tensor* residual, const float* gamma,
                const float* beta, double epsilon, tensor::Tensor& y, const Device& device);

}  // namespace pytransformer::ops

// y += x element-wise (the residual connection of pre-norm layers). Same shapes.
#pragma once

#include "tensor/tensor.h"

namespace pytransformer::ops {

void add(const tensor::Tensor& x, tensor::Tensor& y);

}  // namespace pytransformer::ops

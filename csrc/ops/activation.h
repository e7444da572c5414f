// x = activation(x), element-wise in place (format::Activation, see kernels/ref/activation.h).
#pragma once

#include "format/model_config.h"
#include "tensor/tensor.h"

namespace pytransformer::ops {

void activation(format::Activation kind, tensor::Tensor& x);

}  // namespace pytransformer::ops

// The gated half of a gated feed-forward block (SwiGLU when kind is SWISH):
//   y[..., j] = act(x[..., j]) * x[..., width + j]
// x: [..., 2 * width], the fused gate | linear product; y: resized to [..., width], not x.
#pragma once

#include "format/model_config.h"
#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::ops {

void gated_activation(format::Activation kind, const tensor::Tensor& x, tensor::Tensor& y,
                      const Device& device);

}  // namespace pytransformer::ops

// y = RMSNorm(x) * gamma over the last dimension (Llama's normalisation).
// x: [..., dim]; gamma: [dim] in the device's memory; y: resized to x's shape, may be x.
#pragma once

#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::ops {

void rms_norm(const tensor::Tensor& x, const float* gamma, double epsilon, tensor::Tensor& y,
              const Device& device);

}  // namespace pytransformer::ops

#include "ops/activation.h"

#include "kernels/ref/activation.h"

namespace pytransformer::ops {

void activation(format::Activation kind, tensor::Tensor& x) {
  kernels::ref::activation(kind, x.data(), x.numel());
}

}  // namespace pytransformer::ops

#include "ops/activation.h"

#include "kernels/cpu/kernels.h"

namespace pytransformer::ops {

void activation(format::Activation kind, tensor::Tensor& x) {
  kernels::cpu::kernels().activation(kind, x.data(), x.numel());
}

}  // namespace pytransformer::ops

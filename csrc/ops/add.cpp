#include "ops/add.h"

#include <stdexcept>

#include "kernels/cpu/kernels.h"

namespace pytransformer::ops {

void add(const tensor::Tensor& x, tensor::Tensor& y) {
  if (x.shape() != y.shape()) {
    throw std::logic_error("add: " + x.shape_string() + " vs " + y.shape_string());
  }
  kernels::cpu::kernels().add(x.data(), y.data(), x.numel());
}

}  // namespace pytransformer::ops

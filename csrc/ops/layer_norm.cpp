#include "ops/layer_norm.h"

#include <stdexcept>

#include "kernels/cpu/kernels.h"

namespace pytransformer::ops {

void layer_norm(const tensor::Tensor& x, const tensor::Tensor* residual, const float* gamma,
                const float* beta, double epsilon, tensor::Tensor& y) {
  if (x.rank() < 1) throw std::logic_error("layer_norm: scalar input");
  if (residual && residual->shape() != x.shape()) {
    throw std::logic_error("layer_norm: residual " + residual->shape_string() + " vs input " +
                           x.shape_string());
  }
  if (&y != &x && &y != residual) y.resize(x.shape());
  kernels::cpu::kernels().layer_norm(x.data(), residual ? residual->data() : nullptr, gamma, beta,
                                     x.rows(), x.dim(-1), epsilon, y.data());
}

}  // namespace pytransformer::ops

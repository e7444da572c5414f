#include "ops/layer_norm.h"

#include <stdexcept>

#include "ops/device_checks.h"

namespace pytransformer::ops {

void layer_norm(const tensor::Tensor& x, const tensor::Tensor* residual, const float* gamma,
                const float* beta, double epsilon, tensor::Tensor& y, const Device& device) {
  if (x.rank() < 1) throw std::logic_error("layer_norm: scalar input");
  if (residual && residual->shape() != x.shape()) {
    throw std::logic_error("layer_norm: residual " + residual->shape_string() + " vs input " +
                           x.shape_string());
  }
  check_on_device("layer_norm", x, device);
  if (residual) check_on_device("layer_norm", *residual, device);
  if (&y != &x && &y != residual) y.resize(x.shape(), device.allocator());
  device.layer_norm(x.data(), residual ? residual->data() : nullptr, gamma, beta, x.rows(),
                    x.dim(-1), epsilon, y.data());
}

}  // namespace pytransformer::ops

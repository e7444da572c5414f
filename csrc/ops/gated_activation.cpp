#include "ops/gated_activation.h"

#include <stdexcept>

#include "ops/device_checks.h"

namespace pytransformer::ops {

void gated_activation(format::Activation kind, const tensor::Tensor& x, tensor::Tensor& y,
                      const Device& device) {
  if (x.rank() < 1 || x.dim(-1) % 2 != 0) {
    throw std::logic_error("gated_activation: last dimension of " + x.shape_string() +
                           " is not gate | linear");
  }
  if (&y == &x) throw std::logic_error("gated_activation: y must not be x");
  check_on_device("gated_activation", x, device);
  const int64_t width = x.dim(-1) / 2;
  tensor::Shape shape = x.shape();
  shape.back() = width;
  y.resize(shape, device.allocator());
  device.gated_activation(kind, x.data(), x.rows(), width, y.data());
}

}  // namespace pytransformer::ops

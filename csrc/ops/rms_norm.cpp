#include "ops/rms_norm.h"

#include <stdexcept>

#include "ops/device_checks.h"

namespace pytransformer::ops {

void rms_norm(const tensor::Tensor& x, const float* gamma, double epsilon, tensor::Tensor& y,
              const Device& device) {
  if (x.rank() < 1) throw std::logic_error("rms_norm: scalar input");
  check_on_device("rms_norm", x, device);
  if (&y != &x) y.resize(x.shape(), device.allocator());
  device.rms_norm(x.data(), gamma, x.rows(), x.dim(-1), epsilon, y.data());
}

}  // namespace pytransformer::ops

#include "ops/ssru.h"

#include <stdexcept>

#include "ops/device_checks.h"

namespace pytransformer::ops {

void ssru_step(const tensor::Tensor& gates, const tensor::Tensor* previous, const int32_t* parent,
               tensor::Tensor& cells, tensor::Tensor& y, bool accumulate, const Device& device) {
  if (gates.rank() != 2 || gates.dim(1) % 2 != 0) {
    throw std::logic_error("ssru_step: gates " + gates.shape_string() + " are not [n, 2d]");
  }
  const int64_t n = gates.dim(0), d = gates.dim(1) / 2;
  if (previous && (previous->rank() != 2 || previous->dim(1) != d)) {
    throw std::logic_error("ssru_step: previous cells " + previous->shape_string() +
                           " are not [*, " + std::to_string(d) + "]");
  }
  if (previous == &cells) throw std::logic_error("ssru_step: cells must not be previous");
  check_on_device("ssru_step", gates, device);
  if (previous) check_on_device("ssru_step (previous)", *previous, device);
  if (accumulate && (y.rank() != 2 || y.dim(0) != n || y.dim(1) != d)) {
    throw std::logic_error("ssru_step: accumulating into " + y.shape_string());
  }
  cells.resize({n, d}, device.allocator());
  if (!accumulate) y.resize({n, d}, device.allocator());
  device.ssru_step(gates.data(), previous ? previous->data() : nullptr, parent, n, d, accumulate,
                   cells.data(), y.data());
}

}  // namespace pytransformer::ops

// What every op checks of its tensors before dispatching to the device (ops/device.h).
#pragma once

#include <stdexcept>
#include <string>

#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::ops {

// std::logic_error when `x` is not in `device`'s memory (a layer fed another device's tensor).
inline void check_on_device(const char* op, const tensor::Tensor& x, const Device& device) {
  if (&x.allocator() != &device.allocator()) {
    throw std::logic_error(std::string(op) + ": a tensor is not in the memory of device " +
                           device.name());
  }
}

}  // namespace pytransformer::ops

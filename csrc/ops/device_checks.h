// What every op checks of its tensors before dispatching to the device (ops/device.h).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#include "ops/device.h"
#include "pytransformer/error.h"
#include "tensor/tensor.h"

namespace pytransformer::ops {

// std::logic_error when `x` is not in `device`'s memory (a layer fed another device's tensor).
inline void check_on_device(const char* op, const tensor::Tensor& x, const Device& device) {
  if (&x.allocator() != &device.allocator()) {
    throw std::logic_error(std::string(op) + ": a tensor is not in the memory of device " +
                           device.name());
  }
}

// InvalidArgument when attention over `keys` positions (what: "source length", "max_steps", ...)
// exceeds what the device's kernels can do (only a GPU has such a limit).
inline void check_attention_keys(const Device& device, int64_t head_dim, int64_t keys,
                                 const std::string& what) {
  const int64_t limit = device.max_attention_keys(head_dim);
  if (keys > limit) {
    throw InvalidArgument(what + " = " + std::to_string(keys) + ": the attention kernels of device " +
                          device.name() + " attend over at most " + std::to_string(limit) +
                          " positions");
  }
}

}  // namespace pytransformer::ops

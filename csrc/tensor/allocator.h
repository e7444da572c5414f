// Where a tensor's memory lives: host memory (host_allocator()) or a device's (the CUDA backend's
// allocator, csrc/cuda/cuda_device.h). A Tensor allocates, frees and copies its buffer through
// its allocator only, so tensor/ and the layers above never call a device runtime themselves.
//
// Thread-safety: allocators are shared by the tensors of one model and must be callable from
// any thread (the CUDA one is, by the model's call lock: ops/device.h).
#pragma once

#include <cstddef>

namespace pytransformer::tensor {

class Allocator {
 public:
  virtual ~Allocator() = default;

  // True when the memory is the host's: the CPU may read and write it directly.
  virtual bool host_accessible() const = 0;
  // Uninitialised memory for `bytes` bytes (aligned for floats and vector loads); throws
  // std::bad_alloc or the device's error when it cannot.
  virtual void* allocate(size_t bytes) const = 0;
  virtual void deallocate(void* memory) const noexcept = 0;
  // Copies of `bytes` bytes; the copy is complete when the call returns.
  virtual void copy_from_host(const void* host, size_t bytes, void* memory) const = 0;
  virtual void copy_to_host(const void* memory, size_t bytes, void* host) const = 0;
  // Within this allocator's memory (the ranges must not overlap).
  virtual void copy(const void* from, size_t bytes, void* to) const = 0;
};

// Host memory (new/delete, memcpy): the CPU's tensors.
const Allocator& host_allocator();

}  // namespace pytransformer::tensor

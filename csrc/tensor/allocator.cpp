#include "tensor/allocator.h"

#include <cstring>
#include <new>

namespace pytransformer::tensor {
namespace {

class HostAllocator final : public Allocator {
 public:
  bool host_accessible() const override { return true; }
  // Uninitialised (operator new, not a vector): untouched pages of a large buffer cost no
  // resident memory, and callers overwrite what they use.
  void* allocate(size_t bytes) const override { return ::operator new(bytes); }
  void deallocate(void* memory) const noexcept override { ::operator delete(memory); }
  void copy_from_host(const void* host, size_t bytes, void* memory) const override {
    if (bytes) std::memcpy(memory, host, bytes);
  }
  void copy_to_host(const void* memory, size_t bytes, void* host) const override {
    if (bytes) std::memcpy(host, memory, bytes);
  }
  void copy(const void* from, size_t bytes, void* to) const override {
    if (bytes) std::memcpy(to, from, bytes);
  }
};

}  // namespace

const Allocator& host_allocator() {
  static const HostAllocator allocator;
  return allocator;
}

}  // namespace pytransformer::tensor

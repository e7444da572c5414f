// _core._heap_allocations(): how many times code of this module has called operator new (any
// form) since the module was loaded. A private diagnostic: tests/python/
// test_decode_allocations.py checks with it that the decode loop allocates nothing per step.
//
// The replacements below count, then allocate with malloc / aligned_alloc and release with
// free, as libstdc++'s own operators do, so a block may be freed on either side. They replace
// operator new inside _core only: _core exports nothing but PyInit__core (exports.map, see
// CMakeLists.txt), so these definitions bind this module's calls at link time, the core
// library's included, and every other library in the process keeps its own operators.
// Not seen: blocks allocated inside libstdc++.so itself (the out-of-line members of the
// std::string it instantiates, for one) and direct malloc calls.
#include <pybind11/pybind11.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace py = pybind11;

namespace {

std::atomic<uint64_t> allocations{0};

void* allocate(std::size_t size) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}

void* allocate(std::size_t size, std::align_val_t alignment) noexcept {
  allocations.fetch_add(1, std::memory_order_relaxed);
  const std::size_t align = static_cast<std::size_t>(alignment);
  // aligned_alloc wants a size that is a multiple of the alignment.
  return std::aligned_alloc(align, (size == 0 ? 1 : size + align - 1) / align * align);
}

void* checked(void* block) {
  if (!block) throw std::bad_alloc();
  return block;
}

}  // namespace

void* operator new(std::size_t size) { return checked(allocate(size)); }
void* operator new[](std::size_t size) { return checked(allocate(size)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return allocate(size); }
void* operator new(std::size_t size, std::align_val_t alignment) {
  return checked(allocate(size, alignment));
}
void* operator new[](std::size_t size, std::align_val_t alignment) {
  return checked(allocate(size, alignment));
}
void* operator new(std::size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept {
  return allocate(size, alignment);
}
void* operator new[](std::size_t size, std::align_val_t alignment,
                     const std::nothrow_t&) noexcept {
  return allocate(size, alignment);
}

void operator delete(void* block) noexcept { std::free(block); }
void operator delete[](void* block) noexcept { std::free(block); }
void operator delete(void* block, std::size_t) noexcept { std::free(block); }
void operator delete[](void* block, std::size_t) noexcept { std::free(block); }
void operator delete(void* block, const std::nothrow_t&) noexcept { std::free(block); }
void operator delete[](void* block, const std::nothrow_t&) noexcept { std::free(block); }
void operator delete(void* block, std::align_val_t) noexcept { std::free(block); }
void operator delete[](void* block, std::align_val_t) noexcept { std::free(block); }
void operator delete(void* block, std::size_t, std::align_val_t) noexcept { std::free(block); }
void operator delete[](void* block, std::size_t, std::align_val_t) noexcept { std::free(block); }
void operator delete(void* block, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(block);
}
void operator delete[](void* block, std::align_val_t, const std::nothrow_t&) noexcept {
  std::free(block);
}

namespace pytransformer::python {

void bind_heap_allocations(py::module_& m) {
  m.def(
      "_heap_allocations", [] { return allocations.load(std::memory_order_relaxed); },
      "Private diagnostic: operator new calls made by _core so far (tests only).");
}

}  // namespace pytransformer::python

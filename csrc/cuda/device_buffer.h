// Owned device memory (cudaMalloc / cudaFree), move-only. Sizes are in elements of T.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <string>
#include <utility>

#include "kernels/cuda/cuda_check.h"

namespace pytransformer::cuda {

template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count == 0) return;
    void* pointer = nullptr;
    const cudaError_t status = cudaMalloc(&pointer, count * sizeof(T));
    if (status != cudaSuccess) {
      cudaGetLastError();
      throw kernels::cuda::CudaError("cannot allocate " + std::to_string(count * sizeof(T)) +
                                     " bytes of GPU memory (" + cudaGetErrorString(status) + ")");
    }
    data_ = static_cast<T*>(pointer);
  }
  ~DeviceBuffer() {
    if (data_) cudaFree(data_);  // errors ignored: also runs at interpreter shutdown
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(count_, other.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const { return data_; }
  size_t size() const { return count_; }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

// Copies between host and device on `stream` (pageable host memory: the host side may be reused
// once the call returns for uploads, and holds the data after a stream synchronisation for
// downloads).
template <typename T>
void upload(const T* host, size_t count, T* device, cudaStream_t stream) {
  if (count == 0) return;
  kernels::cuda::check(cudaMemcpyAsync(device, host, count * sizeof(T), cudaMemcpyHostToDevice, stream),
                       "cudaMemcpyAsync (to the GPU)");
}

template <typename T>
void download(const T* device, size_t count, T* host, cudaStream_t stream) {
  if (count == 0) return;
  kernels::cuda::check(cudaMemcpyAsync(host, device, count * sizeof(T), cudaMemcpyDeviceToHost, stream),
                       "cudaMemcpyAsync (from the GPU)");
}

}  // namespace pytransformer::cuda

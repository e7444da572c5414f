// Error handling of the CUDA backend (host code). Every CUDA runtime call and kernel launch is
// checked; a failure throws CudaError naming the call and the runtime's message, which the
// Python bindings turn into RuntimeError.
#pragma once

#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace pytransformer::kernels::cuda {

class CudaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw CudaError(std::string("CUDA error in ") + what + ": " + cudaGetErrorName(status) + " (" +
                    cudaGetErrorString(status) + ")");
  }
}

// After a kernel launch: reports a bad launch configuration at once (errors raised while the
// kernel runs surface at the next synchronisation).
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

}  // namespace pytransformer::kernels::cuda

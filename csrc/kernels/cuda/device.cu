#include "kernels/cuda/device.h"

#include <cuda_runtime_api.h>

namespace pytransformer::kernels::cuda {
namespace {

// Asking the runtime about this kernel tells whether the build holds code the device can run.
__global__ void probe_kernel() {}

std::string runtime_error(cudaError_t status) {
  return std::string(cudaGetErrorName(status)) + ": " + cudaGetErrorString(status);
}

}  // namespace

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of a missing driver
    return 0;
  }
  return count;
}

std::string device_problem(int device) {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();
    if (status == cudaErrorInsufficientDriver) {
      return "no usable NVIDIA driver was found (" + runtime_error(status) + ")";
    }
    if (status == cudaErrorNoDevice) return "no CUDA-capable GPU was found";
    return "the CUDA runtime could not be initialised (" + runtime_error(status) + ")";
  }
  if (count == 0) return "no CUDA-capable GPU was found";
  if (device < 0 || device >= count) {
    return "device " + std::to_string(device) + " does not exist (" + std::to_string(count) +
           " device" + (count == 1 ? "" : "s") + " found)";
  }
  int current = 0;
  cudaGetDevice(&current);
  cudaSetDevice(device);
  cudaFuncAttributes attributes;
  const cudaError_t probe = cudaFuncGetAttributes(&attributes, probe_kernel);
  cudaSetDevice(current);
  if (probe != cudaSuccess) {
    cudaGetLastError();
    cudaDeviceProp properties;
    std::string what = "device " + std::to_string(device);
    if (cudaGetDeviceProperties(&properties, device) == cudaSuccess) {
      what += " (" + std::string(properties.name) + ", sm_" + std::to_string(properties.major) +
              std::to_string(properties.minor) + ")";
    }
    return what + " cannot run this build's kernels, compiled for sm_80 and sm_90 and newer (" +
           runtime_error(probe) + ")";
  }
  return "";
}

std::string device_description(int device) {
  cudaDeviceProp properties;
  if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) {
    cudaGetLastError();
    return "unknown device " + std::to_string(device);
  }
  const double gib = static_cast<double>(properties.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0);
  return std::string(properties.name) + " (sm_" + std::to_string(properties.major) +
         std::to_string(properties.minor) + ", " + std::to_string(static_cast<int>(gib + 0.5)) +
         " GiB)";
}

}  // namespace pytransformer::kernels::cuda

// The cuBLAS path of the CUDA linear layer (contract in kernels/cuda/linear.h). Built only when
// the CUDA backend is configured with cuBLAS (PYTRANSFORMER_CUBLAS).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "format/model_config.h"
#include "kernels/cuda/linear.h"

namespace pytransformer::kernels::cuda {

// Owns a cuBLAS handle set to full f32 math (no TF32). Not thread-safe: one user at a time.
class CublasHandle {
 public:
  CublasHandle();
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

// weight.dtype: f32, f16 or bf16. workspace: >= weight.rows * weight.cols floats for f16/bf16
// (the weight converted to f32; unused for f32).
void linear_cublas(const CublasHandle& handle, const float* x, int64_t m, const DeviceWeight& weight,
                   const float* bias, const format::Activation* activation, float* workspace,
                   float* y, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

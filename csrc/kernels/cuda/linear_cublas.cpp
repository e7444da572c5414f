#include "kernels/cuda/linear_cublas.h"

#include <climits>
#include <string>

#include "kernels/cuda/cuda_check.h"

namespace pytransformer::kernels::cuda {
namespace {

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw CudaError(std::string("cuBLAS error in ") + what + ": " + cublasGetStatusName(status) +
                    " (" + cublasGetStatusString(status) + ")");
  }
}

}  // namespace

CublasHandle::CublasHandle() {
  check_cublas(cublasCreate(&handle_), "cublasCreate");
  const cublasStatus_t status = cublasSetMathMode(handle_, CUBLAS_PEDANTIC_MATH);
  if (status != CUBLAS_STATUS_SUCCESS) {
    cublasDestroy(handle_);
    check_cublas(status, "cublasSetMathMode");
  }
}

CublasHandle::~CublasHandle() { cublasDestroy(handle_); }

void linear_cublas(const CublasHandle& handle, const float* x, int64_t m, const DeviceWeight& weight,
                   const float* bias, const format::Activation* activation, float* workspace,
                   float* y, cudaStream_t stream) {
  const int64_t n = weight.rows, k = weight.cols;
  if (m <= 0 || n <= 0) return;
  if (m > INT_MAX || n > INT_MAX || k > INT_MAX) throw CudaError("linear_cublas: matrix too large");
  const float* w = static_cast<const float*>(weight.data);
  if (weight.dtype != DType::F32) {
    convert_weight(weight, workspace, stream);
    w = workspace;
  }
  // In cuBLAS's column-major terms the row-major y[m, n] is the n x m matrix C = A^T B, with
  // A = W read as a k x n matrix (lda = k) and B = x read as a k x m matrix (ldb = k).
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasSetStream(handle.get(), stream), "cublasSetStream");
  check_cublas(cublasSgemm(handle.get(), CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n),
                           static_cast<int>(m), static_cast<int>(k), &one, w, static_cast<int>(k),
                           x, static_cast<int>(k), &zero, y, static_cast<int>(n)),
               "cublasSgemm");
  bias_activation(y, m, n, bias, activation, stream);
}

}  // namespace pytransformer::kernels::cuda

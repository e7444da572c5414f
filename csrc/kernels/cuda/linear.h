// CUDA fully connected layer (reference: kernels/ref/linear.h), with fused bias and activation
// epilogues:
//   y[i, j] = act(sum_c x[i, c] * W[j, c] + bias[j])     for i < m, j < n
// x: [m, k] f32 row-major. W: [n, k] row-major in its stored dtype (f32, f16, bf16, or int8 with
// row_scales [n]), converted to f32 as it is read, so device memory holds weights at their
// stored size. bias: [n] or nullptr (then 0 is added, as the reference does). activation:
// nullptr for none. y: [m, n] row-major, must not alias x. Device pointers; queued on `stream`.
//
// Two implementations:
// - linear(): our tiled kernel. Each output sums its products in the reference's exact order
//   (8 partial sums by c % 8, combined in the same tree), without FMA contraction, so its
//   results are bit-identical to kernels::ref::linear for every dtype.
// - linear_cublas() (linear_cublas.cu, built when cuBLAS is found): cublasSgemm in full f32
//   (CUBLAS_PEDANTIC_MATH: no TF32); non-f32 weights are first converted into `workspace`
//   (>= n * k floats). Faster on large batches; sums in cuBLAS's order (results agree with the
//   reference to rounding, not bitwise).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "format/dtype.h"
#include "format/model_config.h"

namespace pytransformer::kernels::cuda {

struct DeviceWeight {
  const void* data = nullptr;         // [rows, cols] of dtype
  DType dtype = DType::F32;
  int64_t rows = 0;                   // n, output features
  int64_t cols = 0;                   // k, input features
  const float* row_scales = nullptr;  // [rows], int8 only
};

void linear(const float* x, int64_t m, const DeviceWeight& weight, const float* bias,
            const format::Activation* activation, float* y, cudaStream_t stream);

// dst[r, c] = W[r, c] as f32 (the reference's convert_row for every row). dst: [rows, cols].
void convert_weight(const DeviceWeight& weight, float* dst, cudaStream_t stream);

// y[i, j] = act(y[i, j] + bias[j]) for i < m, j < n (the epilogue of the cuBLAS path).
void bias_activation(float* y, int64_t m, int64_t n, const float* bias,
                     const format::Activation* activation, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

// CUDA fully connected layer, with fused bias and activation epilogues:
//   y[i, j] = act(sum_c x[i, c] * W[j, c] + bias[j])     for i < m, j < n
// x: [m, k] f32 row-major. W: [n, k] row-major in its stored dtype, read in place (device memory
// holds weights at their stored size). bias: [n] or nullptr. activation: nullptr for none.
// y: [m, n] row-major, must not alias x. Device pointers; queued on `stream`.
//
// - linear() (f32, f16, bf16 weights; reference kernels/ref/linear.h): our tiled kernel. Each
//   output sums its products in the reference's exact order (8 partial sums by c % 8, combined
//   in the same tree), without FMA contraction, then adds the bias (0 without one, as the
//   reference does): bit-identical to kernels::ref::linear.
// - linear_int8() (int8 weights; reference kernels/ref/linear_int8.h): rows of x quantised to
//   int8 per row, exact int32 dot products, then float(acc) * (row scale * weight scale)
//   (+ bias): bit-identical to kernels::ref::quantize_rows + kernels::ref::linear_int8.
// - linear_cublas() (linear_cublas.h, built when cuBLAS is found): cublasSgemm in full f32 for
//   f32, f16 and bf16 weights; faster on large batches, sums in cuBLAS's order.
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
  float input_scale = 0.0f;           // int8 only: a fixed input step (0: per-row max)
};

// weight.dtype: f32, f16 or bf16.
void linear(const float* x, int64_t m, const DeviceWeight& weight, const float* bias,
            const format::Activation* activation, float* y, cudaStream_t stream);

// weight.dtype: int8. Workspaces: quantized [m, k], row_scales [m].
void linear_int8(const float* x, int64_t m, const DeviceWeight& weight, const float* bias,
                 const format::Activation* activation, int8_t* quantized, float* row_scales,
                 float* y, cudaStream_t stream);

// dst[r, c] = W[r, c] as f32 (the reference's convert_row for every row), f32/f16/bf16 weights.
// dst: [rows, cols].
void convert_weight(const DeviceWeight& weight, float* dst, cudaStream_t stream);

// y[i, j] = act(y[i, j] + bias[j]) for i < m, j < n (the epilogue of the cuBLAS path).
void bias_activation(float* y, int64_t m, int64_t n, const float* bias,
                     const format::Activation* activation, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

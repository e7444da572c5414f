#include "kernels/cuda/activation.h"

#include "kernels/cuda/activation.cuh"
#include "kernels/cuda/cuda_check.h"

namespace pytransformer::kernels::cuda {
namespace {

constexpr int kThreads = 256;

int64_t blocks_for(int64_t count) { return (count + kThreads - 1) / kThreads; }

__global__ void activation_kernel(format::Activation kind, float* x, int64_t count) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) x[i] = apply_activation(kind, x[i]);
}

__global__ void gated_activation_kernel(format::Activation kind, const float* x, int64_t rows,
                                        int64_t width, float* y) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * width) return;
  const int64_t r = i / width, j = i % width;
  const float* row = x + r * 2 * width;
  y[i] = __fmul_rn(apply_activation(kind, row[j]), row[width + j]);
}

}  // namespace

void gated_activation(format::Activation kind, const float* x, int64_t rows, int64_t width,
                      float* y, cudaStream_t stream) {
  const int64_t count = rows * width;
  if (count <= 0) return;
  gated_activation_kernel<<<blocks_for(count), kThreads, 0, stream>>>(kind, x, rows, width, y);
  check_launch("gated_activation_kernel");
}

void activation(format::Activation kind, float* x, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  activation_kernel<<<blocks_for(count), kThreads, 0, stream>>>(kind, x, count);
  check_launch("activation_kernel");
}

}  // namespace pytransformer::kernels::cuda

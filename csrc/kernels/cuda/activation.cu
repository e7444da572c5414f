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

}  // namespace

void activation(format::Activation kind, float* x, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  activation_kernel<<<blocks_for(count), kThreads, 0, stream>>>(kind, x, count);
  check_launch("activation_kernel");
}

}  // namespace pytransformer::kernels::cuda

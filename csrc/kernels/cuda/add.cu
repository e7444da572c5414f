#include "kernels/cuda/add.h"

#include "kernels/cuda/cuda_check.h"

namespace pytransformer::kernels::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void add_kernel(const float* x, float* y, int64_t count) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < count) y[i] = __fadd_rn(y[i], x[i]);
}

}  // namespace

void add(const float* x, float* y, int64_t count, cudaStream_t stream) {
  if (count <= 0) return;
  add_kernel<<<(count + kThreads - 1) / kThreads, kThreads, 0, stream>>>(x, y, count);
  check_launch("add_kernel");
}

}  // namespace pytransformer::kernels::cuda

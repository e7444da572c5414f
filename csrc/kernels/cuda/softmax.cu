#include "kernels/cuda/softmax.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/softmax.cuh"

namespace pytransformer::kernels::cuda {
namespace {

// The staged row, within the 48 KiB of shared memory every GPU offers without opting in (the
// rest holds the reduction scratch).
constexpr int64_t kSharedBytes = 40 * 1024;

__global__ void softmax_kernel(float* x, int64_t cols) {
  extern __shared__ float row[];
  __shared__ float float_scratch[kWarpSize];
  __shared__ double double_scratch[kWarpSize];
  float* xr = x + static_cast<int64_t>(blockIdx.x) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) row[c] = xr[c];
  __syncthreads();
  block_softmax(row, cols, float_scratch, double_scratch);
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) xr[c] = row[c];
}

}  // namespace

int64_t max_softmax_columns() { return kSharedBytes / static_cast<int64_t>(sizeof(float)); }

void softmax(float* x, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (rows <= 0) return;
  if (cols < 1 || cols > max_softmax_columns()) {
    throw CudaError("softmax: " + std::to_string(cols) + " columns, expected 1.." +
                    std::to_string(max_softmax_columns()));
  }
  softmax_kernel<<<rows, row_block_size(cols), cols * sizeof(float), stream>>>(x, cols);
  check_launch("softmax_kernel");
}

}  // namespace pytransformer::kernels::cuda

#include "kernels/cuda/rms_norm.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pytransformer::kernels::cuda {
namespace {

// Each thread reads and writes the columns threadIdx.x + k * blockDim.x of its row, and every
// read of the sum pass happens before the reduction's barrier, so y may alias x.
__global__ void rms_norm_kernel(const float* x, const float* gamma, int64_t dim, double epsilon,
                                float* y) {
  __shared__ double scratch[kWarpSize];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * dim;
  const float* xr = x + offset;
  float* yr = y + offset;
  double partial = 0.0;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    const double v = static_cast<double>(xr[c]);
    partial = __dadd_rn(partial, __dmul_rn(v, v));
  }
  const double mean_square =
      block_reduce(partial, DoubleSum(), scratch) / static_cast<double>(dim);
  const double inverse_rms = 1.0 / sqrt(mean_square + epsilon);
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    const float normalized = static_cast<float>(__dmul_rn(static_cast<double>(xr[c]), inverse_rms));
    yr[c] = __fmul_rn(normalized, gamma[c]);
  }
}

}  // namespace

void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, double epsilon,
              float* y, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  rms_norm_kernel<<<rows, row_block_size(dim), 0, stream>>>(x, gamma, dim, epsilon, y);
  check_launch("rms_norm_kernel");
}

}  // namespace pytransformer::kernels::cuda

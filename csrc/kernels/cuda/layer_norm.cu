#include "kernels/cuda/layer_norm.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pytransformer::kernels::cuda {
namespace {

// Each thread owns the columns threadIdx.x + k * blockDim.x of its row in every pass, so writing
// the residual sum into y (which may alias x or residual) never races with another thread.
__global__ void layer_norm_kernel(const float* x, const float* residual, const float* gamma,
                                  const float* beta, int64_t dim, double epsilon, float* y) {
  __shared__ double scratch[kWarpSize];
  const int64_t offset = static_cast<int64_t>(blockIdx.x) * dim;
  const float* xr = x + offset;
  const float* rr = residual ? residual + offset : nullptr;
  float* yr = y + offset;
  double partial = 0.0;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    const float sum = rr ? __fadd_rn(xr[c], rr[c]) : xr[c];
    yr[c] = sum;
    partial = __dadd_rn(partial, static_cast<double>(sum));
  }
  const double mean = block_reduce(partial, DoubleSum(), scratch) / static_cast<double>(dim);
  partial = 0.0;
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    const double centered = __dsub_rn(static_cast<double>(yr[c]), mean);
    partial = __dadd_rn(partial, __dmul_rn(centered, centered));
  }
  const double variance = block_reduce(partial, DoubleSum(), scratch) / static_cast<double>(dim);
  const double inverse_std = 1.0 / sqrt(variance + epsilon);
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) {
    const double centered = __dsub_rn(static_cast<double>(yr[c]), mean);
    const float normalized = static_cast<float>(__dmul_rn(centered, inverse_std));
    yr[c] = __fadd_rn(__fmul_rn(normalized, gamma[c]), beta[c]);
  }
}

}  // namespace

void layer_norm(const float* x, const float* residual, const float* gamma, const float* beta,
                int64_t rows, int64_t dim, double epsilon, float* y, cudaStream_t stream) {
  if (rows <= 0 || dim <= 0) return;
  layer_norm_kernel<<<rows, row_block_size(dim), 0, stream>>>(x, residual, gamma, beta, dim,
                                                             epsilon, y);
  check_launch("layer_norm_kernel");
}

}  // namespace pytransformer::kernels::cuda

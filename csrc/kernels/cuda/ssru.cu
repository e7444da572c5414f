#include "kernels/cuda/ssru.h"

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"

namespace pytransformer::kernels::cuda {
namespace {

// One block per hypothesis; the reference's operations in its order, each rounded.
__global__ void ssru_kernel(const float* gates, const float* previous, const int32_t* parent,
                            int64_t d, bool accumulate, float* cells, float* out) {
  const int64_t i = blockIdx.x;
  const float* candidate = gates + i * 2 * d;
  const float* gate = candidate + d;
  const float* state = previous ? previous + static_cast<int64_t>(parent[i]) * d : nullptr;
  for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
    const float g = gate[j];
    float f;
    if (g >= 0.0f) {
      f = __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-g)));
    } else {
      const float e = expf(g);
      f = __fdiv_rn(e, __fadd_rn(1.0f, e));
    }
    const float kept = state ? __fmul_rn(f, state[j]) : 0.0f;
    const float cell = __fadd_rn(kept, __fmul_rn(__fsub_rn(1.0f, f), candidate[j]));
    cells[i * d + j] = cell;
    const float relu = cell > 0.0f ? cell : 0.0f;
    out[i * d + j] = accumulate ? __fadd_rn(out[i * d + j], relu) : relu;
  }
}

}  // namespace

void ssru_step(const float* gates, const float* previous, const int32_t* parent, int64_t n,
               int64_t d, bool accumulate, float* cells, float* out, cudaStream_t stream) {
  if (n <= 0 || d <= 0) return;
  ssru_kernel<<<n, row_block_size(d), 0, stream>>>(gates, previous, parent, d, accumulate,
                                                    cells, out);
  check_launch("ssru_kernel");
}

}  // namespace pytransformer::kernels::cuda

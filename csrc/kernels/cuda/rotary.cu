#include "kernels/cuda/rotary.h"

#include "kernels/cuda/cuda_check.h"

namespace pytransformer::kernels::cuda {
namespace {

constexpr int kThreads = 256;

// One thread per rotated pair: (row, head, pair) flattened. The same f32 operations as the
// reference, each rounded (no contraction), so results are bit-identical to it.
__global__ void rotary_kernel(float* x, int64_t rows, int64_t heads, int64_t head_dim,
                              int64_t pairs, const int32_t* positions, const float* cos,
                              const float* sin, int64_t first_step, int64_t second_offset) {
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= rows * heads * pairs) return;
  const int64_t i = index % pairs, head = index / pairs, r = head / heads;
  const int64_t table = static_cast<int64_t>(positions[r]) * pairs + i;
  float* a = x + head * head_dim + i * first_step;
  float* b = a + second_offset;
  const float a0 = *a, b0 = *b, c = cos[table], s = sin[table];
  *a = __fsub_rn(__fmul_rn(a0, c), __fmul_rn(b0, s));
  *b = __fadd_rn(__fmul_rn(a0, s), __fmul_rn(b0, c));
}

}  // namespace

void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t rotary_dim,
                  const int32_t* positions, const float* cos, const float* sin,
                  ref::RotaryLayout layout, cudaStream_t stream) {
  const int64_t pairs = rotary_dim / 2, count = rows * heads * pairs;
  if (count <= 0) return;
  const ref::RotaryPairs members = ref::rotary_pairs(layout, rotary_dim);
  rotary_kernel<<<(count + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      x, rows, heads, head_dim, pairs, positions, cos, sin, members.first_step,
      members.second_offset);
  check_launch("rotary_kernel");
}

}  // namespace pytransformer::kernels::cuda

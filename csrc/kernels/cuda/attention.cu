#include "kernels/cuda/attention.h"

#include <string>

#include "kernels/cuda/cuda_check.h"
#include "kernels/cuda/device_common.cuh"
#include "kernels/cuda/softmax.cuh"

namespace pytransformer::kernels::cuda {
namespace {

constexpr int64_t kSharedBytes = 40 * 1024;
constexpr int kMaxThreads = 128;

// out_row[c] = sum_j p[j] * value_row(j)[c] for c < head_dim, summing j in increasing order.
template <typename ValueRow>
__device__ void weighted_sum(const float* p, int64_t count, int64_t head_dim,
                             const ValueRow& value_row, float* out_row) {
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) {
    float sum = 0.0f;
    for (int64_t j = 0; j < count; ++j) sum = __fadd_rn(sum, __fmul_rn(p[j], value_row(j)[c]));
    out_row[c] = sum;
  }
}

__global__ void attention_kernel(const float* q, const float* k, const float* v, int64_t q_len,
                                 int64_t kv_len, int64_t heads, int64_t kv_heads,
                                 int64_t head_dim, const int32_t* kv_index,
                                 const int64_t* kv_lengths, bool causal, float scale, float* out,
                                 float* probabilities) {
  extern __shared__ float shared[];
  __shared__ float float_scratch[kWarpSize];
  __shared__ double double_scratch[kWarpSize];
  float* query = shared;              // [head_dim]
  float* scores = shared + head_dim;  // [kv_len]
  const int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  const int64_t width = heads * head_dim, column = h * head_dim;
  const int64_t kv_width = kv_heads * head_dim, kv_column = h / (heads / kv_heads) * head_dim;
  const int64_t kv_b = kv_index ? kv_index[b] : b;
  const int64_t length = kv_lengths[kv_b];
  const int64_t valid = causal && i + 1 < length ? i + 1 : length;
  const float* kb = k + kv_b * kv_len * kv_width + kv_column;
  const float* vb = v + kv_b * kv_len * kv_width + kv_column;
  const float* qi = q + (b * q_len + i) * width + column;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) query[c] = qi[c];
  __syncthreads();
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) {
    scores[j] = __fmul_rn(lane_dot(query, kb + j * kv_width, head_dim), scale);
  }
  block_softmax(scores, valid, float_scratch, double_scratch);
  weighted_sum(scores, valid, head_dim, [&](int64_t j) { return vb + j * kv_width; },
               out + (b * q_len + i) * width + column);
  if (probabilities) {
    float* pi = probabilities + ((b * heads + h) * q_len + i) * kv_len;
    for (int64_t j = threadIdx.x; j < kv_len; j += blockDim.x) pi[j] = j < valid ? scores[j] : 0.0f;
  }
}

__global__ void cached_attention_kernel(const float* q, int64_t heads, int64_t kv_heads,
                                        int64_t head_dim, int64_t steps,
                                        const float* const* step_keys,
                                        const float* const* step_values, const int32_t* ancestry,
                                        int64_t ancestry_stride, float scale, float* out) {
  extern __shared__ float shared[];
  __shared__ float float_scratch[kWarpSize];
  __shared__ double double_scratch[kWarpSize];
  float* query = shared;              // [head_dim]
  float* scores = shared + head_dim;  // [steps]
  const int64_t h = blockIdx.x, i = blockIdx.y;
  const int64_t width = heads * head_dim, column = h * head_dim;
  const int64_t kv_width = kv_heads * head_dim, kv_column = h / (heads / kv_heads) * head_dim;
  const int32_t* rows = ancestry + i * ancestry_stride;
  const float* qi = q + i * width + column;
  for (int64_t c = threadIdx.x; c < head_dim; c += blockDim.x) query[c] = qi[c];
  __syncthreads();
  for (int64_t s = threadIdx.x; s < steps; s += blockDim.x) {
    const float* key = step_keys[s] + static_cast<int64_t>(rows[s]) * kv_width + kv_column;
    scores[s] = __fmul_rn(lane_dot(query, key, head_dim), scale);
  }
  block_softmax(scores, steps, float_scratch, double_scratch);
  weighted_sum(scores, steps, head_dim,
               [&](int64_t s) {
                 return step_values[s] + static_cast<int64_t>(rows[s]) * kv_width + kv_column;
               },
               out + i * width + column);
}

void check_keys(const char* op, int64_t keys, int64_t head_dim) {
  if (keys < 1 || keys > max_attention_keys(head_dim)) {
    throw CudaError(std::string(op) + ": " + std::to_string(keys) + " keys, expected 1.." +
                    std::to_string(max_attention_keys(head_dim)));
  }
}

void check_grid(const char* op, int64_t y, int64_t z) {
  if (y > 65535 || z > 65535) throw CudaError(std::string(op) + ": batch or heads too large");
}

}  // namespace

int64_t max_attention_keys(int64_t head_dim) {
  return kSharedBytes / static_cast<int64_t>(sizeof(float)) - head_dim;
}

void attention(const float* q, const float* k, const float* v, int64_t batch, int64_t q_len,
               int64_t kv_len, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const int32_t* kv_index, const int64_t* kv_lengths, bool causal, float scale,
               float* out, float* probabilities, cudaStream_t stream) {
  if (batch <= 0 || q_len <= 0) return;
  check_keys("attention", kv_len, head_dim);
  check_grid("attention", heads, batch);
  const dim3 grid(static_cast<unsigned>(q_len), static_cast<unsigned>(heads),
                  static_cast<unsigned>(batch));
  const size_t shared = static_cast<size_t>(head_dim + kv_len) * sizeof(float);
  attention_kernel<<<grid, row_block_size(kv_len > head_dim ? kv_len : head_dim, kMaxThreads),
                     shared, stream>>>(q, k, v, q_len, kv_len, heads, kv_heads, head_dim,
                                       kv_index, kv_lengths, causal, scale, out, probabilities);
  check_launch("attention_kernel");
}

void cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, int64_t steps, const float* const* step_keys,
                      const float* const* step_values, const int32_t* ancestry,
                      int64_t ancestry_stride, float scale, float* out, cudaStream_t stream) {
  if (n <= 0) return;
  check_keys("cached_attention", steps, head_dim);
  check_grid("cached_attention", n, 1);
  const dim3 grid(static_cast<unsigned>(heads), static_cast<unsigned>(n));
  const size_t shared = static_cast<size_t>(head_dim + steps) * sizeof(float);
  cached_attention_kernel<<<grid, row_block_size(steps > head_dim ? steps : head_dim, kMaxThreads),
                            shared, stream>>>(q, heads, kv_heads, head_dim, steps, step_keys,
                                              step_values, ancestry, ancestry_stride, scale, out);
  check_launch("cached_attention_kernel");
}

}  // namespace pytransformer::kernels::cuda

// CUDA multi-head and grouped-query scaled dot-product attention (reference:
// kernels/ref/attention.h, whose layouts, head grouping and masking these kernels follow
// exactly; all pointers are device memory, queued on `stream`). One block per (query, head):
// each thread computes whole dot products in the reference's lane order, the block does the
// softmax (block_softmax), and each thread sums the values of one output column over the keys
// in increasing order, as the reference does.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace pytransformer::kernels::cuda {

// Keys (kv_len or steps) one block can attend over: the scores and the query are staged in
// 40 KiB of shared memory.
int64_t max_attention_keys(int64_t head_dim);

// Full sequences with key padding and an optional causal mask; arguments as
// kernels::ref::attention: q [batch, q_len, heads * head_dim];
// k, v [kv_batch, kv_len, kv_heads * head_dim] (kv_heads divides heads); kv_index [batch] or
// nullptr; kv_lengths [kv_batch] in 1..kv_len; causal (q_len == kv_len): query i sees keys
// j <= i only; out [batch, q_len, heads * head_dim]; probabilities: optional
// [batch, heads, q_len, kv_len], zero for padding and masked keys.
void attention(const float* q, const float* k, const float* v, int64_t batch, int64_t q_len,
               int64_t kv_len, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const int32_t* kv_index, const int64_t* kv_lengths, bool causal, float scale,
               float* out, float* probabilities, cudaStream_t stream);

// One decoder step of self-attention over the step-chunked cache, as
// kernels::ref::cached_attention: q [n, heads * head_dim]; step_keys[s], step_values[s]
// (s < steps) are device arrays of device pointers to the chunk of step s (rows of
// kv_heads * head_dim floats); hypothesis i reads row ancestry[i * ancestry_stride + s] of
// chunk s. out [n, heads * head_dim].
void cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, int64_t steps, const float* const* step_keys,
                      const float* const* step_values, const int32_t* ancestry,
                      int64_t ancestry_stride, float scale, float* out, cudaStream_t stream);

}  // namespace pytransformer::kernels::cuda

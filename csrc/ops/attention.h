// Multi-head scaled dot-product attention (kernels/ref/attention.h states the math).
#pragma once

#include <cstdint>

#include "tensor/tensor.h"
#include "tensor/thread_pool.h"

namespace pytransformer::ops {

// q: [batch, q_len, d]; keys, values: [kv_batch, kv_len, d] with d = heads * head_dim.
// kv_index: [batch] or nullptr (identity, then kv_batch == batch); kv_lengths: [kv_batch],
// each in 1..kv_len. out: resized to [batch, q_len, d].
// probabilities: optional, resized to [batch, heads, q_len, kv_len].
// Batch entries are split between the pool's threads.
void attention(const tensor::Tensor& q, const tensor::Tensor& keys, const tensor::Tensor& values,
               int64_t heads, const int32_t* kv_index, const int64_t* kv_lengths, float scale,
               tensor::Tensor& out, tensor::Tensor* probabilities, const tensor::ThreadPool& pool);

// Self-attention of one decoder step over the step-chunked cache.
// q: [n, d]; step_keys/step_values: [steps] chunk bases (rows of d floats); ancestry: row of
// each hypothesis's ancestor per step, [n, ancestry_stride] (stride >= steps).
// out: resized to [n, d].
void cached_attention(const tensor::Tensor& q, int64_t heads, int64_t steps,
                      const float* const* step_keys, const float* const* step_values,
                      const int32_t* ancestry, int64_t ancestry_stride, float scale,
                      tensor::Tensor& out, const tensor::ThreadPool& pool);

}  // namespace pytransformer::ops

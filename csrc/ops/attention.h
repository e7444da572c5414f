// Multi-head and grouped-query scaled dot-product attention (kernels/ref/attention.h states
// the math), on the device of the model (ops/device.h): tensors in its memory, index arrays on
// the host. Query head h reads kv head h / (heads / kv_heads); kv_heads == heads is multi-head
// attention. Shape errors throw std::logic_error.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"
#include "ops/device.h"

namespace pytransformer::ops {

// q: [batch, q_len, d] with d = heads * head_dim; keys, values: [kv_batch, kv_len, kv_d] with
// kv_d = kv_heads * head_dim, kv_heads dividing heads.
// kv_index: [batch] or nullptr (identity, then kv_batch == batch); kv_lengths: [kv_batch],
// each in 1..kv_len. causal: query i also sees only keys j <= i (requires q_len == kv_len).
// out: resized to [batch, q_len, d].
// probabilities: optional, resized to [batch, heads, q_len, kv_len].
void attention(const tensor::Tensor& q, const tensor::Tensor& keys, const tensor::Tensor& values,
               int64_t heads, int64_t kv_heads, const int32_t* kv_index,
               const int64_t* kv_lengths, bool causal, float scale, tensor::Tensor& out,
               tensor::Tensor* probabilities, const Device& device);

// Self-attention of one decoder step over the step-chunked cache.
// q: [n, d] with d = heads * head_dim; step_keys/step_values: [steps] chunk bases (rows of
// kv_heads * head_dim floats in device memory, kv_heads dividing heads; the arrays on the
// host); ancestry: row of each hypothesis's ancestor per step, [n, ancestry_stride]
// (stride >= steps).
// out: resized to [n, d].
void cached_attention(const tensor::Tensor& q, int64_t heads, int64_t kv_heads, int64_t steps,
                      const float* const* step_keys, const float* const* step_values,
                      const int32_t* ancestry, int64_t ancestry_stride, float scale,
                      tensor::Tensor& out, const Device& device);

}  // namespace pytransformer::ops

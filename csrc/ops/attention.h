// Multi-head scaled dot-product attention (kernels/ref/attention.h states the math), on the
// device of the model (ops/device.h): tensors in its memory, index arrays on the host.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"
#include "ops/device.h"

namespace pytransformer::ops {

// q: [batch, q_len, d]; keys, values: [kv_batch, kv_len, d] with d = heads * head_dim.
// kv_index: [batch] or nullptr (identity, then kv_batch == batch); kv_lengths: [kv_batch],
// each in 1..kv_len. out: resized to [batch, q_len, d].
// probabilities: optional, resized to [batch, heads, q_len, kv_len].
void attention(const tensor::Tensor& q, const tensor::Tensor& keys, const tensor::Tensor& values,
               int64_t heads, const int32_t* kv_index, const int64_t* kv_lengths, float scale,
               tensor::Tensor& out, tensor::Tensor* probabilities, const Device& device);

// Self-attention of one decoder step over the step-chunked cache.
// q: [n, d]; step_keys/step_values: [steps] chunk bases (rows of d floats in device memory;
// the arrays on the host); ancestry: row of each hypothesis's ancestor per step,
// [n, ancestry_stride] (stride >= steps).
// out: resized to [n, d].
void cached_attention(const tensor::Tensor& q, int64_t heads, int64_t steps,
                      const float* const* step_keys, const float* const* step_values,
                      const int32_t* ancestry, int64_t ancestry_stride, float scale,
                      tensor::Tensor& out, const Device& device);

}  // namespace pytransformer::ops

// Multi-head attention with the weights `<scope>.<prefix>_{q,k,v,out}.weight` [d, d] (+ biases
// when model.linear_bias), prefix "attn_self" or "attn_cross". Heads are column slices of
// d_model; scores are scaled by 1/sqrt(head_dim). A decoder's self-attention (stack_qkv)
// projects q, k and v of a step as one product where the device and the weights allow
// (layers::Linear::stacked): a step's products are small, and one of 3d rows costs less than
// three of d.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "format/model_file.h"
#include "layers/linear.h"
#include "layers/scratch.h"
#include "tensor/tensor.h"
#include "ops/device.h"

namespace pytransformer::layers {

// One layer's view of the decoder self-attention cache for one step (models/seq2seq_model.h
// describes the design). The chunk of step s holds rows of kv_heads * head_dim floats (d_model
// for multi-head attention; device memory);
// hypothesis i reads row ancestry[i * ancestry_stride + s] of chunk s. The arrays of chunk
// bases and the ancestry are host memory.
struct StepCache {
  int64_t steps = 0;                         // including the current step
  const float* const* step_keys = nullptr;   // [steps] chunk bases
  const float* const* step_values = nullptr;
  float* current_keys = nullptr;             // == step_keys[steps - 1]: [n, row] written here
  float* current_values = nullptr;
  const int32_t* ancestry = nullptr;         // [n, ancestry_stride]
  int64_t ancestry_stride = 0;
};

class MultiHeadAttention {
 public:
  MultiHeadAttention(const format::ModelFile& file, const std::string& scope,
                     const std::string& prefix, int64_t heads, const ops::Device& device,
                     bool stack_qkv = false);

  // Every `accumulate` below: out += attention instead of out = attention (out already holds
  // [n, d] / [batch, length, d]: the pre-norm residual connection, added while writing).
  // `scratch` holds the intermediates (layers/scratch.h); out must not be one of them.

  // Encoder self-attention. x: [batch, length, d]; lengths: [batch], keys at t >= length are
  // padding. out: [batch, length, d].
  void self_attention(const tensor::Tensor& x, const int64_t* lengths, tensor::Tensor& out,
                      AttentionScratch& scratch, const ops::Device& device,
                      bool accumulate = false) const;

  // Keys and values of the encoder output for cross-attention.
  // memory: [batch, source_length, d] -> keys, values: [batch, source_length, d].
  void project_memory(const tensor::Tensor& memory, tensor::Tensor& keys, tensor::Tensor& values,
                      const ops::Device& device) const;

  // One decoder step of cross-attention. x: [n, d]; hypothesis i attends to memory entry
  // sentence[i] (keys/values from project_memory, lengths [batch]). out: [n, d].
  // probabilities: optional, resized to [n, heads, 1, source_length].
  void cross_attention_step(const tensor::Tensor& x, const tensor::Tensor& keys,
                            const tensor::Tensor& values, const int32_t* sentence,
                            const int64_t* lengths, tensor::Tensor& out,
                            tensor::Tensor* probabilities, AttentionScratch& scratch,
                            const ops::Device& device, bool accumulate = false) const;

  // One decoder step of self-attention. x: [n, d]; writes this step's keys and values to
  // cache.current_keys / current_values, then attends over the cache. out: [n, d].
  void cached_self_attention_step(const tensor::Tensor& x, const StepCache& cache,
                                  tensor::Tensor& out, AttentionScratch& scratch,
                                  const ops::Device& device, bool accumulate = false) const;

 private:
  int64_t heads_;
  float scale_;
  std::unique_ptr<Linear> qkv_;      // q | k | v stacked, or nullptr
  std::optional<Linear> q_, k_, v_;  // where not stacked
  Linear out_;
};

}  // namespace pytransformer::layers

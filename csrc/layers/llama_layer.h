// One layer `dec.{i}` of a decoder-only Llama-family model (docs/format.md, "Decoder-only
// language models"):
//   x += out(attention(rotary(q(n)), rotary(k(n)), v(n)))   with n = RMSNorm(x) * attn_self_norm
//   x += down(act(gate(n')) * up(n'))                        with n' = RMSNorm(x) * ffn_norm
// Grouped-query attention (kv_heads K/V heads, query head h reads K/V head
// h / (heads / kv_heads)), scores scaled by 1/sqrt(head_dim); gate|up is one fused
// `ffn_gate_up` product. Keys are cached after rotary, so a step reads them as they are.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "format/model_file.h"
#include "layers/attention.h"
#include "layers/linear.h"
#include "layers/scratch.h"
#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::layers {

// The model's rotary tables, [max_positions, rotary_dim / 2] each in the device's memory
// (kernels/ref/rotary.h), shared by every layer.
struct RotaryTables {
  tensor::Tensor cos, sin;
  int64_t rotary_dim = 0;
  kernels::ref::RotaryLayout layout = kernels::ref::RotaryLayout::HALF_SPLIT;
};

class LlamaLayer {
 public:
  LlamaLayer(const format::ModelFile& file, int64_t index, const ops::Device& device);

  // The prompt pass: x [batch * length, d], `batch` prompts of `length` tokens side by side,
  // updated in place; positions [batch * length] (host). Writes the rows' keys and values
  // [batch * length, kv_heads * head_dim] into keys / values (resized) for the cache. Causal
  // attention within each prompt.
  void prefill(tensor::Tensor& x, int64_t batch, int64_t length, const int32_t* positions,
               const RotaryTables& rotary, tensor::Tensor& keys, tensor::Tensor& values,
               LayerScratch& scratch, const ops::Device& device) const;

  // One cached step for n hypotheses: x [n, d] updated in place; positions [n] (host); this
  // step's keys and values go to cache.current_keys / current_values.
  void step(tensor::Tensor& x, const int32_t* positions, const RotaryTables& rotary,
            const StepCache& cache, LayerScratch& scratch, const ops::Device& device) const;

  int64_t kv_width() const { return kv_heads_ * head_dim_; }

 private:
  // normed [rows, d] -> q [rows, heads * head_dim], k [rows, kv_width] (resized) and values
  // (caller-owned [rows, kv_width] device memory), by one stacked product or three.
  void project(const tensor::Tensor& normed, tensor::Tensor& q, tensor::Tensor& k, float* values,
               AttentionScratch& attention, const ops::Device& device) const;
  // normed = RMSNorm(x) * gamma.
  void norm(const tensor::Tensor& x, const float* gamma, tensor::Tensor& normed,
            const ops::Device& device) const;
  // x += down(act(gate) * up) of RMSNorm(x).
  void feed_forward(tensor::Tensor& x, LayerScratch& scratch, const ops::Device& device) const;

  int64_t heads_, kv_heads_, head_dim_;
  float scale_;
  double epsilon_;
  format::Activation activation_;
  const float* attention_norm_;  // [d], device memory
  const float* ffn_norm_;
  // q | k | v as one product where the device and the weights allow (Linear::stacked), else
  // q_, k_ and v_.
  std::unique_ptr<Linear> qkv_;
  std::optional<Linear> q_, k_, v_;
  Linear out_, gate_up_, down_;
};

}  // namespace pytransformer::layers

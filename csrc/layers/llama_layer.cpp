#include "layers/llama_layer.h"

#include <cmath>
#include <vector>

#include "format/tensor_names.h"
#include "ops/attention.h"
#include "ops/linear.h"
#include "ops/gated_activation.h"
#include "ops/rms_norm.h"
#include "ops/rotary.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::layers {

namespace {

const float* norm_weight(const format::ModelFile& file, const std::string& scope,
                         const std::string& module, const ops::Device& device) {
  const int64_t d = file.config().d_model;
  const float* host = tensor::vector_from_file(file, format::tensor_name(scope, module, "gamma"), d);
  return static_cast<const float*>(device.weight(host, sizeof(float) * static_cast<size_t>(d)));
}

}  // namespace

LlamaLayer::LlamaLayer(const format::ModelFile& file, int64_t index, const ops::Device& device)
    : heads_(file.config().decoder_heads),
      kv_heads_(file.config().kv_heads),
      head_dim_(file.config().d_model / file.config().decoder_heads),
      scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim_)))),
      epsilon_(file.config().layer_norm_epsilon),
      activation_(file.config().activation),
      attention_norm_(norm_weight(file, format::layer_scope(format::Stack::DECODER, index),
                                  "attn_self_norm", device)),
      ffn_norm_(norm_weight(file, format::layer_scope(format::Stack::DECODER, index), "ffn_norm",
                            device)),
      qkv_(Linear::stacked(file, format::layer_scope(format::Stack::DECODER, index),
                           {"attn_self_q", "attn_self_k", "attn_self_v"}, file.config().qkv_bias,
                           device)),
      out_(file, format::layer_scope(format::Stack::DECODER, index), "attn_self_out", false,
           device),
      gate_up_(file, format::layer_scope(format::Stack::DECODER, index), "ffn_gate_up", false,
               device),
      down_(file, format::layer_scope(format::Stack::DECODER, index), "ffn_down", false, device) {
  if (!qkv_) {
    const std::string scope = format::layer_scope(format::Stack::DECODER, index);
    q_.emplace(file, scope, "attn_self_q", file.config().qkv_bias, device);
    k_.emplace(file, scope, "attn_self_k", file.config().qkv_bias, device);
    v_.emplace(file, scope, "attn_self_v", file.config().qkv_bias, device);
  }
}

void LlamaLayer::project(const tensor::Tensor& normed, tensor::Tensor& q, tensor::Tensor& k,
                         float* values, AttentionScratch& attention,
                         const ops::Device& device) const {
  if (!qkv_) {
    q_->forward(normed, q, device);
    k_->forward(normed, k, device);
    v_->forward(normed, values, device);
    return;
  }
  const int64_t rows = normed.dim(0), q_width = heads_ * head_dim_;
  qkv_->forward(normed, attention.qkv, device);  // [rows, q_width + 2 * kv_width]
  q.resize({rows, q_width}, device.allocator());
  k.resize({rows, kv_width()}, device.allocator());
  ops::copy_columns(attention.qkv, 0, q_width, q.data(), device);
  ops::copy_columns(attention.qkv, q_width, kv_width(), k.data(), device);
  ops::copy_columns(attention.qkv, q_width + kv_width(), kv_width(), values, device);
}

void LlamaLayer::norm(const tensor::Tensor& x, const float* gamma, tensor::Tensor& normed,
                      const ops::Device& device) const {
  ops::rms_norm(x, gamma, epsilon_, normed, device);
}

void LlamaLayer::feed_forward(tensor::Tensor& x, LayerScratch& scratch,
                              const ops::Device& device) const {
  norm(x, ffn_norm_, scratch.normed, device);
  gate_up_.forward(scratch.normed, scratch.ffn_hidden, device);
  ops::gated_activation(activation_, scratch.ffn_hidden, scratch.sublayer, device);
  down_.forward(scratch.sublayer, x, device, std::nullopt, &x);
}

void LlamaLayer::prefill(tensor::Tensor& x, int64_t batch, int64_t length,
                         const int32_t* positions, const RotaryTables& rotary,
                         tensor::Tensor& keys, tensor::Tensor& values, LayerScratch& scratch,
                         const ops::Device& device) const {
  AttentionScratch& attention = scratch.attention;
  norm(x, attention_norm_, scratch.normed, device);
  values.resize({batch * length, kv_width()}, device.allocator());
  project(scratch.normed, attention.q, keys, values.data(), attention, device);
  ops::apply_rotary(attention.q, heads_, rotary.rotary_dim, positions, rotary.cos, rotary.sin,
                    rotary.layout, device);
  ops::apply_rotary(keys, kv_heads_, rotary.rotary_dim, positions, rotary.cos, rotary.sin,
                    rotary.layout, device);
  const int64_t rows = batch * length;
  attention.q.reshape({batch, length, heads_ * head_dim_});
  keys.reshape({batch, length, kv_width()});
  values.reshape({batch, length, kv_width()});
  const std::vector<int64_t> lengths(static_cast<size_t>(batch), length);
  ops::attention(attention.q, keys, values, heads_, kv_heads_, nullptr, lengths.data(), true,
                 scale_, attention.context, nullptr, device);
  keys.reshape({rows, kv_width()});
  values.reshape({rows, kv_width()});
  attention.context.reshape({rows, heads_ * head_dim_});
  out_.forward(attention.context, x, device, std::nullopt, &x);
  feed_forward(x, scratch, device);
}

void LlamaLayer::step(tensor::Tensor& x, const int32_t* positions, const RotaryTables& rotary,
                      const StepCache& cache, LayerScratch& scratch,
                      const ops::Device& device) const {
  AttentionScratch& attention = scratch.attention;
  const int64_t n = x.dim(0);
  norm(x, attention_norm_, scratch.normed, device);
  project(scratch.normed, attention.q, attention.k, cache.current_values, attention,
          device);  // values straight into this step's chunk
  ops::apply_rotary(attention.q, heads_, rotary.rotary_dim, positions, rotary.cos, rotary.sin,
                    rotary.layout, device);
  ops::apply_rotary(attention.k, kv_heads_, rotary.rotary_dim, positions, rotary.cos, rotary.sin,
                    rotary.layout, device);
  device.allocator().copy(attention.k.data(), sizeof(float) * static_cast<size_t>(n * kv_width()),
                          cache.current_keys);
  ops::cached_attention(attention.q, heads_, kv_heads_, cache.steps, cache.step_keys,
                        cache.step_values, cache.ancestry, cache.ancestry_stride, scale_,
                        attention.context, device);
  out_.forward(attention.context, x, device, std::nullopt, &x);
  feed_forward(x, scratch, device);
}

}  // namespace pytransformer::layers

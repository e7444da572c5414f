// The weight-name table of docs/format.md ("Tensor names"), in one place.
#include "format/tensor_names.h"

#include <utility>

namespace pytransformer::format {

std::string stack_scope(Stack stack) { return stack == Stack::ENCODER ? "enc" : "dec"; }

std::string layer_scope(Stack stack, int64_t layer) {
  return stack_scope(stack) + "." + std::to_string(layer);
}

std::string tensor_name(const std::string& scope, const std::string& module,
                        const std::string& param) {
  return scope + "." + module + "." + param;
}

std::string scale_name(const std::string& matrix_name) { return matrix_name + ".scale"; }

std::string input_scale_name(const std::string& matrix_name) { return matrix_name + ".input_scale"; }

namespace {

class TensorListBuilder {
 public:
  explicit TensorListBuilder(const ModelConfig& config) : config_(config) {}

  void matrix(const std::string& scope, const std::string& module, int64_t rows, int64_t cols) {
    tensors_.push_back({tensor_name(scope, module, "weight"), {rows, cols}, true});
  }
  void vector(const std::string& scope, const std::string& module, const std::string& param,
              int64_t size) {
    tensors_.push_back({tensor_name(scope, module, param), {size}, false});
  }
  void layer_norm(const std::string& scope, const std::string& module) {
    vector(scope, module, "gamma", config_.d_model);
    vector(scope, module, "beta", config_.d_model);
  }
  // A linear map in -> out: weight [out, in], bias [out] when model.linear_bias.
  void linear(const std::string& scope, const std::string& module, int64_t out, int64_t in) {
    matrix(scope, module, out, in);
    if (config_.linear_bias) vector(scope, module, "bias", out);
  }
  void attention(const std::string& scope, const std::string& kind) {
    const int64_t d = config_.d_model;
    for (const char* projection : {"q", "k", "v", "out"}) {
      linear(scope, "attn_" + kind + "_" + projection, d, d);
    }
    layer_norm(scope, "attn_" + kind + "_norm");
  }
  void feed_forward(const std::string& scope, int64_t ffn_dim) {
    linear(scope, "ffn_up", ffn_dim, config_.d_model);
    linear(scope, "ffn_down", config_.d_model, ffn_dim);
    layer_norm(scope, "ffn_norm");
  }
  void stack(Stack which) {
    const bool decoder = which == Stack::DECODER;
    const std::string scope = stack_scope(which);
    const int64_t vocab = decoder ? config_.target_vocab_size : config_.source_vocab_size;
    const int64_t layers = decoder ? config_.decoder_layers : config_.encoder_layers;
    const int64_t ffn_dim = decoder ? config_.decoder_ffn_dim : config_.encoder_ffn_dim;
    matrix(scope, "embed", vocab, config_.d_model);
    if (config_.embedding_norm) layer_norm(scope, "embed_norm");
    for (int64_t i = 0; i < layers; ++i) {
      const std::string layer = layer_scope(which, i);
      if (decoder && config_.decoder_autoregression == DecoderAutoregression::SSRU) {
        // [candidate | forget gate] from one product; the bias is always stored.
        matrix(layer, "ssru", 2 * config_.d_model, config_.d_model);
        vector(layer, "ssru", "bias", 2 * config_.d_model);
        layer_norm(layer, "ssru_norm");
      } else {
        attention(layer, "self");
      }
      if (decoder) attention(layer, "cross");
      feed_forward(layer, ffn_dim);
    }
    if (config_.pre_norm) layer_norm(scope, "final_norm");
    if (decoder) {
      matrix(scope, "out_proj", vocab, config_.d_model);
      if (config_.output_bias) vector(scope, "out_proj", "bias", vocab);
    }
  }

  // The decoder-only Llama-family stack (docs/format.md, "Decoder-only language models").
  void llama_stack() {
    const std::string scope = stack_scope(Stack::DECODER);
    const int64_t d = config_.d_model, vocab = config_.target_vocab_size;
    const int64_t head_dim = d / config_.decoder_heads;
    const int64_t q_width = config_.decoder_heads * head_dim, kv_width = config_.kv_heads * head_dim;
    matrix(scope, "embed", vocab, d);
    for (int64_t i = 0; i < config_.decoder_layers; ++i) {
      const std::string layer = layer_scope(Stack::DECODER, i);
      vector(layer, "attn_self_norm", "gamma", d);
      for (const auto& [projection, width] :
           {std::pair{"q", q_width}, std::pair{"k", kv_width}, std::pair{"v", kv_width}}) {
        const std::string module = std::string("attn_self_") + projection;
        matrix(layer, module, width, d);
        if (config_.qkv_bias) vector(layer, module, "bias", width);
      }
      matrix(layer, "attn_self_out", d, q_width);
      vector(layer, "ffn_norm", "gamma", d);
      matrix(layer, "ffn_gate_up", 2 * config_.decoder_ffn_dim, d);
      matrix(layer, "ffn_down", d, config_.decoder_ffn_dim);
    }
    vector(scope, "final_norm", "gamma", d);
    matrix(scope, "out_proj", vocab, d);
  }

  std::vector<ExpectedTensor> take() { return std::move(tensors_); }

 private:
  const ModelConfig& config_;
  std::vector<ExpectedTensor> tensors_;
};

}  // namespace

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config) {
  TensorListBuilder builder(config);
  if (config.decoder_only()) {
    builder.llama_stack();
  } else {
    builder.stack(Stack::ENCODER);
    builder.stack(Stack::DECODER);
  }
  return builder.take();
}

}  // namespace pytransformer::format

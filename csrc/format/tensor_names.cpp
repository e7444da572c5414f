// The weight-name table of docs/format.md ("Tensor names"), in one place.
#include "format/tensor_names.h"

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
      attention(layer, "self");
      if (decoder) attention(layer, "cross");
      feed_forward(layer, ffn_dim);
    }
    if (config_.pre_norm) layer_norm(scope, "final_norm");
    if (decoder) {
      matrix(scope, "out_proj", vocab, config_.d_model);
      if (config_.output_bias) vector(scope, "out_proj", "bias", vocab);
    }
  }

  std::vector<ExpectedTensor> take() { return std::move(tensors_); }

 private:
  const ModelConfig& config_;
  std::vector<ExpectedTensor> tensors_;
};

}  // namespace

std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config) {
  TensorListBuilder builder(config);
  builder.stack(Stack::ENCODER);
  builder.stack(Stack::DECODER);
  return builder.take();
}

}  // namespace pytransformer::format

#include "layers/encoder_layer.h"

#include "format/tensor_names.h"

namespace pytransformer::layers {
namespace {

std::string scope_of(int64_t index) { return format::layer_scope(format::Stack::ENCODER, index); }

}  // namespace

EncoderLayer::EncoderLayer(const format::ModelFile& file, int64_t index)
    : pre_norm_(file.config().pre_norm),
      self_attention_(file, scope_of(index), "attn_self", file.config().encoder_heads),
      self_attention_norm_(file, scope_of(index), "attn_self_norm"),
      feed_forward_(file, scope_of(index)),
      feed_forward_norm_(file, scope_of(index), "ffn_norm") {}

void EncoderLayer::forward(tensor::Tensor& x, const int64_t* lengths, LayerScratch& scratch,
                           const tensor::ThreadPool& pool) const {
  tensor::Tensor& normed = scratch.normed;
  tensor::Tensor& sublayer = scratch.sublayer;
  if (pre_norm_) {
    self_attention_norm_.forward(x, nullptr, normed);
    // Residual connections are added by each sub-layer's last linear map as it writes x.
    self_attention_.self_attention(normed, lengths, x, scratch.attention, pool,
                                   /*accumulate=*/true);
    feed_forward_norm_.forward(x, nullptr, normed);
    feed_forward_.forward(normed, x, scratch.ffn_hidden, pool, /*accumulate=*/true);
  } else {
    self_attention_.self_attention(x, lengths, sublayer, scratch.attention, pool);
    self_attention_norm_.forward(x, &sublayer, x);
    feed_forward_.forward(x, sublayer, scratch.ffn_hidden, pool);
    feed_forward_norm_.forward(x, &sublayer, x);
  }
}

}  // namespace pytransformer::layers

#include "layers/encoder_layer.h"

#include "format/tensor_names.h"

namespace pytransformer::layers {
namespace {

std::string scope_of(int64_t index) { return format::layer_scope(format::Stack::ENCODER, index); }

}  // namespace

EncoderLayer::EncoderLayer(const format::ModelFile& file, int64_t index, const ops::Device& device)
    : pre_norm_(file.config().pre_norm),
      self_attention_(file, scope_of(index), "attn_self", file.config().encoder_heads, device),
      self_attention_norm_(file, scope_of(index), "attn_self_norm", device),
      feed_forward_(file, scope_of(index), device),
      feed_forward_norm_(file, scope_of(index), "ffn_norm", device) {}

void EncoderLayer::forward(tensor::Tensor& x, const int64_t* lengths, LayerScratch& scratch,
                           const ops::Device& device) const {
  tensor::Tensor& normed = scratch.normed;
  tensor::Tensor& sublayer = scratch.sublayer;
  if (pre_norm_) {
    self_attention_norm_.forward(x, nullptr, normed, device);
    // Residual connections are added by each sub-layer's last linear map as it writes x.
    self_attention_.self_attention(normed, lengths, x, scratch.attention, device,
                                   /*accumulate=*/true);
    feed_forward_norm_.forward(x, nullptr, normed, device);
    feed_forward_.forward(normed, x, scratch.ffn_hidden, device, /*accumulate=*/true);
  } else {
    self_attention_.self_attention(x, lengths, sublayer, scratch.attention, device);
    self_attention_norm_.forward(x, &sublayer, x, device);
    feed_forward_.forward(x, sublayer, scratch.ffn_hidden, device);
    feed_forward_norm_.forward(x, &sublayer, x, device);
  }
}

}  // namespace pytransformer::layers

#include "layers/decoder_layer.h"

#include "format/tensor_names.h"

namespace pytransformer::layers {
namespace {

std::string scope_of(int64_t index) { return format::layer_scope(format::Stack::DECODER, index); }

bool is_ssru(const format::ModelFile& file) {
  return file.config().decoder_autoregression == format::DecoderAutoregression::SSRU;
}

}  // namespace

DecoderLayer::DecoderLayer(const format::ModelFile& file, int64_t index, const ops::Device& device)
    : pre_norm_(file.config().pre_norm),
      self_attention_norm_(file, scope_of(index), is_ssru(file) ? "ssru_norm" : "attn_self_norm",
                           device),
      cross_attention_(file, scope_of(index), "attn_cross", file.config().decoder_heads, device),
      cross_attention_norm_(file, scope_of(index), "attn_cross_norm", device),
      feed_forward_(file, scope_of(index), device),
      feed_forward_norm_(file, scope_of(index), "ffn_norm", device) {
  if (is_ssru(file)) {
    ssru_.emplace(file, scope_of(index), device);
  } else {
    self_attention_.emplace(file, scope_of(index), "attn_self", file.config().decoder_heads, device,
                            /*stack_qkv=*/true);
  }
}

void DecoderLayer::step(tensor::Tensor& x, const StepCache& cache, const RecurrentCells& cells,
                        const CrossMemory& memory, tensor::Tensor* cross_probabilities,
                        LayerScratch& scratch, const ops::Device& device) const {
  tensor::Tensor& normed = scratch.normed;
  tensor::Tensor& sublayer = scratch.sublayer;
  if (pre_norm_) {
    self_attention_norm_.forward(x, nullptr, normed, device);
    // Residual connections are added by each sub-layer's last linear map (or the SSRU step)
    // as it writes x.
    if (ssru_) {
      ssru_->step(normed, cells.previous, cells.parent, *cells.cells, x, /*accumulate=*/true,
                  scratch.gates, device);
    } else {
      self_attention_->cached_self_attention_step(normed, cache, x, scratch.attention, device,
                                                  /*accumulate=*/true);
    }
    cross_attention_norm_.forward(x, nullptr, normed, device);
    cross_attention_.cross_attention_step(normed, *memory.keys, *memory.values, memory.sentence,
                                          memory.lengths, x, cross_probabilities,
                                          scratch.attention, device, /*accumulate=*/true);
    feed_forward_norm_.forward(x, nullptr, normed, device);
    feed_forward_.forward(normed, x, scratch.ffn_hidden, device, /*accumulate=*/true);
  } else {
    if (ssru_) {
      ssru_->step(x, cells.previous, cells.parent, *cells.cells, sublayer, /*accumulate=*/false,
                  scratch.gates, device);
    } else {
      self_attention_->cached_self_attention_step(x, cache, sublayer, scratch.attention, device);
    }
    self_attention_norm_.forward(x, &sublayer, x, device);
    cross_attention_.cross_attention_step(x, *memory.keys, *memory.values, memory.sentence,
                                          memory.lengths, sublayer, cross_probabilities,
                                          scratch.attention, device);
    cross_attention_norm_.forward(x, &sublayer, x, device);
    feed_forward_.forward(x, sublayer, scratch.ffn_hidden, device);
    feed_forward_norm_.forward(x, &sublayer, x, device);
  }
}

}  // namespace pytransformer::layers

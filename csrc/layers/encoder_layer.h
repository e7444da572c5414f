// One encoder layer `enc.{i}`: self-attention and feed-forward, each wrapped in a residual
// connection and a LayerNorm (`attn_self_norm`, `ffn_norm`):
//   post-norm (model.pre_norm false): x = LN(x + sublayer(x));
//   pre-norm  (model.pre_norm true):  x = x + sublayer(LN(x)).
#pragma once

#include <cstdint>

#include "format/model_file.h"
#include "layers/attention.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/scratch.h"
#include "tensor/tensor.h"
#include "ops/device.h"

namespace pytransformer::layers {

class EncoderLayer {
 public:
  EncoderLayer(const format::ModelFile& file, int64_t index, const ops::Device& device);

  // x: [batch, length, d], updated in place; lengths: [batch] (later positions are padding).
  // scratch: the intermediates (layers/scratch.h), not x.
  void forward(tensor::Tensor& x, const int64_t* lengths, LayerScratch& scratch,
               const ops::Device& device) const;

 private:
  bool pre_norm_;
  MultiHeadAttention self_attention_;
  LayerNorm self_attention_norm_;
  FeedForward feed_forward_;
  LayerNorm feed_forward_norm_;
};

}  // namespace pytransformer::layers

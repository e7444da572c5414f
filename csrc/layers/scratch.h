// Intermediate activations of the layers, owned by the caller and reused across calls: a layer
// call allocates nothing once these buffers have reached their largest size (tensor::Tensor
// keeps its capacity). A decoding loop keeps one LayerScratch in its state for all its steps;
// encode() keeps one for its layers. Not thread-safe: one caller uses a scratch at a time, and
// the layers of a stack share one (they run one after the other).
#pragma once

#include "tensor/tensor.h"

namespace pytransformer::layers {

// MultiHeadAttention: the projections and the attention output, [rows, d]; qkv: a stacked
// q | k | v product, [rows, 3d].
struct AttentionScratch {
  tensor::Tensor q, k, v, context, qkv;
};

// EncoderLayer and DecoderLayer.
struct LayerScratch {
  tensor::Tensor normed;        // LayerNorm of the input (pre-norm), [rows, d]
  tensor::Tensor sublayer;      // a sub-layer's output (post-norm), [rows, d]
  tensor::Tensor ffn_hidden;    // FeedForward's inner activations, [rows, ffn]
  tensor::Tensor gates;         // Ssru's candidate | forget gate, [rows, 2d]
  AttentionScratch attention;
};

}  // namespace pytransformer::layers

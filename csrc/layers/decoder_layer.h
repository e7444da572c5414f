// One decoder layer `dec.{i}`: masked self-attention over the step cache (or, in a model whose
// model.decoder_autoregression is ssru, the SSRU recurrence over its cells), cross-attention
// over the encoder output, feed-forward; residuals and LayerNorms (`attn_self_norm` or
// `ssru_norm`, `attn_cross_norm`, `ffn_norm`) placed as in EncoderLayer (post-norm or pre-norm).
#pragma once

#include <cstdint>
#include <optional>

#include "format/model_file.h"
#include "layers/attention.h"
#include "layers/feed_forward.h"
#include "layers/layer_norm.h"
#include "layers/scratch.h"
#include "layers/ssru.h"
#include "tensor/tensor.h"
#include "ops/device.h"

namespace pytransformer::layers {

// The encoder output as one decoder layer's cross-attention sees it.
struct CrossMemory {
  const tensor::Tensor* keys = nullptr;    // [batch, source_length, d]
  const tensor::Tensor* values = nullptr;  // [batch, source_length, d]
  const int64_t* lengths = nullptr;        // [batch], host
  const int32_t* sentence = nullptr;       // [n]: memory entry of each hypothesis, host
};

// An SSRU layer's state for one step (ssru.h): the cells of the last step, read through the
// hypotheses' parents, and this step's, written.
struct RecurrentCells {
  const tensor::Tensor* previous = nullptr;  // [*, d], nullptr at the first step
  const int32_t* parent = nullptr;           // [n], host
  tensor::Tensor* cells = nullptr;           // [n, d], resized
};

class DecoderLayer {
 public:
  DecoderLayer(const format::ModelFile& file, int64_t index, const ops::Device& device);

  const MultiHeadAttention& cross_attention() const { return cross_attention_; }

  bool recurrent() const { return ssru_.has_value(); }

  // One step for n hypotheses. x: [n, d], updated in place. cache: the self-attention keys
  // and values (ignored by an SSRU layer); cells: an SSRU layer's state (ignored otherwise).
  // cross_probabilities: optional, resized to [n, heads, 1, source_length]. scratch: the
  // intermediates (layers/scratch.h), not x.
  void step(tensor::Tensor& x, const StepCache& cache, const RecurrentCells& cells,
            const CrossMemory& memory, tensor::Tensor* cross_probabilities, LayerScratch& scratch,
            const ops::Device& device) const;

 private:
  bool pre_norm_;
  std::optional<MultiHeadAttention> self_attention_;
  std::optional<Ssru> ssru_;
  LayerNorm self_attention_norm_;  // attn_self_norm, or ssru_norm
  MultiHeadAttention cross_attention_;
  LayerNorm cross_attention_norm_;
  FeedForward feed_forward_;
  LayerNorm feed_forward_norm_;
};

}  // namespace pytransformer::layers

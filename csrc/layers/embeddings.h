// Token embeddings of one stack: `<stack>.embed.weight` [vocab, d_model] scaled by
// sqrt(d_model) when model.scale_embedding, plus sinusoidal positions (layout, frequencies and
// offset from the config), then the optional `<stack>.embed_norm` LayerNorm, on `device` (the
// table and the positions in its memory). A decoder-only model (rotary positions, applied in
// attention) has no absolute positions: its position table is one row of zeros (adding it
// changes no value) and every position passed is 0.
#pragma once

#include <cstdint>
#include <optional>

#include "format/model_file.h"
#include "format/tensor_names.h"
#include "layers/layer_norm.h"
#include "ops/device.h"
#include "tensor/tensor.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::layers {

class Embeddings {
 public:
  Embeddings(const format::ModelFile& file, format::Stack stack, const ops::Device& device);

  // ids[count] (< vocab_size()), positions[count] (0-based token index < max_positions(),
  // the config's offset is added here) -> out: [count, d_model].
  // ids and positions: host memory.
  void forward(const int32_t* ids, const int64_t* positions, int64_t count, tensor::Tensor& out,
               const ops::Device& device) const;

  int64_t vocab_size() const { return table_.rows; }
  int64_t max_positions() const { return positions_.dim(0); }

 private:
  tensor::WeightMatrix table_;  // data and row scales in device memory
  float scale_ = 1.0f;
  tensor::Tensor positions_;  // [max_positions, d_model], device memory
  std::optional<LayerNorm> norm_;
};

}  // namespace pytransformer::layers

#include "layers/embeddings.h"

#include <cmath>

#include "ops/embedding.h"

namespace pytransformer::layers {

namespace {

// The table as read from the file, its bytes (and int8 row scales) in `device`'s memory.
tensor::WeightMatrix table_on(const tensor::WeightMatrix& stored, const ops::Device& device) {
  tensor::WeightMatrix table = stored;
  table.data = device.weight(stored.data, static_cast<size_t>(
                                              stored.rows * row_bytes(stored.dtype, stored.cols)));
  if (stored.row_scales) {
    table.row_scales = static_cast<const float*>(
        device.weight(stored.row_scales, sizeof(float) * static_cast<size_t>(stored.rows)));
  }
  return table;
}

}  // namespace

Embeddings::Embeddings(const format::ModelFile& file, format::Stack stack,
                       const ops::Device& device)
    : table_(table_on(tensor::WeightMatrix::from_file(
                          file, format::tensor_name(format::stack_scope(stack), "embed", "weight")),
                      device)),
      positions_(device.allocator()) {
  const format::ModelConfig& config = file.config();
  if (config.scale_embedding) scale_ = static_cast<float>(std::sqrt(static_cast<double>(config.d_model)));
  tensor::Tensor table;
  if (config.decoder_only()) {
    table.resize({1, config.d_model});  // no absolute positions: one row of zeros
    table.fill(0.0f);
  } else {
    ops::sinusoidal_positions(config.position_offset, config.max_positions, config.d_model,
                              config.position_layout, config.position_frequencies, table);
  }
  positions_.resize(table.shape());
  device.allocator().copy_from_host(table.data(), sizeof(float) * static_cast<size_t>(table.numel()),
                                    positions_.data());
  if (config.embedding_norm) norm_.emplace(file, format::stack_scope(stack), "embed_norm", device);
}

void Embeddings::forward(const int32_t* ids, const int64_t* positions, int64_t count,
                         tensor::Tensor& out, const ops::Device& device) const {
  ops::embedding(ids, positions, count, table_, scale_, positions_, out, device);
  if (norm_) norm_->forward(out, nullptr, out, device);
}

}  // namespace pytransformer::layers

#include "layers/embeddings.h"

#include <cmath>

#include "ops/embedding.h"

namespace pytransformer::layers {

Embeddings::Embeddings(const format::ModelFile& file, format::Stack stack)
    : table_(tensor::WeightMatrix::from_file(
          file, format::tensor_name(format::stack_scope(stack), "embed", "weight"))) {
  const format::ModelConfig& config = file.config();
  if (config.scale_embedding) scale_ = static_cast<float>(std::sqrt(static_cast<double>(config.d_model)));
  ops::sinusoidal_positions(config.position_offset, config.max_positions, config.d_model,
                            config.position_layout, config.position_frequencies, positions_);
  if (config.embedding_norm) norm_.emplace(file, format::stack_scope(stack), "embed_norm");
}

void Embeddings::forward(const int32_t* ids, const int64_t* positions, int64_t count,
                         tensor::Tensor& out) const {
  ops::embedding(ids, positions, count, table_, scale_, positions_, out);
  if (norm_) norm_->forward(out, nullptr, out);
}

}  // namespace pytransformer::layers

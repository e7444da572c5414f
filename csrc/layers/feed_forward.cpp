#include "layers/feed_forward.h"

namespace pytransformer::layers {

FeedForward::FeedForward(const format::ModelFile& file, const std::string& scope)
    : activation_(file.config().activation),
      up_(file, scope, "ffn_up", file.config().linear_bias),
      down_(file, scope, "ffn_down", file.config().linear_bias) {}

void FeedForward::forward(const tensor::Tensor& x, tensor::Tensor& out, tensor::Tensor& hidden,
                          const tensor::ThreadPool& pool, bool accumulate) const {
  up_.forward(x, hidden, pool, activation_);
  down_.forward(hidden, out, pool, std::nullopt, accumulate ? &out : nullptr);
}

}  // namespace pytransformer::layers

#include "layers/feed_forward.h"

namespace pytransformer::layers {

FeedForward::FeedForward(const format::ModelFile& file, const std::string& scope,
                         const ops::Device& device)
    : activation_(file.config().activation),
      up_(file, scope, "ffn_up", file.config().linear_bias, device),
      down_(file, scope, "ffn_down", file.config().linear_bias, device) {}

void FeedForward::forward(const tensor::Tensor& x, tensor::Tensor& out, tensor::Tensor& hidden,
                          const ops::Device& device, bool accumulate) const {
  up_.forward(x, hidden, device, activation_);
  down_.forward(hidden, out, device, std::nullopt, accumulate ? &out : nullptr);
}

}  // namespace pytransformer::layers

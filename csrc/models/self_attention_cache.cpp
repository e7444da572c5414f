#include "models/self_attention_cache.h"

#include <algorithm>

namespace pytransformer::models {

SelfAttentionCache::SelfAttentionCache(int64_t layers, int64_t max_hypotheses, int64_t max_steps,
                                       int64_t row_width, const ops::Device& device)
    : max_hypotheses_(max_hypotheses),
      max_steps_(max_steps),
      row_width_(row_width),
      block_steps_(std::max<int64_t>(1, std::min(max_steps, device.cache_block_steps(max_steps)))),
      key_blocks_(static_cast<size_t>(layers)),
      value_blocks_(static_cast<size_t>(layers)),
      step_keys_(static_cast<size_t>(layers), std::vector<float*>(static_cast<size_t>(max_steps))),
      step_values_(static_cast<size_t>(layers), std::vector<float*>(static_cast<size_t>(max_steps))) {
  // The host's lists of blocks never grow past this (no allocation per step).
  const size_t blocks = static_cast<size_t>((max_steps + block_steps_ - 1) / block_steps_);
  for (size_t l = 0; l < key_blocks_.size(); ++l) {
    key_blocks_[l].reserve(blocks);
    value_blocks_[l].reserve(blocks);
  }
  reserve_through(0, device.allocator());
}

void SelfAttentionCache::reserve_through(int64_t step, const tensor::Allocator& allocator) {
  const int64_t chunk = max_hypotheses_ * row_width_;
  while (!key_blocks_.empty() &&
         static_cast<int64_t>(key_blocks_[0].size()) * block_steps_ <= step) {
    const int64_t first = static_cast<int64_t>(key_blocks_[0].size()) * block_steps_;
    const int64_t steps = std::min(block_steps_, max_steps_ - first);
    for (size_t l = 0; l < key_blocks_.size(); ++l) {
      for (auto* blocks : {&key_blocks_[l], &value_blocks_[l]}) {
        blocks->emplace_back(allocator);
        blocks->back().resize({steps * chunk});
      }
      for (int64_t s = first; s < first + steps; ++s) {
        step_keys_[l][s] = key_blocks_[l].back().data() + (s - first) * chunk;
        step_values_[l][s] = value_blocks_[l].back().data() + (s - first) * chunk;
      }
    }
  }
}

float* SelfAttentionCache::keys(size_t layer, int64_t step) {
  return step_keys_[layer][static_cast<size_t>(step)];
}

float* SelfAttentionCache::values(size_t layer, int64_t step) {
  return step_values_[layer][static_cast<size_t>(step)];
}

layers::StepCache SelfAttentionCache::view(size_t layer, int64_t steps, const int32_t* ancestry,
                                           int64_t ancestry_stride) {
  layers::StepCache cache;
  cache.steps = steps;
  cache.step_keys = step_keys_[layer].data();
  cache.step_values = step_values_[layer].data();
  cache.current_keys = keys(layer, steps - 1);
  cache.current_values = values(layer, steps - 1);
  cache.ancestry = ancestry;
  cache.ancestry_stride = ancestry_stride;
  return cache;
}

}  // namespace pytransformer::models

// The self-attention keys and values of one decoding loop, for every decoder layer, in the
// step-chunked layout that layers::StepCache reads (design in seq2seq_model.h): the chunk of
// step s holds max_hypotheses rows of `row_width` floats (kv_heads * head_dim), of which step s
// uses its first n_s rows. Chunks live in blocks of Device::cache_block_steps() steps, allocated
// uninitialised as steps reach them (reserve_through) and never moved: on the CPU one block for
// all steps (only the rows written become resident memory). Not thread-safe: one loop owns it.
#pragma once

#include <cstdint>
#include <vector>

#include "layers/attention.h"
#include "ops/device.h"
#include "tensor/tensor.h"

namespace pytransformer::models {

class SelfAttentionCache {
 public:
  // Sizes the lists and allocates the first block (no allocation per step afterwards, apart
  // from the blocks past the first on a GPU).
  SelfAttentionCache(int64_t layers, int64_t max_hypotheses, int64_t max_steps, int64_t row_width,
                     const ops::Device& device);

  // Allocates the blocks up to the one holding step `step` (< max_steps) that are missing.
  void reserve_through(int64_t step, const tensor::Allocator& allocator);

  // Chunk bases of step `step` (already reserved), device memory: [max_hypotheses, row_width].
  float* keys(size_t layer, int64_t step);
  float* values(size_t layer, int64_t step);

  // Layer `layer`'s view for a step that writes chunk steps - 1 and reads chunks 0..steps-1
  // through ancestry [n, ancestry_stride] (host).
  layers::StepCache view(size_t layer, int64_t steps, const int32_t* ancestry,
                         int64_t ancestry_stride);

  int64_t max_hypotheses() const { return max_hypotheses_; }
  int64_t max_steps() const { return max_steps_; }

 private:
  int64_t max_hypotheses_, max_steps_, row_width_, block_steps_;
  // Per layer: the blocks [block_steps, max_hypotheses, row_width], and the chunk base of every
  // step reserved so far ([max_steps] host arrays of device pointers).
  std::vector<std::vector<tensor::Tensor>> key_blocks_, value_blocks_;
  std::vector<std::vector<float*>> step_keys_, step_values_;
};

}  // namespace pytransformer::models

#include "layers/attention.h"

#include <cmath>

#include "ops/attention.h"

namespace pytransformer::layers {

MultiHeadAttention::MultiHeadAttention(const format::ModelFile& file, const std::string& scope,
                                       const std::string& prefix, int64_t heads,
                                       const ops::Device& device)
    : heads_(heads),
      scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(file.config().d_model / heads)))),
      q_(file, scope, prefix + "_q", file.config().linear_bias, device),
      k_(file, scope, prefix + "_k", file.config().linear_bias, device),
      v_(file, scope, prefix + "_v", file.config().linear_bias, device),
      out_(file, scope, prefix + "_out", file.config().linear_bias, device) {}

void MultiHeadAttention::self_attention(const tensor::Tensor& x, const int64_t* lengths,
                                        tensor::Tensor& out, AttentionScratch& scratch,
                                        const ops::Device& device, bool accumulate) const {
  q_.forward(x, scratch.q, device);
  k_.forward(x, scratch.k, device);
  v_.forward(x, scratch.v, device);
  ops::attention(scratch.q, scratch.k, scratch.v, heads_, heads_, nullptr, lengths, false,
                 scale_, scratch.context, nullptr, device);
  out_.forward(scratch.context, out, device, std::nullopt, accumulate ? &out : nullptr);
}

void MultiHeadAttention::project_memory(const tensor::Tensor& memory, tensor::Tensor& keys,
                                        tensor::Tensor& values,
                                        const ops::Device& device) const {
  k_.forward(memory, keys, device);
  v_.forward(memory, values, device);
}

void MultiHeadAttention::cross_attention_step(const tensor::Tensor& x, const tensor::Tensor& keys,
                                              const tensor::Tensor& values,
                                              const int32_t* sentence, const int64_t* lengths,
                                              tensor::Tensor& out, tensor::Tensor* probabilities,
                                              AttentionScratch& scratch,
                                              const ops::Device& device,
                                              bool accumulate) const {
  const int64_t n = x.dim(0), width = x.dim(1);
  q_.forward(x, scratch.q, device);
  scratch.q.reshape({n, 1, width});
  ops::attention(scratch.q, keys, values, heads_, heads_, sentence, lengths, false, scale_,
                 scratch.context, probabilities, device);
  scratch.context.reshape({n, width});
  out_.forward(scratch.context, out, device, std::nullopt, accumulate ? &out : nullptr);
}

void MultiHeadAttention::cached_self_attention_step(const tensor::Tensor& x,
                                                    const StepCache& cache, tensor::Tensor& out,
                                                    AttentionScratch& scratch,
                                                    const ops::Device& device,
                                                    bool accumulate) const {
  q_.forward(x, scratch.q, device);
  k_.forward(x, cache.current_keys, device);  // straight into this step's chunk
  v_.forward(x, cache.current_values, device);
  ops::cached_attention(scratch.q, heads_, heads_, cache.steps, cache.step_keys,
                        cache.step_values, cache.ancestry, cache.ancestry_stride, scale_,
                        scratch.context, device);
  out_.forward(scratch.context, out, device, std::nullopt, accumulate ? &out : nullptr);
}

}  // namespace pytransformer::layers

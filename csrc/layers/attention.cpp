#include "layers/attention.h"

#include <cmath>
#include <cstring>

#include "ops/attention.h"

namespace pytransformer::layers {

MultiHeadAttention::MultiHeadAttention(const format::ModelFile& file, const std::string& scope,
                                       const std::string& prefix, int64_t heads)
    : heads_(heads),
      scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(file.config().d_model / heads)))),
      q_(file, scope, prefix + "_q", file.config().linear_bias),
      k_(file, scope, prefix + "_k", file.config().linear_bias),
      v_(file, scope, prefix + "_v", file.config().linear_bias),
      out_(file, scope, prefix + "_out", file.config().linear_bias) {}

void MultiHeadAttention::self_attention(const tensor::Tensor& x, const int64_t* lengths,
                                        tensor::Tensor& out, AttentionScratch& scratch,
                                        const tensor::ThreadPool& pool, bool accumulate) const {
  q_.forward(x, scratch.q, pool);
  k_.forward(x, scratch.k, pool);
  v_.forward(x, scratch.v, pool);
  ops::attention(scratch.q, scratch.k, scratch.v, heads_, nullptr, lengths, scale_,
                 scratch.context, nullptr, pool);
  out_.forward(scratch.context, out, pool, std::nullopt, accumulate ? &out : nullptr);
}

void MultiHeadAttention::project_memory(const tensor::Tensor& memory, tensor::Tensor& keys,
                                        tensor::Tensor& values,
                                        const tensor::ThreadPool& pool) const {
  k_.forward(memory, keys, pool);
  v_.forward(memory, values, pool);
}

void MultiHeadAttention::cross_attention_step(const tensor::Tensor& x, const tensor::Tensor& keys,
                                              const tensor::Tensor& values,
                                              const int32_t* sentence, const int64_t* lengths,
                                              tensor::Tensor& out, tensor::Tensor* probabilities,
                                              AttentionScratch& scratch,
                                              const tensor::ThreadPool& pool,
                                              bool accumulate) const {
  const int64_t n = x.dim(0), width = x.dim(1);
  q_.forward(x, scratch.q, pool);
  scratch.q.reshape({n, 1, width});
  ops::attention(scratch.q, keys, values, heads_, sentence, lengths, scale_, scratch.context,
                 probabilities, pool);
  scratch.context.reshape({n, width});
  out_.forward(scratch.context, out, pool, std::nullopt, accumulate ? &out : nullptr);
}

void MultiHeadAttention::cached_self_attention_step(const tensor::Tensor& x,
                                                    const StepCache& cache, tensor::Tensor& out,
                                                    AttentionScratch& scratch,
                                                    const tensor::ThreadPool& pool,
                                                    bool accumulate) const {
  q_.forward(x, scratch.q, pool);
  k_.forward(x, scratch.k, pool);
  v_.forward(x, scratch.v, pool);
  std::memcpy(cache.current_keys, scratch.k.data(), sizeof(float) * scratch.k.numel());
  std::memcpy(cache.current_values, scratch.v.data(), sizeof(float) * scratch.v.numel());
  ops::cached_attention(scratch.q, heads_, cache.steps, cache.step_keys, cache.step_values,
                        cache.ancestry, cache.ancestry_stride, scale_, scratch.context, pool);
  out_.forward(scratch.context, out, pool, std::nullopt, accumulate ? &out : nullptr);
}

}  // namespace pytransformer::layers

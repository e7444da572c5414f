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
                                        tensor::Tensor& out, const tensor::ThreadPool& pool,
                                        bool accumulate) const {
  tensor::Tensor q, k, v, context;
  q_.forward(x, q, pool);
  k_.forward(x, k, pool);
  v_.forward(x, v, pool);
  ops::attention(q, k, v, heads_, nullptr, lengths, scale_, context, nullptr, pool);
  out_.forward(context, out, pool, std::nullopt, accumulate ? &out : nullptr);
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
                                              const tensor::ThreadPool& pool,
                                              bool accumulate) const {
  const int64_t n = x.dim(0), width = x.dim(1);
  tensor::Tensor q, context;
  q_.forward(x, q, pool);
  q.reshape({n, 1, width});
  ops::attention(q, keys, values, heads_, sentence, lengths, scale_, context, probabilities, pool);
  context.reshape({n, width});
  out_.forward(context, out, pool, std::nullopt, accumulate ? &out : nullptr);
}

void MultiHeadAttention::cached_self_attention_step(const tensor::Tensor& x,
                                                    const StepCache& cache, tensor::Tensor& out,
                                                    const tensor::ThreadPool& pool,
                                                    bool accumulate) const {
  tensor::Tensor q, k, v, context;
  q_.forward(x, q, pool);
  k_.forward(x, k, pool);
  v_.forward(x, v, pool);
  std::memcpy(cache.current_keys, k.data(), sizeof(float) * k.numel());
  std::memcpy(cache.current_values, v.data(), sizeof(float) * v.numel());
  ops::cached_attention(q, heads_, cache.steps, cache.step_keys, cache.step_values,
                        cache.ancestry, cache.ancestry_stride, scale_, context, pool);
  out_.forward(context, out, pool, std::nullopt, accumulate ? &out : nullptr);
}

}  // namespace pytransformer::layers

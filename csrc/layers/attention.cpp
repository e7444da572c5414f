#include "layers/attention.h"

#include <cmath>
#include <stdexcept>

#include "ops/attention.h"
#include "ops/linear.h"

namespace pytransformer::layers {

MultiHeadAttention::MultiHeadAttention(const format::ModelFile& file, const std::string& scope,
                                       const std::string& prefix, int64_t heads,
                                       const ops::Device& device, bool stack_qkv)
    : heads_(heads),
      scale_(static_cast<float>(1.0 / std::sqrt(static_cast<double>(file.config().d_model / heads)))),
      out_(file, scope, prefix + "_out", file.config().linear_bias, device) {
  const bool bias = file.config().linear_bias;
  if (stack_qkv) {
    qkv_ = Linear::stacked(file, scope, {prefix + "_q", prefix + "_k", prefix + "_v"}, bias,
                           device);
  }
  if (!qkv_) {
    q_.emplace(file, scope, prefix + "_q", bias, device);
    k_.emplace(file, scope, prefix + "_k", bias, device);
    v_.emplace(file, scope, prefix + "_v", bias, device);
  }
}

void MultiHeadAttention::self_attention(const tensor::Tensor& x, const int64_t* lengths,
                                        tensor::Tensor& out, AttentionScratch& scratch,
                                        const ops::Device& device, bool accumulate) const {
  if (qkv_) throw std::logic_error("MultiHeadAttention: a stacked q | k | v runs only steps");
  q_->forward(x, scratch.q, device);
  k_->forward(x, scratch.k, device);
  v_->forward(x, scratch.v, device);
  ops::attention(scratch.q, scratch.k, scratch.v, heads_, heads_, nullptr, lengths, false,
                 scale_, scratch.context, nullptr, device);
  out_.forward(scratch.context, out, device, std::nullopt, accumulate ? &out : nullptr);
}

void MultiHeadAttention::project_memory(const tensor::Tensor& memory, tensor::Tensor& keys,
                                        tensor::Tensor& values,
                                        const ops::Device& device) const {
  if (qkv_) throw std::logic_error("MultiHeadAttention: a stacked q | k | v runs only steps");
  k_->forward(memory, keys, device);
  v_->forward(memory, values, device);
}

void MultiHeadAttention::cross_attention_step(const tensor::Tensor& x, const tensor::Tensor& keys,
                                              const tensor::Tensor& values,
                                              const int32_t* sentence, const int64_t* lengths,
                                              tensor::Tensor& out, tensor::Tensor* probabilities,
                                              AttentionScratch& scratch,
                                              const ops::Device& device,
                                              bool accumulate) const {
  const int64_t n = x.dim(0), width = x.dim(1);
  if (qkv_) throw std::logic_error("MultiHeadAttention: a stacked q | k | v runs only steps");
  q_->forward(x, scratch.q, device);
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
  if (qkv_) {
    const int64_t n = x.dim(0), width = x.dim(1);
    qkv_->forward(x, scratch.qkv, device);  // [n, 3 * width]
    scratch.q.resize({n, width}, device.allocator());
    ops::copy_columns(scratch.qkv, 0, width, scratch.q.data(), device);
    ops::copy_columns(scratch.qkv, width, width, cache.current_keys, device);
    ops::copy_columns(scratch.qkv, 2 * width, width, cache.current_values, device);
  } else {
    q_->forward(x, scratch.q, device);
    k_->forward(x, cache.current_keys, device);  // straight into this step's chunk
    v_->forward(x, cache.current_values, device);
  }
  ops::cached_attention(scratch.q, heads_, heads_, cache.steps, cache.step_keys,
                        cache.step_values, cache.ancestry, cache.ancestry_stride, scale_,
                        scratch.context, device);
  out_.forward(scratch.context, out, device, std::nullopt, accumulate ? &out : nullptr);
}

}  // namespace pytransformer::layers

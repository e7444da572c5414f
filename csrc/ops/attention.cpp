#include "ops/attention.h"

#include <stdexcept>
#include <string>

#include "ops/device_checks.h"

namespace pytransformer::ops {
namespace {

void check_heads(int64_t width, int64_t heads, int64_t kv_heads) {
  if (heads < 1 || width % heads != 0 || kv_heads < 1 || heads % kv_heads != 0) {
    throw std::logic_error("attention: " + std::to_string(heads) + " heads and " +
                           std::to_string(kv_heads) + " kv heads: heads must divide " +
                           std::to_string(width) + " and kv heads the heads");
  }
}

}  // namespace

void attention(const tensor::Tensor& q, const tensor::Tensor& keys, const tensor::Tensor& values,
               int64_t heads, int64_t kv_heads, const int32_t* kv_index,
               const int64_t* kv_lengths, bool causal, float scale, tensor::Tensor& out,
               tensor::Tensor* probabilities, const Device& device) {
  if (q.rank() != 3 || keys.rank() != 3 || keys.shape() != values.shape() ||
      (!kv_index && keys.dim(0) != q.dim(0))) {
    throw std::logic_error("attention: q " + q.shape_string() + ", keys " + keys.shape_string() +
                           ", values " + values.shape_string());
  }
  const int64_t batch = q.dim(0), q_len = q.dim(1), width = q.dim(2), kv_len = keys.dim(1);
  check_heads(width, heads, kv_heads);
  const int64_t head_dim = width / heads;
  if (keys.dim(2) != kv_heads * head_dim) {
    throw std::logic_error("attention: keys " + keys.shape_string() + " are not " +
                           std::to_string(kv_heads) + " kv heads of q " + q.shape_string() +
                           "'s " + std::to_string(head_dim) + " columns");
  }
  if (causal && q_len != kv_len) {
    throw std::logic_error("attention: causal with q " + q.shape_string() + ", keys " +
                           keys.shape_string() + " (q_len != kv_len)");
  }
  for (int64_t b = 0; b < keys.dim(0); ++b) {
    if (kv_lengths[b] < 1 || kv_lengths[b] > kv_len) throw std::logic_error("attention: bad length");
  }
  if (kv_index) {
    for (int64_t b = 0; b < batch; ++b) {
      if (kv_index[b] < 0 || kv_index[b] >= keys.dim(0)) throw std::logic_error("attention: bad index");
    }
  }
  check_on_device("attention", q, device);
  check_on_device("attention", keys, device);
  check_on_device("attention", values, device);
  check_attention_keys(device, head_dim, kv_len, "attention keys");
  out.resize({batch, q_len, width}, device.allocator());
  if (probabilities) probabilities->resize({batch, heads, q_len, kv_len}, device.allocator());
  device.attention(q.data(), keys.data(), values.data(), batch, q_len, kv_len, heads, kv_heads,
                   head_dim, kv_index, keys.dim(0), kv_lengths, causal, scale, out.data(),
                   probabilities ? probabilities->data() : nullptr);
}

void cached_attention(const tensor::Tensor& q, int64_t heads, int64_t kv_heads, int64_t steps,
                      const float* const* step_keys, const float* const* step_values,
                      const int32_t* ancestry, int64_t ancestry_stride, float scale,
                      tensor::Tensor& out, const Device& device) {
  if (q.rank() != 2 || steps < 1 || ancestry_stride < steps) {
    throw std::logic_error("cached_attention: q " + q.shape_string() + ", steps " +
                           std::to_string(steps));
  }
  const int64_t n = q.dim(0), width = q.dim(1);
  check_heads(width, heads, kv_heads);
  check_on_device("cached_attention", q, device);
  const int64_t head_dim = width / heads;
  check_attention_keys(device, head_dim, steps, "attention steps");
  out.resize({n, width}, device.allocator());
  device.cached_attention(q.data(), n, heads, kv_heads, head_dim, steps, step_keys, step_values,
                          ancestry, ancestry_stride, scale, out.data());
}

}  // namespace pytransformer::ops

#include "ops/attention.h"

#include <stdexcept>

#include "kernels/cpu/kernels.h"

namespace pytransformer::ops {
namespace {

void check_heads(int64_t width, int64_t heads) {
  if (heads < 1 || width % heads != 0) {
    throw std::logic_error("attention: " + std::to_string(heads) + " heads do not divide " +
                           std::to_string(width));
  }
}

}  // namespace

void attention(const tensor::Tensor& q, const tensor::Tensor& keys, const tensor::Tensor& values,
               int64_t heads, const int32_t* kv_index, const int64_t* kv_lengths, float scale,
               tensor::Tensor& out, tensor::Tensor* probabilities, const tensor::ThreadPool& pool) {
  if (q.rank() != 3 || keys.rank() != 3 || keys.shape() != values.shape() ||
      keys.dim(2) != q.dim(2) || (!kv_index && keys.dim(0) != q.dim(0))) {
    throw std::logic_error("attention: q " + q.shape_string() + ", keys " + keys.shape_string() +
                           ", values " + values.shape_string());
  }
  const int64_t batch = q.dim(0), q_len = q.dim(1), width = q.dim(2), kv_len = keys.dim(1);
  check_heads(width, heads);
  for (int64_t b = 0; b < keys.dim(0); ++b) {
    if (kv_lengths[b] < 1 || kv_lengths[b] > kv_len) throw std::logic_error("attention: bad length");
  }
  if (kv_index) {
    for (int64_t b = 0; b < batch; ++b) {
      if (kv_index[b] < 0 || kv_index[b] >= keys.dim(0)) throw std::logic_error("attention: bad index");
    }
  }
  out.resize({batch, q_len, width});
  if (probabilities) probabilities->resize({batch, heads, q_len, kv_len});
  const int64_t head_dim = width / heads;
  const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
  pool.parallel_for(batch, 1, [&](int64_t begin, int64_t end) {
    const int64_t q_offset = begin * q_len * width;
    // With the identity map, the thread's kv entries start at `begin` too.
    const int64_t kv_offset = kv_index ? 0 : begin * kv_len * width;
    kernels.attention(q.data() + q_offset, keys.data() + kv_offset, values.data() + kv_offset,
                      end - begin, q_len, kv_len, heads, head_dim,
                      kv_index ? kv_index + begin : nullptr,
                      kv_index ? kv_lengths : kv_lengths + begin, scale, out.data() + q_offset,
                      probabilities ? probabilities->data() + begin * heads * q_len * kv_len
                                    : nullptr);
  });
}

void cached_attention(const tensor::Tensor& q, int64_t heads, int64_t steps,
                      const float* const* step_keys, const float* const* step_values,
                      const int32_t* ancestry, int64_t ancestry_stride, float scale,
                      tensor::Tensor& out, const tensor::ThreadPool& pool) {
  if (q.rank() != 2 || steps < 1 || ancestry_stride < steps) {
    throw std::logic_error("cached_attention: q " + q.shape_string() + ", steps " +
                           std::to_string(steps));
  }
  const int64_t n = q.dim(0), width = q.dim(1);
  check_heads(width, heads);
  out.resize({n, width});
  const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
  pool.parallel_for(n, 1, [&](int64_t begin, int64_t end) {
    kernels.cached_attention(q.data() + begin * width, end - begin, heads, width / heads, steps,
                             step_keys, step_values, ancestry + begin * ancestry_stride,
                             ancestry_stride, scale, out.data() + begin * width);
  });
}

}  // namespace pytransformer::ops

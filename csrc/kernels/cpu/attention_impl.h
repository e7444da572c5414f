// Scaled dot-product attention written once over a vector abstraction `S` (see
// linear_impl.h), with internal linkage. Computes what kernels/ref/attention.h states, with
// vector dot products and axpy (fused multiply-adds, in lanes of S) and the softmax's exp
// from activation_impl.h (1-2 ulp), its sum accumulated in double per vector. The scores of a
// row live in a per-thread buffer that only grows (no allocation once it fits the longest).
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/cpu/activation_impl.h"

namespace pytransformer::kernels::cpu {
namespace {

template <class S>
float attention_dot(const float* a, const float* b, int64_t count) {
  constexpr int L = S::kLanes;
  typename S::V acc = S::zero();
  int64_t c = 0;
  for (; c + L <= count; c += L) acc = S::fmadd(S::load(a + c), S::load(b + c), acc);
  if (c < count) {
    const int rest = static_cast<int>(count - c);
    acc = S::fmadd(S::load_partial(a + c, rest), S::load_partial(b + c, rest), acc);
  }
  return S::reduce(acc);
}

// Whether S reduces 16 vectors at once (S::reduce_each).
template <class S, class = void>
struct ReducesSixteen : std::false_type {};
template <class S>
struct ReducesSixteen<S, std::void_t<decltype(S::kReducesSixteen)>> : std::true_type {};

// scores[j] = attention_dot(q, key(j), head_dim) * scale for j < count, bit for bit; where S
// reduces 16 vectors at once, 16 keys share one transposed reduction.
template <class S, class Key>
void attention_scores(const float* q, int64_t head_dim, int64_t count, const Key& key, float scale,
                      float* scores) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  int64_t j = 0;
  if constexpr (ReducesSixteen<S>::value) {
    for (; j + 16 <= count; j += 16) {
      const float* keys[16];
      V acc[16];
      #pragma GCC unroll 16
      for (int t = 0; t < 16; ++t) keys[t] = key(j + t), acc[t] = S::zero();
      int64_t c = 0;
      for (; c + L <= head_dim; c += L) {
        const V qv = S::load(q + c);
        #pragma GCC unroll 16
        for (int t = 0; t < 16; ++t) acc[t] = S::fmadd(qv, S::load(keys[t] + c), acc[t]);
      }
      if (c < head_dim) {
        const int rest = static_cast<int>(head_dim - c);
        const V qv = S::load_partial(q + c, rest);
        #pragma GCC unroll 16
        for (int t = 0; t < 16; ++t) acc[t] = S::fmadd(qv, S::load_partial(keys[t] + c, rest), acc[t]);
      }
      S::store(scores + j, S::mul(S::reduce_each(acc), S::set1(scale)));
    }
  }
  for (; j < count; ++j) scores[j] = attention_dot<S>(q, key(j), head_dim) * scale;
}

// out[c] = sum_j weights[j] * value(j)[c] for c < head_dim, summed in order of j with fused
// multiply-adds from zero; the accumulators of up to 4 vectors stay in registers over all j.
template <class S, class Value>
void attention_weighted_sum(const float* weights, int64_t count, const Value& value,
                            int64_t head_dim, float* out) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  constexpr int kVectors = 4;
  int64_t c = 0;
  for (; c + kVectors * L <= head_dim; c += kVectors * L) {
    V acc[kVectors];
    #pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) acc[v] = S::zero();
    for (int64_t j = 0; j < count; ++j) {
      const V w = S::set1(weights[j]);
      const float* row = value(j) + c;
      #pragma GCC unroll 4
      for (int v = 0; v < kVectors; ++v) acc[v] = S::fmadd(w, S::load(row + v * L), acc[v]);
    }
    #pragma GCC unroll 4
    for (int v = 0; v < kVectors; ++v) S::store(out + c + v * L, acc[v]);
  }
  for (; c < head_dim; c += L) {
    const int width = static_cast<int>(head_dim - c < L ? head_dim - c : L);
    V acc = S::zero();
    for (int64_t j = 0; j < count; ++j) {
      acc = S::fmadd(S::set1(weights[j]), S::load_partial(value(j) + c, width), acc);
    }
    S::store_partial(out + c, acc, width);
  }
}

// A per-thread buffer of at least `count` floats (grows, never shrinks).
inline float* attention_scratch(int64_t count) {
  thread_local std::vector<float> buffer;
  if (buffer.size() < static_cast<size_t>(count)) buffer.resize(static_cast<size_t>(count));
  return buffer.data();
}

// kernels/ref/softmax.h on one row of count >= 1 values.
template <class S>
void attention_softmax(float* x, int64_t count) {
  constexpr int L = S::kLanes;
  float max_value = x[0];
  for (int64_t c = 1; c < count; ++c) max_value = x[c] > max_value ? x[c] : max_value;
  const typename S::V shift = S::set1(max_value);
  double total = 0.0;
  int64_t c = 0;
  for (; c + L <= count; c += L) {
    const typename S::V e = vector_exp<S>(S::sub(S::load(x + c), shift));
    S::store(x + c, e);
    total += S::reduce(e);
  }
  for (; c < count; ++c) {
    x[c] = std::exp(x[c] - max_value);
    total += x[c];
  }
  const float inverse = static_cast<float>(1.0 / total);
  for (c = 0; c < count; ++c) x[c] *= inverse;
}

template <class S>
void attention(const float* q, const float* k, const float* v, int64_t batch, int64_t q_len,
               int64_t kv_len, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const int32_t* kv_index, const int64_t* kv_lengths, bool causal, float scale,
               float* out, float* probabilities) {
  const int64_t width = heads * head_dim, kv_width = kv_heads * head_dim;
  const int64_t group = heads / kv_heads;
  float* scores = attention_scratch(kv_len);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t kv_b = kv_index ? kv_index[b] : b;
    const int64_t length = kv_lengths[kv_b];
    const float* kb = k + kv_b * kv_len * kv_width;
    const float* vb = v + kv_b * kv_len * kv_width;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t column = h * head_dim, kv_column = h / group * head_dim;
      const auto key = [&](int64_t j) { return kb + j * kv_width + kv_column; };
      const auto value = [&](int64_t j) { return vb + j * kv_width + kv_column; };
      for (int64_t i = 0; i < q_len; ++i) {
        const int64_t valid = causal && i + 1 < length ? i + 1 : length;
        const float* qi = q + (b * q_len + i) * width + column;
        attention_scores<S>(qi, head_dim, valid, key, scale, scores);
        attention_softmax<S>(scores, valid);
        attention_weighted_sum<S>(scores, valid, value, head_dim,
                                  out + (b * q_len + i) * width + column);
        if (probabilities) {
          float* pi = probabilities + ((b * heads + h) * q_len + i) * kv_len;
          for (int64_t j = 0; j < kv_len; ++j) pi[j] = j < valid ? scores[j] : 0.0f;
        }
      }
    }
  }
}

template <class S>
void cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, int64_t steps, const float* const* step_keys,
                      const float* const* step_values, const int32_t* ancestry,
                      int64_t ancestry_stride, float scale, float* out) {
  const int64_t width = heads * head_dim, kv_width = kv_heads * head_dim;
  const int64_t group = heads / kv_heads;
  float* scores = attention_scratch(steps);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* rows = ancestry + i * ancestry_stride;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t column = h * head_dim, kv_column = h / group * head_dim;
      const auto key = [&](int64_t s) { return step_keys[s] + rows[s] * kv_width + kv_column; };
      const auto value = [&](int64_t s) { return step_values[s] + rows[s] * kv_width + kv_column; };
      attention_scores<S>(q + i * width + column, head_dim, steps, key, scale, scores);
      attention_softmax<S>(scores, steps);
      attention_weighted_sum<S>(scores, steps, value, head_dim, out + i * width + column);
    }
  }
}

}  // namespace
}  // namespace pytransformer::kernels::cpu

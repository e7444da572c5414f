// Scaled dot-product attention written once over a vector abstraction `S` (see
// linear_impl.h), with internal linkage. Computes what kernels/ref/attention.h states, with
// vector dot products and axpy (fused multiply-adds, in lanes of S) and the softmax's exp
// from activation_impl.h (1-2 ulp), its sum accumulated in double per vector.
#pragma once

#include <cmath>
#include <cstdint>
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

// out[c] += weight * row[c]
template <class S>
void attention_add_scaled(float* out, const float* row, float weight, int64_t count) {
  constexpr int L = S::kLanes;
  const typename S::V w = S::set1(weight);
  int64_t c = 0;
  for (; c + L <= count; c += L) S::store(out + c, S::fmadd(w, S::load(row + c), S::load(out + c)));
  if (c < count) {
    const int rest = static_cast<int>(count - c);
    S::store_partial(out + c, S::fmadd(w, S::load_partial(row + c, rest), S::load_partial(out + c, rest)),
                     rest);
  }
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
               int64_t kv_len, int64_t heads, int64_t head_dim, const int32_t* kv_index,
               const int64_t* kv_lengths, float scale, float* out, float* probabilities) {
  const int64_t width = heads * head_dim;
  std::vector<float> scores(static_cast<size_t>(kv_len));
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t kv_b = kv_index ? kv_index[b] : b;
    const int64_t valid = kv_lengths[kv_b];
    const float* kb = k + kv_b * kv_len * width;
    const float* vb = v + kv_b * kv_len * width;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t column = h * head_dim;
      for (int64_t i = 0; i < q_len; ++i) {
        const float* qi = q + (b * q_len + i) * width + column;
        for (int64_t j = 0; j < valid; ++j) {
          scores[j] = attention_dot<S>(qi, kb + j * width + column, head_dim) * scale;
        }
        attention_softmax<S>(scores.data(), valid);
        float* oi = out + (b * q_len + i) * width + column;
        for (int64_t c = 0; c < head_dim; ++c) oi[c] = 0.0f;
        for (int64_t j = 0; j < valid; ++j) {
          attention_add_scaled<S>(oi, vb + j * width + column, scores[j], head_dim);
        }
        if (probabilities) {
          float* pi = probabilities + ((b * heads + h) * q_len + i) * kv_len;
          for (int64_t j = 0; j < kv_len; ++j) pi[j] = j < valid ? scores[j] : 0.0f;
        }
      }
    }
  }
}

template <class S>
void cached_attention(const float* q, int64_t n, int64_t heads, int64_t head_dim, int64_t steps,
                      const float* const* step_keys, const float* const* step_values,
                      const int32_t* ancestry, int64_t ancestry_stride, float scale, float* out) {
  const int64_t width = heads * head_dim;
  std::vector<float> scores(static_cast<size_t>(steps));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* rows = ancestry + i * ancestry_stride;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t column = h * head_dim;
      const float* qi = q + i * width + column;
      for (int64_t s = 0; s < steps; ++s) {
        scores[s] = attention_dot<S>(qi, step_keys[s] + rows[s] * width + column, head_dim) * scale;
      }
      attention_softmax<S>(scores.data(), steps);
      float* oi = out + i * width + column;
      for (int64_t c = 0; c < head_dim; ++c) oi[c] = 0.0f;
      for (int64_t s = 0; s < steps; ++s) {
        attention_add_scaled<S>(oi, step_values[s] + rows[s] * width + column, scores[s], head_dim);
      }
    }
  }
}

}  // namespace
}  // namespace pytransformer::kernels::cpu

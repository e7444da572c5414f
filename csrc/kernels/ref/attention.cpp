#include "kernels/ref/attention.h"

#include <cstddef>
#include <vector>

#include "kernels/ref/softmax.h"

namespace pytransformer::kernels::ref {
namespace {

constexpr int64_t kLanes = 8;

float dot(const float* a, const float* b, int64_t count) {
  float acc[kLanes] = {};
  const int64_t body = count - count % kLanes;
  for (int64_t c = 0; c < body; c += kLanes) {
    for (int64_t l = 0; l < kLanes; ++l) acc[l] += a[c + l] * b[c + l];
  }
  for (int64_t c = body; c < count; ++c) acc[c - body] += a[c] * b[c];
  return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

// out[c] += weight * row[c]
void add_scaled(float* out, const float* row, float weight, int64_t count) {
  for (int64_t c = 0; c < count; ++c) out[c] += weight * row[c];
}

}  // namespace

void attention(const float* q, const float* k, const float* v, int64_t batch, int64_t q_len,
               int64_t kv_len, int64_t heads, int64_t kv_heads, int64_t head_dim,
               const int32_t* kv_index, const int64_t* kv_lengths, bool causal, float scale,
               float* out, float* probabilities) {
  const int64_t width = heads * head_dim, kv_width = kv_heads * head_dim;
  const int64_t group = heads / kv_heads;
  std::vector<float> scores(static_cast<size_t>(kv_len));
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t kv_b = kv_index ? kv_index[b] : b;
    const int64_t length = kv_lengths[kv_b];
    const float* kb = k + kv_b * kv_len * kv_width;
    const float* vb = v + kv_b * kv_len * kv_width;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t column = h * head_dim, kv_column = h / group * head_dim;
      for (int64_t i = 0; i < q_len; ++i) {
        const int64_t valid = causal && i + 1 < length ? i + 1 : length;
        const float* qi = q + (b * q_len + i) * width + column;
        for (int64_t j = 0; j < valid; ++j) {
          scores[j] = dot(qi, kb + j * kv_width + kv_column, head_dim) * scale;
        }
        softmax(scores.data(), 1, valid);
        float* oi = out + (b * q_len + i) * width + column;
        for (int64_t c = 0; c < head_dim; ++c) oi[c] = 0.0f;
        for (int64_t j = 0; j < valid; ++j) {
          add_scaled(oi, vb + j * kv_width + kv_column, scores[j], head_dim);
        }
        if (probabilities) {
          float* pi = probabilities + ((b * heads + h) * q_len + i) * kv_len;
          for (int64_t j = 0; j < kv_len; ++j) pi[j] = j < valid ? scores[j] : 0.0f;
        }
      }
    }
  }
}

void cached_attention(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                      int64_t head_dim, int64_t steps, const float* const* step_keys,
                      const float* const* step_values, const int32_t* ancestry,
                      int64_t ancestry_stride, float scale, float* out) {
  const int64_t width = heads * head_dim, kv_width = kv_heads * head_dim;
  const int64_t group = heads / kv_heads;
  std::vector<float> scores(static_cast<size_t>(steps));
  for (int64_t i = 0; i < n; ++i) {
    const int32_t* rows = ancestry + i * ancestry_stride;
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t column = h * head_dim, kv_column = h / group * head_dim;
      const float* qi = q + i * width + column;
      for (int64_t s = 0; s < steps; ++s) {
        scores[s] = dot(qi, step_keys[s] + rows[s] * kv_width + kv_column, head_dim) * scale;
      }
      softmax(scores.data(), 1, steps);
      float* oi = out + i * width + column;
      for (int64_t c = 0; c < head_dim; ++c) oi[c] = 0.0f;
      for (int64_t s = 0; s < steps; ++s) {
        add_scaled(oi, step_values[s] + rows[s] * kv_width + kv_column, scores[s], head_dim);
      }
    }
  }
}

}  // namespace pytransformer::kernels::ref

#include "kernels/ref/rotary.h"

#include <cmath>

namespace pytransformer::kernels::ref {

void rotary_tables(double base, int64_t rotary_dim, int64_t positions, float* cos, float* sin) {
  const int64_t pairs = rotary_dim / 2;
  const float base_f32 = static_cast<float>(base);
  for (int64_t i = 0; i < pairs; ++i) {
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(rotary_dim);
    const float inverse_frequency = 1.0f / std::pow(base_f32, exponent);
    for (int64_t p = 0; p < positions; ++p) {
      const float angle = static_cast<float>(p) * inverse_frequency;
      cos[p * pairs + i] = std::cos(angle);
      sin[p * pairs + i] = std::sin(angle);
    }
  }
}

void apply_rotary(float* x, int64_t rows, int64_t heads, int64_t head_dim, int64_t rotary_dim,
                  const int32_t* positions, const float* cos, const float* sin,
                  RotaryLayout layout) {
  const int64_t pairs = rotary_dim / 2;
  const RotaryPairs members = rotary_pairs(layout, rotary_dim);
  for (int64_t r = 0; r < rows; ++r) {
    const float* c = cos + static_cast<int64_t>(positions[r]) * pairs;
    const float* s = sin + static_cast<int64_t>(positions[r]) * pairs;
    for (int64_t h = 0; h < heads; ++h) {
      float* head = x + (r * heads + h) * head_dim;
      for (int64_t i = 0; i < pairs; ++i) {
        float* a = head + i * members.first_step;
        float* b = a + members.second_offset;
        const float a0 = *a, b0 = *b;
        *a = a0 * c[i] - b0 * s[i];
        *b = a0 * s[i] + b0 * c[i];
      }
    }
  }
}

}  // namespace pytransformer::kernels::ref

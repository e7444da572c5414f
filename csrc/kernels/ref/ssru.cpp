#include "kernels/ref/ssru.h"

#include <cmath>

namespace pytransformer::kernels::ref {

void ssru_step(const float* gates, const float* previous, const int32_t* parent, int64_t n,
               int64_t d, bool accumulate, float* cells, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    const float* candidate = gates + i * 2 * d;
    const float* gate = candidate + d;
    const float* state = previous ? previous + static_cast<int64_t>(parent[i]) * d : nullptr;
    for (int64_t j = 0; j < d; ++j) {
      const float g = gate[j];
      float f;
      if (g >= 0.0f) {
        f = 1.0f / (1.0f + std::exp(-g));
      } else {
        const float e = std::exp(g);
        f = e / (1.0f + e);
      }
      const float kept = state ? f * state[j] : 0.0f;
      const float cell = kept + (1.0f - f) * candidate[j];
      cells[i * d + j] = cell;
      const float relu = cell > 0.0f ? cell : 0.0f;
      out[i * d + j] = accumulate ? out[i * d + j] + relu : relu;
    }
  }
}

}  // namespace pytransformer::kernels::ref

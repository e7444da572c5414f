#include "kernels/ref/activation.h"

#include <cmath>

namespace pytransformer::kernels::ref {

void activation(format::Activation kind, float* x, int64_t count) {
  switch (kind) {
    case format::Activation::RELU:
      for (int64_t i = 0; i < count; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
      return;
    case format::Activation::SWISH:
      for (int64_t i = 0; i < count; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
      return;
    case format::Activation::GELU:
      for (int64_t i = 0; i < count; ++i) {
        x[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * 0.70710678118654752f));
      }
      return;
    case format::Activation::GELU_TANH:
      for (int64_t i = 0; i < count; ++i) {
        const float inner = 0.79788456080286536f * (x[i] + 0.044715f * x[i] * x[i] * x[i]);
        x[i] = 0.5f * x[i] * (1.0f + std::tanh(inner));
      }
      return;
  }
}

void gated_activation(format::Activation kind, const float* x, int64_t rows, int64_t width,
                      float* y) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* gate = x + r * 2 * width;
    const float* linear = gate + width;
    float* out = y + r * width;
    for (int64_t j = 0; j < width; ++j) {  // in order, so y may alias x (out[j] <= gate[j])
      float activated = gate[j];
      activation(kind, &activated, 1);
      out[j] = activated * linear[j];
    }
  }
}

}  // namespace pytransformer::kernels::ref

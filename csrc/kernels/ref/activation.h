// Reference element-wise activations, in place on x[count]:
//   RELU max(x, 0); SWISH (SiLU) x * sigmoid(x); GELU 0.5 x (1 + erf(x / sqrt 2));
//   GELU_TANH 0.5 x (1 + tanh(sqrt(2 / pi) (x + 0.044715 x^3))).
#pragma once

#include <cstdint>

#include "format/model_config.h"

namespace pytransformer::kernels::ref {

void activation(format::Activation kind, float* x, int64_t count);

// Gated activation (SwiGLU when kind is SWISH), from one [rows, 2 * width] product whose
// first `width` columns are the gate and the next `width` the linear part:
//   y[r, j] = act(x[r, j]) * x[r, width + j]        y: [rows, width]; y may alias x.
void gated_activation(format::Activation kind, const float* x, int64_t rows, int64_t width,
                      float* y);

}  // namespace pytransformer::kernels::ref

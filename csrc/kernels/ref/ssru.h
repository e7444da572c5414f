// Reference step of Marian's SSRU (simpler simple recurrent unit), the recurrence that replaces
// self-attention in the decoder of Bergamot / Firefox Translations models (docs/format.md,
// model.decoder_autoregression = ssru). For hypothesis i < n, with [u | g] = gates[i, 0:2d]
// (the candidate and the forget gate of one product):
//   f = sigmoid(g)   (as Marian: 1 / (1 + e^-g) for g >= 0, e^g / (1 + e^g) otherwise)
//   cells[i] = f * c + (1 - f) * u,  c = previous[parent[i]] (zeros when previous is null)
//   out[i] = max(cells[i], 0), or out[i] += max(cells[i], 0) when accumulate (the pre-norm
//   residual connection)
// each operation rounded to f32 in that order. gates: [n, 2d]; previous: [*, d] or nullptr
// (the first step; parent is then ignored); cells, out: [n, d], not overlapping previous.
#pragma once

#include <cstdint>

namespace pytransformer::kernels::ref {

void ssru_step(const float* gates, const float* previous, const int32_t* parent, int64_t n,
               int64_t d, bool accumulate, float* cells, float* out);

}  // namespace pytransformer::kernels::ref

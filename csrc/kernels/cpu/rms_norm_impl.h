// RMS normalisation written once over a vector abstraction `S` (see linear_impl.h), with
// internal linkage. Computes what kernels/ref/rms_norm.h states (y may alias x) but sums the
// squares in f32 lanes before reducing them to double, and scales in f32: within ~1e-6
// relative of the reference for model widths.
#pragma once

#include <cmath>
#include <cstdint>

namespace pytransformer::kernels::cpu {
namespace {

template <class S>
void rms_norm(const float* x, const float* gamma, int64_t rows, int64_t dim, double epsilon,
              float* y) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  const int64_t vector_end = dim - dim % L;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    V lanes = S::zero();
    for (int64_t c = 0; c < vector_end; c += L) {
      const V v = S::load(xr + c);
      lanes = S::fmadd(v, v, lanes);
    }
    double squares = vector_end > 0 ? S::reduce(lanes) : 0.0;
    for (int64_t c = vector_end; c < dim; ++c) squares += static_cast<double>(xr[c]) * xr[c];
    const double inverse_rms = 1.0 / std::sqrt(squares / static_cast<double>(dim) + epsilon);

    const V scale = S::set1(static_cast<float>(inverse_rms));
    for (int64_t c = 0; c < vector_end; c += L) {
      S::store(yr + c, S::mul(S::mul(S::load(xr + c), scale), S::load(gamma + c)));
    }
    for (int64_t c = vector_end; c < dim; ++c) {
      yr[c] = static_cast<float>(xr[c] * inverse_rms) * gamma[c];
    }
  }
}

}  // namespace
}  // namespace pytransformer::kernels::cpu

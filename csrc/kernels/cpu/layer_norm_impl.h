// Layer normalisation written once over a vector abstraction `S` (see linear_impl.h), with
// internal linkage. Computes what kernels/ref/layer_norm.h states (y may alias x or residual)
// but sums the mean and the variance in f32 lanes before reducing them to double, and
// normalises in f32 with a fused multiply-add: within ~1e-6 relative of the reference for
// model widths.
#pragma once

#include <cmath>
#include <cstdint>

namespace pytransformer::kernels::cpu {
namespace {

template <class S>
void layer_norm(const float* x, const float* residual, const float* gamma, const float* beta,
                int64_t rows, int64_t dim, double epsilon, float* y) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  const int64_t vector_end = dim - dim % L;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    const float* rr = residual ? residual + r * dim : nullptr;
    float* yr = y + r * dim;
    // s = x + residual is rounded to f32 and stored in y (element by element, so y may alias
    // x or residual); the later passes read it back from y.
    V lanes = S::zero();
    for (int64_t c = 0; c < vector_end; c += L) {
      V s = S::load(xr + c);
      if (rr) s = S::add(s, S::load(rr + c));
      S::store(yr + c, s);
      lanes = S::add(lanes, s);
    }
    double mean = vector_end > 0 ? S::reduce(lanes) : 0.0;
    for (int64_t c = vector_end; c < dim; ++c) {
      yr[c] = rr ? xr[c] + rr[c] : xr[c];
      mean += yr[c];
    }
    mean /= static_cast<double>(dim);

    const V mean_lanes = S::set1(static_cast<float>(mean));
    lanes = S::zero();
    for (int64_t c = 0; c < vector_end; c += L) {
      const V centered = S::sub(S::load(yr + c), mean_lanes);
      lanes = S::fmadd(centered, centered, lanes);
    }
    double variance = vector_end > 0 ? S::reduce(lanes) : 0.0;
    for (int64_t c = vector_end; c < dim; ++c) {
      const double centered = yr[c] - mean;
      variance += centered * centered;
    }
    variance /= static_cast<double>(dim);
    const double inverse_std = 1.0 / std::sqrt(variance + epsilon);

    const V scale = S::set1(static_cast<float>(inverse_std));
    for (int64_t c = 0; c < vector_end; c += L) {
      const V normalised = S::mul(S::sub(S::load(yr + c), mean_lanes), scale);
      S::store(yr + c, S::fmadd(normalised, S::load(gamma + c), S::load(beta + c)));
    }
    for (int64_t c = vector_end; c < dim; ++c) {
      yr[c] = static_cast<float>((yr[c] - mean) * inverse_std) * gamma[c] + beta[c];
    }
  }
}

}  // namespace
}  // namespace pytransformer::kernels::cpu

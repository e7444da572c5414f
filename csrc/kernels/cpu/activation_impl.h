// Element-wise kernels written once over a vector abstraction `S` (see linear_impl.h), with
// internal linkage: activations, the residual add and the int8 row quantisation.
//
// exp is evaluated as 2^n * e^r, r = x - n ln 2 in [-ln2/2, ln2/2] (Cody-Waite split of ln 2,
// Cephes' degree-6 polynomial for e^r): within 1-2 ulp of std::exp; arguments are clamped to
// [-88, 88], so SWISH(-100) is -6e-37 where the reference's overflowing exp gives -0.
// RELU and SWISH are vectorised (SWISH = x / (1 + exp(-x)), as the reference); the GELU
// variants call the reference.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cstdint>
#include <cstring>

#include "format/model_config.h"
#include "kernels/ref/activation.h"
#include "kernels/ref/linear_int8.h"

namespace pytransformer::kernels::cpu {
namespace {

template <class S>
inline typename S::V vector_exp(typename S::V x) {
  using V = typename S::V;
  x = S::min(S::max(x, S::set1(-88.0f)), S::set1(88.0f));
  const V n = S::round(S::mul(x, S::set1(1.44269504088896341f)));
  V r = S::fmadd(n, S::set1(-0.693359375f), x);
  r = S::fmadd(n, S::set1(2.12194440e-4f), r);
  V p = S::set1(1.9875691500e-4f);
  p = S::fmadd(p, r, S::set1(1.3981999507e-3f));
  p = S::fmadd(p, r, S::set1(8.3334519073e-3f));
  p = S::fmadd(p, r, S::set1(4.1665795894e-2f));
  p = S::fmadd(p, r, S::set1(1.6666665459e-1f));
  p = S::fmadd(p, r, S::set1(5.0000001201e-1f));
  p = S::fmadd(p, S::mul(r, r), S::add(r, S::set1(1.0f)));
  return S::scale_by_power_of_two(p, n);
}

template <class S>
inline typename S::V vector_swish(typename S::V x) {
  const typename S::V e = vector_exp<S>(S::sub(S::zero(), x));
  return S::div(x, S::add(S::set1(1.0f), e));
}

template <class S>
inline void activate(format::Activation kind, float* x, int64_t count) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  int64_t p = 0;
  switch (kind) {
    case format::Activation::RELU:
      for (; p + L <= count; p += L) S::store(x + p, S::max(S::load(x + p), S::zero()));
      if (p < count) {
        const int rest = static_cast<int>(count - p);
        S::store_partial(x + p, S::max(S::load_partial(x + p, rest), S::zero()), rest);
      }
      return;
    case format::Activation::SWISH:
      for (; p + L <= count; p += L) S::store(x + p, vector_swish<S>(S::load(x + p)));
      if (p < count) {
        const int rest = static_cast<int>(count - p);
        const V v = vector_swish<S>(S::load_partial(x + p, rest));
        S::store_partial(x + p, v, rest);
      }
      return;
    default:
      ref::activation(kind, x, count);
      return;
  }
}

// kernels/ref/activation.h's gated_activation; SWISH vectorised, other kinds by the reference.
// A row's output lies at or before its gate, and each vector is read before it is written, so
// y may alias x.
template <class S>
void gated_activation(format::Activation kind, const float* x, int64_t rows, int64_t width,
                      float* y) {
  if (kind != format::Activation::SWISH) {
    ref::gated_activation(kind, x, rows, width, y);
    return;
  }
  constexpr int L = S::kLanes;
  for (int64_t r = 0; r < rows; ++r) {
    const float* gate = x + r * 2 * width;
    const float* linear = gate + width;
    float* out = y + r * width;
    int64_t j = 0;
    for (; j + L <= width; j += L) {
      S::store(out + j, S::mul(vector_swish<S>(S::load(gate + j)), S::load(linear + j)));
    }
    if (j < width) {
      const int rest = static_cast<int>(width - j);
      S::store_partial(out + j, S::mul(vector_swish<S>(S::load_partial(gate + j, rest)),
                                       S::load_partial(linear + j, rest)), rest);
    }
  }
}

// kernels/ref/ssru.h, sigmoid as 1 / (1 + exp(-g)) with the clamped vector exp.
template <class S>
void ssru_step(const float* gates, const float* previous, const int32_t* parent, int64_t n,
               int64_t d, bool accumulate, float* cells, float* out) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  const V one = S::set1(1.0f);
  for (int64_t i = 0; i < n; ++i) {
    const float* candidate = gates + i * 2 * d;
    const float* gate = candidate + d;
    const float* state = previous ? previous + static_cast<int64_t>(parent[i]) * d : nullptr;
    for (int64_t j = 0; j < d; j += L) {
      const int count = static_cast<int>(std::min<int64_t>(L, d - j));
      const V g = count == L ? S::load(gate + j) : S::load_partial(gate + j, count);
      const V u = count == L ? S::load(candidate + j) : S::load_partial(candidate + j, count);
      const V f = S::div(one, S::add(one, vector_exp<S>(S::sub(S::zero(), g))));
      V kept = S::zero();
      if (state) kept = S::mul(f, count == L ? S::load(state + j) : S::load_partial(state + j, count));
      const V cell = S::add(kept, S::mul(S::sub(one, f), u));
      V relu = S::max(cell, S::zero());
      if (accumulate) {
        relu = S::add(count == L ? S::load(out + i * d + j) : S::load_partial(out + i * d + j, count),
                      relu);
      }
      if (count == L) {
        S::store(cells + i * d + j, cell);
        S::store(out + i * d + j, relu);
      } else {
        S::store_partial(cells + i * d + j, cell, count);
        S::store_partial(out + i * d + j, relu, count);
      }
    }
  }
}

// y[i] += x[i]
template <class S>
inline void add(const float* x, float* y, int64_t count) {
  constexpr int L = S::kLanes;
  int64_t p = 0;
  for (; p + L <= count; p += L) S::store(y + p, S::add(S::load(y + p), S::load(x + p)));
  if (p < count) {
    const int rest = static_cast<int>(count - p);
    S::store_partial(y + p, S::add(S::load_partial(y + p, rest), S::load_partial(x + p, rest)),
                     rest);
  }
}

// kernels/ref/linear_int8.h, bit for bit: max |x| is exact in any order, and each value goes
// through the same f32 multiply, round-half-even and clamp.
template <class S>
void quantize_rows(const float* x, int64_t m, int64_t k, int8_t* q, float* scales) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  const int64_t stride = ref::quantized_row_stride(k);
  for (int64_t i = 0; i < m; ++i) {
    const float* xi = x + i * k;
    int8_t* qi = q + i * stride;
    std::memset(qi, 0, static_cast<size_t>(stride));
    V high = S::zero();
    int64_t p = 0;
    for (; p + L <= k; p += L) high = S::max(high, S::abs(S::load(xi + p)));
    if (p < k) high = S::max(high, S::abs(S::load_partial(xi + p, static_cast<int>(k - p))));
    const float amax = S::reduce_max(high);
    if (!(amax >= FLT_MIN)) {
      scales[i] = 1.0f;
      continue;
    }
    scales[i] = amax / 127.0f;
    const V inverse = S::set1(127.0f / amax);
    for (p = 0; p + L <= k; p += L) S::store_i8(qi + p, S::mul(S::load(xi + p), inverse), L);
    if (p < k) {
      const int rest = static_cast<int>(k - p);
      S::store_i8(qi + p, S::mul(S::load_partial(xi + p, rest), inverse), rest);
    }
  }
}

}  // namespace
}  // namespace pytransformer::kernels::cpu

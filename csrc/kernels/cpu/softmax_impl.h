// Row-wise log-softmax written once over a vector abstraction `S` (see linear_impl.h), with
// internal linkage. Differs from kernels/ref/softmax.h's log_softmax only in rounding:
// exp is activation_impl.h's vector_exp (1-2 ulp), summed in f32 lanes over blocks of
// kSumBlock vectors whose totals are accumulated in double (so a 58k-token vocabulary sums
// with at most kSumBlock f32 additions per lane), and each output is (x - max) - log(sum)
// in f32 instead of one rounding of the double expression.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cpu/activation_impl.h"
#include "kernels/ref/softmax.h"

namespace pytransformer::kernels::cpu {
namespace {

constexpr int64_t kSumBlock = 64;

template <class S>
void log_softmax(float* x, int64_t rows, int64_t cols) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  constexpr float kNegativeInfinity = -std::numeric_limits<float>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * cols;
    const int64_t vector_end = cols - cols % L;
    V high = S::set1(kNegativeInfinity);
    for (int64_t p = 0; p < vector_end; p += L) high = S::max(high, S::load(xr + p));
    float max_value = vector_end > 0 ? S::reduce_max(high) : kNegativeInfinity;
    for (int64_t p = vector_end; p < cols; ++p) max_value = xr[p] > max_value ? xr[p] : max_value;
    if (max_value == kNegativeInfinity) continue;

    const V shift = S::set1(max_value);
    double total = 0.0;
    for (int64_t p = 0; p < vector_end;) {
      const int64_t block_end = std::min(vector_end, p + kSumBlock * L);
      V block = S::zero();
      for (; p < block_end; p += L) block = S::add(block, vector_exp<S>(S::sub(S::load(xr + p), shift)));
      total += S::reduce(block);
    }
    for (int64_t p = vector_end; p < cols; ++p) total += std::exp(double(xr[p]) - max_value);

    const float log_total = static_cast<float>(std::log(total));
    const V log_total_lanes = S::set1(log_total);
    for (int64_t p = 0; p < vector_end; p += L) {
      S::store(xr + p, S::sub(S::sub(S::load(xr + p), shift), log_total_lanes));
    }
    for (int64_t p = vector_end; p < cols; ++p) xr[p] = (xr[p] - max_value) - log_total;
  }
}

// kernels/ref/softmax.h's argmax: the maximum by vectors (S::max(value, running) keeps the
// running lane where the value is a NaN on x86; NEON's propagates it, and the scan below then
// finds nothing and the reference decides), then the first index holding it.
template <class S>
int64_t argmax(const float* x, int64_t count) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  if (count <= 1 || x[0] != x[0]) return 0;  // a NaN first: no value compares greater
  V high = S::set1(x[0]);
  int64_t c = 0;
  for (; c + L <= count; c += L) high = S::max(S::load(x + c), high);
  float best = S::reduce_max(high);
  for (; c < count; ++c) best = x[c] > best ? x[c] : best;
  // The first vector that may hold it: its NaN lanes count as -infinity (x86) or stop the
  // skipping (NEON), so the scan below starts no later than the first occurrence.
  const V lowest = S::set1(-std::numeric_limits<float>::infinity());
  c = 0;
  for (; c + L <= count; c += L) {
    if (!(S::reduce_max(S::max(S::load(x + c), lowest)) < best)) break;
  }
  for (; c < count; ++c) {
    if (x[c] == best) return c;
  }
  return ref::argmax(x, count);
}

}  // namespace
}  // namespace pytransformer::kernels::cpu

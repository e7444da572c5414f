// The linear kernels written once over a vector abstraction `S`, compiled by each ISA's
// translation unit (linear_<isa>.cpp) with its own `S` (simd_<isa>.h). Everything here has
// internal linkage so that code compiled with one ISA's flags is never linked into another's.
//
// Layout: W stays as stored, [n, k] row-major (no repacking). A tile computes R rows x C
// columns of y with R*C vector accumulators whose lanes run along k: lane l of the
// accumulator of (i, j) sums x[i, c] W[j, c] for c = l mod L in increasing c (FMA), and the
// lanes are then added by S::reduce in one fixed tree. So every output element is summed in
// the same order whatever the tile shape, m, the column range or the thread count.
//
// S provides: V (f32 vector), kLanes, zero, load, load_partial (zeros past count), fmadd,
// reduce, load_f16/load_bf16 (+ _partial) converting 16-bit weights to f32;
// I (int vector), kBytes, load_i8, load_i8_partial, WeightPrep, prepare_weight,
// prepare_activation, dot (int32 lanes += 4-byte dot products of activations and weights),
// kCompensated + compensate (see simd_avx512.h), reduce_i32;
// kRows x kColumns: the tile of batched products; kSingleRowColumns: the GEMV tile (and the
// kInt8* equivalents). Optionally (kReducesSixteen): reduce_each / reduce_each_i32, the 16
// reductions of a 16-accumulator tile at once, lane p equal to reduce(v[p]) bit for bit.
#pragma once

// The tile loops over r < R and c < C must be unrolled for the accumulators to live in
// registers: `#pragma GCC unroll` asks for it at every optimisation level.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "format/dtype.h"
#include "kernels/cpu/activation_impl.h"
#include "kernels/cpu/kernels.h"
#include "kernels/ref/linear_int8.h"

namespace pytransformer::kernels::cpu {
namespace {

// Whether S reduces 16 accumulators at once (S::reduce_each, S::reduce_each_i32).
template <class S, class = void>
struct ReducesSixteen : std::false_type {};
template <class S>
struct ReducesSixteen<S, std::void_t<decltype(S::kReducesSixteen)>> : std::true_type {};

// Rows of x kept in cache while the weight rows of the column range stream past them.
constexpr int64_t kRowBlock = 64;

template <DType D>
struct WeightElement {
  using type = uint16_t;
};
template <>
struct WeightElement<DType::F32> {
  using type = float;
};

template <class S, DType D>
inline typename S::V load_weight(const typename WeightElement<D>::type* p) {
  if constexpr (D == DType::F32) return S::load(p);
  if constexpr (D == DType::F16) return S::load_f16(p);
  if constexpr (D == DType::BF16) return S::load_bf16(p);
}

template <class S, DType D>
inline typename S::V load_weight_partial(const typename WeightElement<D>::type* p, int count) {
  if constexpr (D == DType::F32) return S::load_partial(p, count);
  if constexpr (D == DType::F16) return S::load_f16_partial(p, count);
  if constexpr (D == DType::BF16) return S::load_bf16_partial(p, count);
}

// y[r * y_stride + c] = x[r] . w[c] (+ bias[c]) (+ residual[r * y_stride + c]) for r < R, c < C.
template <class S, DType D, int R, int C>
inline void float_tile(const float* x, int64_t k, const typename WeightElement<D>::type* w,
                       const float* bias, const float* residual, float* y, int64_t y_stride) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  V acc[R][C];
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = S::zero();
  int64_t p = 0;
  for (; p + L <= k; p += L) {
    V wv[C];
    #pragma GCC unroll 8
    for (int c = 0; c < C; ++c) wv[c] = load_weight<S, D>(w + c * k + p);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V xv = S::load(x + r * k + p);
      #pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = S::fmadd(xv, wv[c], acc[r][c]);
    }
  }
  if (p < k) {
    const int rest = static_cast<int>(k - p);
    V wv[C];
    #pragma GCC unroll 8
    for (int c = 0; c < C; ++c) wv[c] = load_weight_partial<S, D>(w + c * k + p, rest);
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const V xv = S::load_partial(x + r * k + p, rest);
      #pragma GCC unroll 8
      for (int c = 0; c < C; ++c) acc[r][c] = S::fmadd(xv, wv[c], acc[r][c]);
    }
  }
  float sums[R][C];
  if constexpr (R * C == 16 && ReducesSixteen<S>::value) {
    V flat[16];
    #pragma GCC unroll 16
    for (int p = 0; p < 16; ++p) flat[p] = acc[p / C][p % C];
    S::store(&sums[0][0], S::reduce_each(flat));
  } else {
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 8
      for (int c = 0; c < C; ++c) sums[r][c] = S::reduce(acc[r][c]);
  }
  #pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    #pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const float sum = sums[r][c];
      const float v = bias ? sum + bias[c] : sum;
      y[r * y_stride + c] = residual ? v + residual[r * y_stride + c] : v;
    }
  }
}

// The activation over y[rows, column_begin:column_end), still in cache from the tiles.
template <class S>
inline void apply_activation(const LinearEpilogue& e, int64_t row_begin, int64_t row_end,
                             int64_t n, int64_t column_begin, int64_t column_end, float* y) {
  if (!e.activate) return;
  for (int64_t i = row_begin; i < row_end; ++i) {
    activate<S>(e.activation, y + i * n + column_begin, column_end - column_begin);
  }
}

// Runs tile<R, C> over the column range for rows [i, i + R), columns left over one at a time.
template <class S, DType D, int R, int C>
inline void float_row_tile(const float* x, int64_t i, int64_t k,
                           const typename WeightElement<D>::type* w, const LinearEpilogue& e,
                           int64_t n, int64_t column_begin, int64_t column_end, float* y) {
  int64_t j = column_begin;
  for (; j + C <= column_end; j += C) {
    float_tile<S, D, R, C>(x + i * k, k, w + j * k, e.bias ? e.bias + j : nullptr,
                           e.residual ? e.residual + i * n + j : nullptr, y + i * n + j, n);
  }
  for (; j < column_end; ++j) {
    float_tile<S, D, R, 1>(x + i * k, k, w + j * k, e.bias ? e.bias + j : nullptr,
                           e.residual ? e.residual + i * n + j : nullptr, y + i * n + j, n);
  }
}

// Columns of a panel: its weight rows (about kPanelBytes) stay in L2 while every row chunk
// of x passes them, so large products read W from memory once, not once per row chunk.
constexpr int64_t kPanelBytes = int64_t{1} << 18;

inline int64_t panel_columns(int64_t k, int64_t element_size) {
  const int64_t columns = kPanelBytes / (k * element_size) / 16 * 16;
  return columns > 16 ? columns : 16;
}

template <class S, DType D>
void linear_float_typed(const float* x, int64_t m, int64_t k, const void* weight, int64_t n,
                        int64_t column_begin, int64_t column_end, const LinearEpilogue& e,
                        float* y) {
  using W = typename WeightElement<D>::type;
  const W* w = static_cast<const W*>(weight);
  constexpr int R = S::kRows;
  const int64_t panel = panel_columns(k, sizeof(W));
  for (int64_t panel_begin = column_begin; panel_begin < column_end; panel_begin += panel) {
    const int64_t panel_end = panel_begin + panel < column_end ? panel_begin + panel : column_end;
    for (int64_t row_begin = 0; row_begin < m; row_begin += kRowBlock) {
      const int64_t row_end = row_begin + kRowBlock < m ? row_begin + kRowBlock : m;
      const int64_t tiled_end = row_begin + (row_end - row_begin) / R * R;
      // Column blocks outermost: a block of weight rows stays in L1 while the row tiles pass.
      for (int64_t j = panel_begin; j < panel_end; j += S::kColumns) {
        const int64_t block_end = j + S::kColumns < panel_end ? j + S::kColumns : panel_end;
        for (int64_t i = row_begin; i < tiled_end; i += R) {
          float_row_tile<S, D, R, S::kColumns>(x, i, k, w, e, n, j, block_end, y);
        }
      }
      for (int64_t i = tiled_end; i < row_end; ++i) {
        float_row_tile<S, D, 1, S::kSingleRowColumns>(x, i, k, w, e, n, panel_begin, panel_end, y);
      }
      apply_activation<S>(e, row_begin, row_end, n, panel_begin, panel_end, y);
    }
  }
}

template <class S>
void linear_float(const float* x, int64_t m, int64_t k, const void* weight, DType dtype, int64_t n,
                  int64_t column_begin, int64_t column_end, const LinearEpilogue& epilogue,
                  float* y) {
  switch (dtype) {
    case DType::F32:
      return linear_float_typed<S, DType::F32>(x, m, k, weight, n, column_begin, column_end,
                                               epilogue, y);
    case DType::F16:
      return linear_float_typed<S, DType::F16>(x, m, k, weight, n, column_begin, column_end,
                                               epilogue, y);
    case DType::BF16:
      return linear_float_typed<S, DType::BF16>(x, m, k, weight, n, column_begin, column_end,
                                                epilogue, y);
    case DType::I8:
      return;  // ops route int8 weights to linear_int8
  }
}

// ---- int8 ----

// out[r * C + c] for r < R, c < C: see kernels/ref/linear_int8.h for the exact arithmetic.
template <class S, int R, int C>
inline void int8_tile(const int8_t* q, int64_t q_stride, const float* scales, int64_t k,
                      const int8_t* w, const float* w_scales, const float* bias,
                      const float* residual, float* y, int64_t y_stride) {
  using I = typename S::I;
  constexpr int B = S::kBytes;
  I acc[R][C];
  I compensation[C];
  #pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    compensation[c] = S::zero_i();
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][c] = S::zero_i();
  }
  int64_t p = 0;
  for (; p + B <= k; p += B) {
    typename S::WeightPrep wv[C];
    #pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const I raw = S::load_i8(w + c * k + p);
      if constexpr (S::kCompensated) S::compensate(compensation[c], raw);
      wv[c] = S::prepare_weight(raw);
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const I xv = S::prepare_activation(S::load_i8(q + r * q_stride + p));
      #pragma GCC unroll 8
      for (int c = 0; c < C; ++c) S::dot(acc[r][c], xv, wv[c]);
    }
  }
  if (p < k) {  // activations are zero-padded to the row stride; weights are read partially
    const int rest = static_cast<int>(k - p);
    typename S::WeightPrep wv[C];
    #pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const I raw = S::load_i8_partial(w + c * k + p, rest);
      if constexpr (S::kCompensated) S::compensate(compensation[c], raw);
      wv[c] = S::prepare_weight(raw);
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const I xv = S::prepare_activation(S::load_i8(q + r * q_stride + p));
      #pragma GCC unroll 8
      for (int c = 0; c < C; ++c) S::dot(acc[r][c], xv, wv[c]);
    }
  }
  int32_t sums[R][C];
  if constexpr (R * C == 16 && ReducesSixteen<S>::value) {
    I flat[16];
    #pragma GCC unroll 16
    for (int p = 0; p < 16; ++p) flat[p] = acc[p / C][p % C];
    S::store_i32(&sums[0][0], S::reduce_each_i32(flat));
  } else {
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      #pragma GCC unroll 8
      for (int c = 0; c < C; ++c) sums[r][c] = S::reduce_i32(acc[r][c]);
  }
  #pragma GCC unroll 8
  for (int c = 0; c < C; ++c) {
    const int32_t offset = S::kCompensated ? S::reduce_i32(compensation[c]) : 0;
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const int32_t total = sums[r][c] - offset;
      const float scale = scales[r] * w_scales[c];
      const float product = static_cast<float>(total) * scale;
      const float v = bias ? product + bias[c] : product;
      y[r * y_stride + c] = residual ? v + residual[r * y_stride + c] : v;
    }
  }
}

template <class S, int R, int C>
inline void int8_row_tile(const int8_t* q, const float* scales, int64_t i, int64_t k,
                          const int8_t* w, const float* w_scales, const LinearEpilogue& e,
                          int64_t n, int64_t column_begin, int64_t column_end, float* y) {
  const int64_t stride = ref::quantized_row_stride(k);
  int64_t j = column_begin;
  for (; j + C <= column_end; j += C) {
    int8_tile<S, R, C>(q + i * stride, stride, scales + i, k, w + j * k, w_scales + j,
                       e.bias ? e.bias + j : nullptr, e.residual ? e.residual + i * n + j : nullptr,
                       y + i * n + j, n);
  }
  for (; j < column_end; ++j) {
    int8_tile<S, R, 1>(q + i * stride, stride, scales + i, k, w + j * k, w_scales + j,
                       e.bias ? e.bias + j : nullptr, e.residual ? e.residual + i * n + j : nullptr,
                       y + i * n + j, n);
  }
}

template <class S>
void linear_int8(const int8_t* q, const float* scales, int64_t m, int64_t k, const int8_t* w,
                 const float* w_scales, int64_t n, int64_t column_begin, int64_t column_end,
                 const LinearEpilogue& e, float* y) {
  constexpr int R = S::kInt8Rows;
  const int64_t panel = panel_columns(k, 1);
  for (int64_t panel_begin = column_begin; panel_begin < column_end; panel_begin += panel) {
    const int64_t panel_end = panel_begin + panel < column_end ? panel_begin + panel : column_end;
    for (int64_t row_begin = 0; row_begin < m; row_begin += kRowBlock) {
      const int64_t row_end = row_begin + kRowBlock < m ? row_begin + kRowBlock : m;
      const int64_t tiled_end = row_begin + (row_end - row_begin) / R * R;
      for (int64_t j = panel_begin; j < panel_end; j += S::kInt8Columns) {
        const int64_t block_end = j + S::kInt8Columns < panel_end ? j + S::kInt8Columns : panel_end;
        for (int64_t i = row_begin; i < tiled_end; i += R) {
          int8_row_tile<S, R, S::kInt8Columns>(q, scales, i, k, w, w_scales, e, n, j, block_end,
                                               y);
        }
      }
      for (int64_t i = tiled_end; i < row_end; ++i) {
        int8_row_tile<S, 1, S::kInt8SingleRowColumns>(q, scales, i, k, w, w_scales, e, n,
                                                      panel_begin, panel_end, y);
      }
      apply_activation<S>(e, row_begin, row_end, n, panel_begin, panel_end, y);
    }
  }
}

}  // namespace
}  // namespace pytransformer::kernels::cpu

// The linear kernels written once over a vector abstraction `S`, compiled by each ISA's
// translation unit (kernels_<isa>.cpp) with its own `S` (simd_<isa>.h). Everything here has
// internal linkage so that code compiled with one ISA's flags is never linked into another's.
//
// Weights are repacked once (pack_weight) into column panels of P = S::kPanelVectors * S::kLanes
// output columns; the last panel is padded with zero columns. Panels follow each other in
// memory, so a product reads the whole matrix as one sequential stream.
//   f32/f16/bf16: panel[p * P + c] = W[panel_first + c, p] for p < k (k-major: one row of P
//     weights per input position, in the stored 16- or 32-bit encoding).
//   int8: k in groups of 4 bytes (zero-padded); per group, kPanelVectors vectors of kBytes, and
//     in vector v the 4 bytes of column c = v * kLanes + l sit at S::packed_byte(l, b), b < 4 —
//     where S's 4-byte dot product (vpdpbusd, vpmaddubsw + vpmaddwd, vmull + vpadal) sums them
//     into int32 lane l. With S::kCompensated (u8 x s8 products of q + 128), each panel ends
//     with int32 128 * sum_c W[j, c] for its P columns.
//   q8_0/q4_1 (k a multiple of 32): per block of 32 input positions, the panel's P f16 d (then,
//     q4_1, its P f16 m), then the integers k-major: q8_0 32 rows of P int8; q4_1 16 rows of P
//     bytes whose low nibble is position t and high nibble position t + 16 of the block (the
//     pairing of the stored block, docs/format.md). The same bytes as stored, transposed.
// A panel depends only on its own rows of W, so a matrix can be packed a few panels at a time
// (pack_weight on a slice of rows starting at a multiple of P, into that panel's offset).
// A tile keeps R rows x kPanelVectors vectors of accumulators: per input position (per group
// of 4 for int8) it loads the panel's P weights once and broadcasts each row's activation.
// An S may provide its whole int8 tile (S::int8_tile, kInt8TileRows rows): the same sums.
// Block tiles (kBlockRows rows) sum each block's products in a second set of accumulators and
// add d times them (and m times the block's sum of the row's inputs) to the first.
// Each f32 output is therefore one FMA chain over c = 0, 1, ..., k - 1 in order, whatever m,
// the tile, the column range or the thread count (results are deterministic and independent
// of batching); int8 sums are exact integers, bit-identical to kernels/ref/linear_int8.h.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "format/dtype.h"
#include "kernels/cpu/activation_impl.h"
#include "kernels/cpu/kernels.h"
#include "kernels/ref/linear_int8.h"

namespace pytransformer::kernels::cpu {
namespace {

template <class S>
constexpr int64_t kPanelColumns = int64_t{S::kPanelVectors} * S::kLanes;

#define PYTRANSFORMER_INLINE __attribute__((always_inline)) inline
#define PYTRANSFORMER_LAMBDA __attribute__((always_inline))

// f(std::integral_constant<int, i>{}) for i = 0, ..., N - 1, unrolled in the source: tile
// accumulators indexed by constants from the start stay in registers (loops unrolled later by
// the compiler leave arrays of vectors in memory, reloaded at every step).
template <class F, int... Index>
PYTRANSFORMER_INLINE void unrolled_impl(const F& f, std::integer_sequence<int, Index...>) {
  (f(std::integral_constant<int, Index>{}), ...);
}
template <int N, class F>
PYTRANSFORMER_INLINE void unrolled(const F& f) {
  unrolled_impl(f, std::make_integer_sequence<int, N>{});
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t int8_groups(int64_t k) { return ceil_div(k, 4); }

template <DType D>
struct WeightElement {
  using type = uint16_t;
};
template <>
struct WeightElement<DType::F32> {
  using type = float;
};

// Bytes of one packed panel of P columns.
template <class S>
int64_t panel_bytes(DType dtype, int64_t k) {
  if (is_block_dtype(dtype)) return kPanelColumns<S> * row_bytes(dtype, k);
  if (dtype != DType::INT8) return kPanelColumns<S> * k * static_cast<int64_t>(dtype_size(dtype));
  const int64_t compensation = S::kCompensated ? kPanelColumns<S> * int64_t{sizeof(int32_t)} : 0;
  return kPanelColumns<S> * int8_groups(k) * 4 + compensation;
}

template <class S>
int64_t packed_weight_bytes(DType dtype, int64_t n, int64_t k) {
  return ceil_div(n, kPanelColumns<S>) * panel_bytes<S>(dtype, k);
}

// The f32/f16/bf16 panels: panel[p * P + c] = W[panel_first + c, p], written in order. Per
// input position p the loop reads one element of each of the panel's P rows, whose cache lines
// then serve the next positions too (P lines stay in L1), and the element type is known, so a
// load start-up does not spend its time in one memcpy call per weight.
template <class Element>
void pack_transposed(const Element* weight, int64_t n, int64_t k, int64_t P, unsigned char* out,
                     int64_t stride) {
  for (int64_t first = 0; first < n; first += P) {
    auto* panel = reinterpret_cast<Element*>(out + (first / P) * stride);
    const int64_t columns = std::min(P, n - first);
    const Element* rows = weight + first * k;
    for (int64_t p = 0; p < k; ++p) {
      Element* line = panel + p * P;
      for (int64_t c = 0; c < columns; ++c) line[c] = rows[c * k + p];
      for (int64_t c = columns; c < P; ++c) line[c] = 0;  // the last panel's padding
    }
  }
}

template <class S>
void pack_weight(const void* weight, DType dtype, int64_t n, int64_t k, void* packed) {
  constexpr int64_t P = kPanelColumns<S>;
  const int64_t panels = ceil_div(n, P);
  const int64_t stride = panel_bytes<S>(dtype, k);
  auto* out = static_cast<unsigned char*>(packed);
  if (!is_block_dtype(dtype) && dtype != DType::INT8) {  // writes every byte, padding included
    if (dtype_size(dtype) == 4) {
      pack_transposed(static_cast<const uint32_t*>(weight), n, k, P, out, stride);
    } else {
      pack_transposed(static_cast<const uint16_t*>(weight), n, k, P, out, stride);
    }
    return;
  }
  std::memset(out, 0, static_cast<size_t>(panels * stride));
  if (is_block_dtype(dtype)) {
    // Per block: d[P] (2 bytes each), m[P] (q4_1), then the integer rows of P bytes.
    const int64_t block = static_cast<int64_t>(block_bytes(dtype));
    const int64_t scale_halves = dtype == DType::Q4_1 ? 2 : 1;
    const int64_t integer_rows = block - 2 * scale_halves;
    const int64_t source_row = row_bytes(dtype, k);
    const auto* source = static_cast<const unsigned char*>(weight);
    for (int64_t j = 0; j < n; ++j) {
      const int64_t c = j % P;
      for (int64_t b = 0; b < k / kBlockValues; ++b) {
        const unsigned char* stored = source + j * source_row + b * block;
        unsigned char* packed_block = out + (j / P) * stride + b * P * block;
        for (int64_t h = 0; h < scale_halves; ++h) {
          std::memcpy(packed_block + h * 2 * P + 2 * c, stored + 2 * h, 2);
        }
        unsigned char* integers = packed_block + scale_halves * 2 * P;
        for (int64_t t = 0; t < integer_rows; ++t) integers[t * P + c] = stored[2 * scale_halves + t];
      }
    }
    return;
  }
  const auto* w = static_cast<const int8_t*>(weight);
  const int64_t groups = int8_groups(k);
  for (int64_t j = 0; j < n; ++j) {
    int8_t* panel = reinterpret_cast<int8_t*>(out + (j / P) * stride);
    const int64_t v = j % P / S::kLanes, lane = j % S::kLanes;
    int32_t sum = 0;
    for (int64_t p = 0; p < k; ++p) {
      panel[(p / 4 * S::kPanelVectors + v) * S::kBytes +
            S::packed_byte(static_cast<int>(lane), static_cast<int>(p % 4))] = w[j * k + p];
      sum += w[j * k + p];
    }
    if constexpr (S::kCompensated) {
      reinterpret_cast<int32_t*>(panel + P * groups * 4)[j % P] = 128 * sum;
    }
  }
}

// The packed matrix of rows `rows[0..count)` of the [n, k] matrix that `packed` holds (each
// row < n): the bytes pack_weight would write for those rows gathered in that order, copied
// from their panels (every byte of a column, and its int8 compensation, moves with it).
template <class S>
void select_packed_rows(const void* packed, DType dtype, int64_t n, int64_t k,
                        const int32_t* rows, int64_t count, void* out) {
  (void)n;
  constexpr int64_t P = kPanelColumns<S>;
  const int64_t stride = panel_bytes<S>(dtype, k);
  const auto* in = static_cast<const unsigned char*>(packed);
  auto* selected = static_cast<unsigned char*>(out);
  std::memset(selected, 0, static_cast<size_t>(ceil_div(count, P) * stride));
  for (int64_t c = 0; c < count; ++c) {
    const int64_t j = rows[c];
    const unsigned char* from_panel = in + (j / P) * stride;
    unsigned char* to_panel = selected + (c / P) * stride;
    const int64_t from = j % P, to = c % P;
    if (is_block_dtype(dtype)) {
      const int64_t block = static_cast<int64_t>(block_bytes(dtype));
      const int64_t scale_halves = dtype == DType::Q4_1 ? 2 : 1;
      const int64_t integer_rows = block - 2 * scale_halves;
      for (int64_t b = 0; b < k / kBlockValues; ++b) {
        const unsigned char* from_block = from_panel + b * P * block;
        unsigned char* to_block = to_panel + b * P * block;
        for (int64_t h = 0; h < scale_halves; ++h) {
          std::memcpy(to_block + h * 2 * P + 2 * to, from_block + h * 2 * P + 2 * from, 2);
        }
        const unsigned char* from_integers = from_block + scale_halves * 2 * P;
        unsigned char* to_integers = to_block + scale_halves * 2 * P;
        for (int64_t t = 0; t < integer_rows; ++t) to_integers[t * P + to] = from_integers[t * P + from];
      }
    } else if (dtype != DType::INT8) {
      const int64_t size = static_cast<int64_t>(dtype_size(dtype));
      for (int64_t p = 0; p < k; ++p) {
        std::memcpy(to_panel + (p * P + to) * size, from_panel + (p * P + from) * size,
                    static_cast<size_t>(size));
      }
    } else {
      const int64_t groups = int8_groups(k);
      const int64_t from_vector = from / S::kLanes, to_vector = to / S::kLanes;
      const int from_lane = static_cast<int>(from % S::kLanes);
      const int to_lane = static_cast<int>(to % S::kLanes);
      for (int64_t g = 0; g < groups; ++g) {
        for (int b = 0; b < 4; ++b) {
          to_panel[(g * S::kPanelVectors + to_vector) * S::kBytes + S::packed_byte(to_lane, b)] =
              from_panel[(g * S::kPanelVectors + from_vector) * S::kBytes +
                         S::packed_byte(from_lane, b)];
        }
      }
      if constexpr (S::kCompensated) {
        std::memcpy(to_panel + P * groups * 4 + to * 4, from_panel + P * groups * 4 + from * 4, 4);
      }
    }
  }
}

// Rows of x kept in cache while the panels of the column range stream past them: about
// 128 KiB of activations, a whole number of tiles.
template <int R>
int64_t row_block(int64_t row_bytes) {
  const int64_t rows = (int64_t{1} << 17) / std::max<int64_t>(row_bytes, 1);
  return std::max<int64_t>(1, rows / R) * R;
}

// y_row[j] for columns j in [begin, end) of the panel's vectors (panel_first + v * kLanes + l):
// values[v] (+ bias) (+ residual_row), in that order; nothing outside [begin, end) is written
// and nothing at or past n = end of the matrix is read.
template <class S>
PYTRANSFORMER_INLINE void store_panel_row(const typename S::V* values, int64_t panel_first,
                                          int64_t begin, int64_t end, const float* bias,
                                          const float* residual_row, float* y_row) {
  using V = typename S::V;
  constexpr int L = S::kLanes;
  #pragma GCC unroll 4
  for (int v = 0; v < S::kPanelVectors; ++v) {
    const int64_t first = panel_first + v * L;
    if (first >= end || first + L <= begin) continue;
    V value = values[v];
    if (first >= begin && first + L <= end) {
      if (bias) value = S::add(value, S::load(bias + first));
      if (residual_row) value = S::add(value, S::load(residual_row + first));
      S::store(y_row + first, value);
    } else {
      const int count = static_cast<int>(std::min<int64_t>(L, end - first));
      if (bias) value = S::add(value, S::load_partial(bias + first, count));
      if (residual_row) value = S::add(value, S::load_partial(residual_row + first, count));
      float lanes[L];
      S::store(lanes, value);
      const int low = static_cast<int>(std::max<int64_t>(0, begin - first));
      std::memcpy(y_row + first + low, lanes + low, sizeof(float) * (count - low));
    }
  }
}

// The activation over y[rows, begin:end), still in cache from the tiles.
template <class S>
inline void apply_activation(const LinearEpilogue& e, int64_t row_begin, int64_t row_end,
                             int64_t n, int64_t begin, int64_t end, float* y) {
  if (!e.activate) return;
  for (int64_t i = row_begin; i < row_end; ++i) {
    activate<S>(e.activation, y + i * n + begin, end - begin);
  }
}

// Calls tile.template run<r>(row) for rows [row, row + count) in tiles of at most R rows.
template <int R, class Tile>
inline void for_each_tile(int64_t row, int64_t count, const Tile& tile) {
  for (; count >= R; row += R, count -= R) tile.template run<R>(row);
  if constexpr (R > 1) {
    if (count > 0) for_each_tile<R - 1>(row, count, tile);
  }
}

// ---- f32 / f16 / bf16 ----

template <class S, DType D>
inline typename S::V load_weight(const typename WeightElement<D>::type* p) {
  if constexpr (D == DType::F32) return S::load(p);
  if constexpr (D == DType::F16) return S::load_f16(p);
  if constexpr (D == DType::BF16) return S::load_bf16(p);
}

template <class S, DType D>
struct FloatTile {
  using W = typename WeightElement<D>::type;
  const float* x;
  int64_t k, n, begin, end;
  const W* panel;
  int64_t panel_first;
  const LinearEpilogue* e;
  float* y;

  template <int R>
  void run(int64_t row) const {
    using V = typename S::V;
    constexpr int PV = S::kPanelVectors;
    constexpr int64_t P = kPanelColumns<S>;
    V acc[R][PV];
    unrolled<R * PV>([&](auto t) PYTRANSFORMER_LAMBDA { acc[t / PV][t % PV] = S::zero(); });
    const float* rows = x + row * k;
    const W* w = panel;
    for (int64_t p = 0; p < k; ++p, w += P) {
      V wv[PV];
      unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA { wv[v] = load_weight<S, D>(w + v * S::kLanes); });
      unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA {
        const V xv = S::set1(rows[r * k + p]);
        unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA { acc[r][v] = S::fmadd(xv, wv[v], acc[r][v]); });
      });
    }
    unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA {
      const int64_t i = row + r;
      V values[PV];
      unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA { values[v] = acc[r][v]; });
      store_panel_row<S>(values, panel_first, begin, end, e->bias,
                         e->residual ? e->residual + i * n : nullptr, y + i * n);
    });
  }
};

template <class S, DType D>
void linear_float_typed(const float* x, int64_t m, int64_t k, const void* packed, int64_t n,
                        int64_t begin, int64_t end, const LinearEpilogue& e, float* y) {
  using W = typename WeightElement<D>::type;
  constexpr int64_t P = kPanelColumns<S>;
  constexpr int R = S::kFloatRows;
  const int64_t rows_per_block = row_block<R>(k * int64_t{sizeof(float)});
  for (int64_t row_begin = 0; row_begin < m; row_begin += rows_per_block) {
    const int64_t row_end = std::min(m, row_begin + rows_per_block);
    for (int64_t panel = begin / P; panel * P < end; ++panel) {
      const FloatTile<S, D> tile{x, k, n, begin, end,
                                 static_cast<const W*>(packed) + panel * P * k, panel * P, &e, y};
      for_each_tile<R>(row_begin, row_end - row_begin, tile);
    }
    apply_activation<S>(e, row_begin, row_end, n, begin, end, y);
  }
}

// ---- q8_0 / q4_1 ----

// S::kBlockRows when S sets it, else 3: a block tile keeps 2 x R x kPanelVectors accumulators
// and the panel's dequantised integers in registers.
template <class S, class = void>
struct BlockRows : std::integral_constant<int, 3> {};
template <class S>
struct BlockRows<S, std::void_t<decltype(S::kBlockRows)>>
    : std::integral_constant<int, S::kBlockRows> {};

template <class S, DType D>
struct BlockTile {
  const float* x;
  const float* block_sums;  // [m, k / 32]: sum of each block's inputs (q4_1)
  int64_t k, n, begin, end;
  const unsigned char* panel;
  int64_t panel_first;
  const LinearEpilogue* e;
  float* y;

  template <int R>
  void run(int64_t row) const {
    using V = typename S::V;
    constexpr int PV = S::kPanelVectors;
    constexpr int L = S::kLanes;
    constexpr int64_t P = kPanelColumns<S>;
    constexpr int64_t kBlock = static_cast<int64_t>(block_bytes(D));
    constexpr int kScaleHalves = D == DType::Q4_1 ? 2 : 1;
    const int64_t blocks = k / kBlockValues;
    V acc[R][PV];
    unrolled<R * PV>([&](auto t) PYTRANSFORMER_LAMBDA { acc[t / PV][t % PV] = S::zero(); });
    for (int64_t b = 0; b < blocks; ++b) {
      const unsigned char* packed_block = panel + b * P * kBlock;
      const unsigned char* integers = packed_block + kScaleHalves * 2 * P;
      const float* xb = x + row * k + b * kBlockValues;
      V sums[R][PV];
      unrolled<R * PV>([&](auto t) PYTRANSFORMER_LAMBDA { sums[t / PV][t % PV] = S::zero(); });
      if constexpr (D == DType::Q4_1) {
        for (int64_t t = 0; t < kBlockValues / 2; ++t) {
          V low[PV], high[PV];
          unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA {
            S::load_nibbles(integers + t * P + v * L, low[v], high[v]);
          });
          unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA {
            const V x_low = S::set1(xb[r * k + t]);
            const V x_high = S::set1(xb[r * k + t + kBlockValues / 2]);
            unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA {
              sums[r][v] = S::fmadd(x_low, low[v], sums[r][v]);
              sums[r][v] = S::fmadd(x_high, high[v], sums[r][v]);
            });
          });
        }
      } else {
        for (int64_t t = 0; t < kBlockValues; ++t) {
          V q[PV];
          unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA {
            q[v] = S::load_i8_as_float(reinterpret_cast<const int8_t*>(integers + t * P + v * L));
          });
          unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA {
            const V xv = S::set1(xb[r * k + t]);
            unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA { sums[r][v] = S::fmadd(xv, q[v], sums[r][v]); });
          });
        }
      }
      const auto* d = reinterpret_cast<const uint16_t*>(packed_block);
      unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA {
        const V scale = S::load_f16(d + v * L);
        unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA { acc[r][v] = S::fmadd(scale, sums[r][v], acc[r][v]); });
      });
      if constexpr (D == DType::Q4_1) {
        const auto* minimum = reinterpret_cast<const uint16_t*>(packed_block + 2 * P);
        unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA {
          const V offset = S::load_f16(minimum + v * L);
          unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA {
            acc[r][v] = S::fmadd(offset, S::set1(block_sums[(row + r) * blocks + b]), acc[r][v]);
          });
        });
      }
    }
    unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA {
      const int64_t i = row + r;
      V values[PV];
      unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA { values[v] = acc[r][v]; });
      store_panel_row<S>(values, panel_first, begin, end, e->bias,
                         e->residual ? e->residual + i * n : nullptr, y + i * n);
    });
  }
};

template <class S, DType D>
void linear_block_typed(const float* x, int64_t m, int64_t k, const void* packed, int64_t n,
                        int64_t begin, int64_t end, const LinearEpilogue& e, float* y) {
  constexpr int64_t P = kPanelColumns<S>;
  constexpr int R = BlockRows<S>::value;
  const int64_t blocks = k / kBlockValues;
  // Each row's sum of inputs per block (the m term of q4_1), once per call.
  thread_local std::vector<float> sums;
  if constexpr (D == DType::Q4_1) {
    sums.resize(static_cast<size_t>(m * blocks));
    for (int64_t i = 0; i < m * blocks; ++i) {
      const float* xb = x + i * kBlockValues;
      float total = 0.0f;
      for (int64_t c = 0; c < kBlockValues; ++c) total += xb[c];
      sums[static_cast<size_t>(i)] = total;
    }
  }
  const int64_t panel_stride = panel_bytes<S>(D, k);
  const auto* weights = static_cast<const unsigned char*>(packed);
  const int64_t rows_per_block = row_block<R>(k * int64_t{sizeof(float)});
  for (int64_t row_begin = 0; row_begin < m; row_begin += rows_per_block) {
    const int64_t row_end = std::min(m, row_begin + rows_per_block);
    for (int64_t panel = begin / P; panel * P < end; ++panel) {
      const BlockTile<S, D> tile{x, sums.data(), k, n, begin, end, weights + panel * panel_stride,
                                 panel * P, &e, y};
      for_each_tile<R>(row_begin, row_end - row_begin, tile);
    }
    apply_activation<S>(e, row_begin, row_end, n, begin, end, y);
  }
}

template <class S>
void linear_float(const float* x, int64_t m, int64_t k, const void* packed, DType dtype, int64_t n,
                  int64_t column_begin, int64_t column_end, const LinearEpilogue& epilogue,
                  float* y) {
  switch (dtype) {
    case DType::F32:
      return linear_float_typed<S, DType::F32>(x, m, k, packed, n, column_begin, column_end,
                                               epilogue, y);
    case DType::F16:
      return linear_float_typed<S, DType::F16>(x, m, k, packed, n, column_begin, column_end,
                                               epilogue, y);
    case DType::BF16:
      return linear_float_typed<S, DType::BF16>(x, m, k, packed, n, column_begin, column_end,
                                                epilogue, y);
    case DType::Q8_0:
      return linear_block_typed<S, DType::Q8_0>(x, m, k, packed, n, column_begin, column_end,
                                                epilogue, y);
    case DType::Q4_1:
      return linear_block_typed<S, DType::Q4_1>(x, m, k, packed, n, column_begin, column_end,
                                                epilogue, y);
    case DType::INT8:
      return;  // ops route int8 weights to linear_int8
  }
}

// ---- int8 ----

// S::kInt8TileRows when S has a whole-tile int8 routine (S::int8_tile), else 0.
template <class S, class = void>
struct Int8TileRows : std::integral_constant<int, 0> {};
template <class S>
struct Int8TileRows<S, std::void_t<decltype(S::kInt8TileRows)>>
    : std::integral_constant<int, S::kInt8TileRows> {};

template <class S>
struct Int8Tile {
  const uint8_t* q;  // activation rows as S::dot reads them (q + 128 when kCompensated)
  int64_t q_stride;
  const float* scales;
  int64_t groups, n, begin, end;
  const int8_t* panel;
  const int32_t* compensation;  // of the panel's P columns, kCompensated only
  const float* w_scales;
  int64_t panel_first;
  const LinearEpilogue* e;
  float* y;

  // acc[r][v] = sum over the groups of the row r . panel vector v products, from zero.
  template <int R>
  PYTRANSFORMER_INLINE void accumulate(const uint8_t* rows,
                                       typename S::I (&acc)[R][S::kPanelVectors]) const {
    constexpr int PV = S::kPanelVectors;
    unrolled<R * PV>([&](auto t) PYTRANSFORMER_LAMBDA { acc[t / PV][t % PV] = S::zero_i(); });
    const int8_t* w = panel;
    for (int64_t g = 0; g < groups; ++g, w += PV * S::kBytes) {
      typename S::WeightPrep wv[PV];
      unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA {
        wv[v] = S::prepare_weight(S::load_i8(w + v * S::kBytes));
      });
      unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA {
        const typename S::I xv = S::broadcast_group(rows + r * q_stride + 4 * g);
        unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA { S::dot(acc[r][v], xv, wv[v]); });
      });
    }
  }

  template <int R>
  void run(int64_t row) const {
    using I = typename S::I;
    using V = typename S::V;
    constexpr int PV = S::kPanelVectors;
    constexpr int L = S::kLanes;
    I acc[R][PV];
    const uint8_t* rows = q + row * q_stride;
    if constexpr (Int8TileRows<S>::value == R) {
      static_assert(PV == 4, "S::int8_tile computes 4 vectors of columns");
      S::int8_tile(rows, q_stride, panel, groups, &acc[0][0]);
    } else {
      accumulate<R>(rows, acc);
    }
    V w_scale[PV];
    I offset[PV];
    unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA {
      const int64_t first = panel_first + v * L;
      const int count = static_cast<int>(std::clamp<int64_t>(n - first, 0, L));
      w_scale[v] = count == L ? S::load(w_scales + first)
                              : count > 0 ? S::load_partial(w_scales + first, count) : S::zero();
      if constexpr (S::kCompensated) offset[v] = S::load_i32(compensation + v * L);
    });
    unrolled<R>([&](auto r) PYTRANSFORMER_LAMBDA {
      const int64_t i = row + r;
      const V row_scale = S::set1(scales[i]);
      V values[PV];
      unrolled<PV>([&](auto v) PYTRANSFORMER_LAMBDA {
        I total = acc[r][v];
        if constexpr (S::kCompensated) total = S::sub_i32(total, offset[v]);
        values[v] = S::mul(S::to_float(total), S::mul(row_scale, w_scale[v]));
      });
      store_panel_row<S>(values, panel_first, begin, end, e->bias,
                         e->residual ? e->residual + i * n : nullptr, y + i * n);
    });
  }
};

template <class S>
void linear_int8(const int8_t* q, const float* scales, int64_t m, int64_t k, const void* packed,
                 const float* w_scales, int64_t n, int64_t begin, int64_t end,
                 const LinearEpilogue& e, float* y) {
  constexpr int64_t P = kPanelColumns<S>;
  constexpr int R = S::kInt8Rows;
  const int64_t stride = ref::quantized_row_stride(k);
  const int64_t groups = int8_groups(k);
  const uint8_t* rows = reinterpret_cast<const uint8_t*>(q);
  if constexpr (S::kCompensated) {
    // u8 operands for the u8 x s8 products: q + 128, once per call (the padding becomes 128,
    // against zero weights).
    thread_local std::vector<uint8_t> shifted;
    shifted.resize(static_cast<size_t>(m * stride));
    uint8_t* out = shifted.data();
    for (int64_t i = 0; i < m * stride; ++i) out[i] = static_cast<uint8_t>(q[i] ^ 0x80);
    rows = out;
  }
  const auto* weights = static_cast<const int8_t*>(packed);
  const int64_t weights_per_panel = P * groups * 4;
  const int64_t panel_stride = panel_bytes<S>(DType::INT8, k);
  const int64_t rows_per_block = row_block<R>(stride);
  for (int64_t row_begin = 0; row_begin < m; row_begin += rows_per_block) {
    const int64_t row_end = std::min(m, row_begin + rows_per_block);
    for (int64_t panel = begin / P; panel * P < end; ++panel) {
      const Int8Tile<S> tile{rows, stride, scales, groups, n, begin, end,
                             weights + panel * panel_stride,
                             S::kCompensated
                                 ? reinterpret_cast<const int32_t*>(
                                       weights + panel * panel_stride + weights_per_panel)
                                 : nullptr,
                             w_scales, panel * P, &e, y};
      for_each_tile<R>(row_begin, row_end - row_begin, tile);
    }
    apply_activation<S>(e, row_begin, row_end, n, begin, end, y);
  }
}

}  // namespace
}  // namespace pytransformer::kernels::cpu

#undef PYTRANSFORMER_INLINE
#undef PYTRANSFORMER_LAMBDA

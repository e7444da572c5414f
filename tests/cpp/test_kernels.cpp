// Every kernel variant this CPU runs against the scalar references (kernels/ref/), on awkward
// shapes: sizes that are not multiples of any vector width, length 1, long rows, partial
// column ranges, every weight dtype and every epilogue.
//
//   test_kernels [isa ...]      (default: every supported variant but scalar)
//
// Checks: weights packed by each variant (pack_weight) and read back by its linear kernels:
// f32/f16/bf16/q8_0/q4_1 linear within a summation-order bound of the reference and bit-identical
// whatever m and the column split (determinism); int8 quantisation and products
// bit-identical to the reference; activations, add and the other entries (attention with
// grouped-query heads and the causal mask) against the reference, and attention's own
// contract (causal = attention over each query's prefix, grouped-query = multi-head over
// repeated K/V heads) on every variant. Prints one line per variant and kernel; exit status 1
// on any failure.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_isa.h"
#include "kernels/cpu/kernels.h"
#include "kernels/ref/activation.h"
#include "kernels/ref/attention.h"
#include "kernels/ref/convert.h"
#include "kernels/ref/layer_norm.h"
#include "kernels/ref/rms_norm.h"
#include "kernels/ref/rotary.h"
#include "kernels/ref/linear.h"
#include "kernels/ref/linear_int8.h"
#include "kernels/ref/softmax.h"
#include "kernels/ref/ssru.h"

namespace cpu = pytransformer::kernels::cpu;
namespace ref = pytransformer::kernels::ref;
using pytransformer::DType;
using pytransformer::format::Activation;

namespace {

int failures = 0;

struct Stats {
  std::string name;
  int64_t cases = 0;
  int64_t values = 0;
  double worst = 0.0;  // largest error as a fraction of its allowed bound (0 = exact)
  bool ok = true;
};

void report(const cpu::KernelTable& table, const Stats& s) {
  std::printf("%-12s %-28s %s cases=%lld values=%lld worst_error/bound=%.3g\n",
              cpu::isa_name(table.isa), s.name.c_str(), s.ok ? "ok  " : "FAIL",
              static_cast<long long>(s.cases), static_cast<long long>(s.values), s.worst);
  if (!s.ok) ++failures;
}

void fail(Stats& s, const std::string& message) {
  if (s.ok) std::printf("  %s: %s\n", s.name.c_str(), message.c_str());
  s.ok = false;
}

std::mt19937 rng(12345);

std::vector<float> random_floats(int64_t count, float scale = 1.0f) {
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(count));
  for (float& x : v) x = normal(rng);
  return v;
}

uint16_t to_f16(float value) {  // round to nearest even; inputs here are normal and small
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  int32_t exponent = static_cast<int32_t>((bits >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = bits & 0x7fffffu;
  if (exponent <= 0) return static_cast<uint16_t>(sign);  // flush tiny values to zero
  uint32_t half = (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

uint16_t to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

struct Weights {
  DType dtype;
  std::vector<float> f32;
  std::vector<uint16_t> half;
  std::vector<int8_t> i8;
  std::vector<float> scales;
  std::vector<unsigned char> blocks;  // q8_0 / q4_1 rows of blocks
  const void* data() const {
    if (dtype == DType::F32) return f32.data();
    if (dtype == DType::INT8) return i8.data();
    if (pytransformer::is_block_dtype(dtype)) return blocks.data();
    return half.data();
  }
};

// Random q8_0 / q4_1 blocks (k a multiple of 32): d of either sign, q4_1's m mostly negative
// (as a block's minimum is), every integer value.
std::vector<unsigned char> random_blocks(DType dtype, int64_t n, int64_t k) {
  std::uniform_real_distribution<float> scale(0.001f, 0.05f), offset(-0.4f, 0.1f);
  std::uniform_int_distribution<int> byte(0, 255);
  const size_t block = pytransformer::block_bytes(dtype);
  std::vector<unsigned char> out(static_cast<size_t>(n * k / 32) * block);
  for (size_t b = 0; b < out.size(); b += block) {
    const uint16_t d = to_f16(byte(rng) % 2 ? scale(rng) : -scale(rng));
    std::memcpy(&out[b], &d, 2);
    size_t first = 2;
    if (dtype == DType::Q4_1) {
      const uint16_t m = to_f16(offset(rng));
      std::memcpy(&out[b + 2], &m, 2);
      first = 4;
    }
    for (size_t i = first; i < block; ++i) out[b + i] = static_cast<unsigned char>(byte(rng));
  }
  return out;
}

Weights random_weights(DType dtype, int64_t n, int64_t k) {
  Weights w;
  w.dtype = dtype;
  w.f32 = random_floats(n * k, 1.0f / std::sqrt(static_cast<float>(k)));
  if (dtype == DType::F16 || dtype == DType::BF16) {
    for (float v : w.f32) w.half.push_back(dtype == DType::F16 ? to_f16(v) : to_bf16(v));
  }
  if (pytransformer::is_block_dtype(dtype)) w.blocks = random_blocks(dtype, n, k);
  if (dtype == DType::INT8) {
    std::uniform_int_distribution<int> value(-127, 127);
    std::uniform_real_distribution<float> scale(0.001f, 0.02f);
    for (int64_t i = 0; i < n * k; ++i) w.i8.push_back(static_cast<int8_t>(value(rng)));
    for (int64_t j = 0; j < n; ++j) w.scales.push_back(scale(rng));
  }
  return w;
}

// W in the layout `table`'s linear kernels read: packed by the table, or as stored.
class KernelWeights {
 public:
  KernelWeights(const cpu::KernelTable& table, const Weights& w, int64_t n, int64_t k)
      : stored_(w.data()) {
    const int64_t bytes = table.packed_weight_bytes(w.dtype, n, k);
    if (bytes == 0) return;
    packed_.reset(std::aligned_alloc(64, static_cast<size_t>((bytes + 63) / 64 * 64)));
    table.pack_weight(w.data(), w.dtype, n, k, packed_.get());
  }
  const void* data() const { return packed_ ? packed_.get() : stored_; }

 private:
  struct Free {
    void operator()(void* p) const { std::free(p); }
  };
  const void* stored_;
  std::unique_ptr<void, Free> packed_;
};

// |W[j, c]|, or for block dtypes the terms the kernels sum, |d * n[c]| + |m|.
void magnitude_row(const Weights& w, int64_t j, int64_t k, float* row) {
  if (!pytransformer::is_block_dtype(w.dtype)) {
    ref::convert_row(w.data(), w.dtype, nullptr, j, k, row);
    for (int64_t c = 0; c < k; ++c) row[c] = std::fabs(row[c]);
    return;
  }
  const size_t block = pytransformer::block_bytes(w.dtype);
  for (int64_t b = 0; b < k / 32; ++b) {
    const unsigned char* stored = w.blocks.data() + (static_cast<size_t>(j * k / 32 + b)) * block;
    const float d = ref::f16_to_float(ref::load_u16(stored));
    const float offset = w.dtype == DType::Q4_1 ? ref::f16_to_float(ref::load_u16(stored + 2)) : 0.0f;
    for (int64_t i = 0; i < 32; ++i) {
      float integer;
      if (w.dtype == DType::Q8_0) {
        integer = static_cast<float>(static_cast<int8_t>(stored[2 + i]));
      } else {
        const unsigned char pair = stored[4 + i % 16];
        integer = static_cast<float>(i < 16 ? pair & 15 : pair >> 4);
      }
      row[b * 32 + i] = std::fabs(d * integer) + std::fabs(offset);
    }
  }
}

// |x| . |W[j]| + |b|: the scale of the rounding errors of any summation order.
std::vector<float> magnitudes(const std::vector<float>& x, int64_t m, int64_t k, const Weights& w,
                              int64_t n, const float* bias) {
  std::vector<float> row(static_cast<size_t>(k)), out(static_cast<size_t>(m * n));
  for (int64_t j = 0; j < n; ++j) {
    magnitude_row(w, j, k, row.data());
    for (int64_t i = 0; i < m; ++i) {
      double total = bias ? std::fabs(bias[j]) : 0.0;
      for (int64_t c = 0; c < k; ++c) total += std::fabs(x[i * k + c]) * row[c];
      out[i * n + j] = static_cast<float>(total);
    }
  }
  return out;
}

void compare(Stats& s, const float* got, const float* want, const float* bound_scale,
             int64_t count, double relative, double absolute, const std::string& where) {
  for (int64_t i = 0; i < count; ++i) {
    const double bound = relative * (bound_scale ? bound_scale[i] : std::fabs(want[i])) + absolute;
    const double error = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (!(error <= bound)) {
      fail(s, where + ": element " + std::to_string(i) + " got " + std::to_string(got[i]) +
                  " want " + std::to_string(want[i]));
      return;
    }
    if (bound > 0) s.worst = std::max(s.worst, error / bound);
  }
  s.values += count;
}

void compare_exact(Stats& s, const void* got, const void* want, size_t bytes,
                   const std::string& where) {
  if (std::memcmp(got, want, bytes) != 0) fail(s, where + ": not bit-identical");
}

const std::vector<int64_t> kRows = {1, 2, 3, 4, 5, 7, 9, 67};
const std::vector<int64_t> kDepths = {1, 3, 8, 15, 16, 17, 31, 33, 64, 65, 100, 257, 1031};
const std::vector<int64_t> kBlockDepths = {32, 64, 96, 160, 576, 1536};
const std::vector<int64_t> kColumns = {1, 2, 3, 5, 8, 9, 17, 33, 70, 129, 200};

std::string shape(int64_t m, int64_t k, int64_t n) {
  return "m=" + std::to_string(m) + " k=" + std::to_string(k) + " n=" + std::to_string(n);
}

void test_linear_float(const cpu::KernelTable& table, DType dtype) {
  Stats s{std::string("linear_float ") + pytransformer::dtype_name(dtype)};
  const cpu::KernelTable& scalar = cpu::kernels_for(cpu::Isa::SCALAR);
  for (int64_t m : kRows) {
    for (int64_t k : pytransformer::is_block_dtype(dtype) ? kBlockDepths : kDepths) {
      for (int64_t n : kColumns) {
        if (m * k * n > 400000) continue;
        const std::vector<float> x = random_floats(m * k);
        const Weights w = random_weights(dtype, n, k);
        const KernelWeights packed(table, w, n, k);
        const std::vector<float> bias = random_floats(n);
        const bool with_bias = (m + k + n) % 2 == 0;
        const float* b = with_bias ? bias.data() : nullptr;
        cpu::LinearEpilogue plain;
        plain.bias = b;
        std::vector<float> want(static_cast<size_t>(m * n)), got(want.size());
        ref::linear(x.data(), m, k, w.data(), dtype, nullptr, b, n, 0, n, want.data());
        table.linear_float(x.data(), m, k, packed.data(), dtype, n, 0, n, plain, got.data());
        const std::vector<float> scale = magnitudes(x, m, k, w, n, b);
        compare(s, got.data(), want.data(), scale.data(), m * n, 2e-6 * std::sqrt(k + 1.0), 0,
                shape(m, k, n));
        // Determinism: row by row and in column ranges (split inside a panel and at a panel
        // boundary, as threads split) gives the same bits.
        for (int64_t split : {n / 2, std::min(n, table.panel_columns)}) {
          std::vector<float> pieces(want.size());
          for (int64_t i = 0; i < m; ++i) {
            table.linear_float(x.data() + i * k, 1, k, packed.data(), dtype, n, 0, split, plain,
                               pieces.data() + i * n);
            table.linear_float(x.data() + i * k, 1, k, packed.data(), dtype, n, split, n, plain,
                               pieces.data() + i * n);
          }
          compare_exact(s, pieces.data(), got.data(), sizeof(float) * got.size(),
                        shape(m, k, n) + " split by rows and at column " + std::to_string(split));
        }
        // Epilogues on a column range: activations, and the residual added in place.
        const int64_t begin = n > 2 ? 1 : 0;
        for (Activation activation : {Activation::RELU, Activation::SWISH, Activation::GELU}) {
          cpu::LinearEpilogue e = plain;
          e.activate = true;
          e.activation = activation;
          std::vector<float> expected = random_floats(m * n), actual = expected;
          scalar.linear_float(x.data(), m, k, w.data(), dtype, n, begin, n, e, expected.data());
          table.linear_float(x.data(), m, k, packed.data(), dtype, n, begin, n, e, actual.data());
          compare(s, actual.data(), expected.data(), nullptr, m * n, 1e-5, 1e-5 * std::sqrt(k),
                  shape(m, k, n) + " activation");
        }
        std::vector<float> expected = random_floats(m * n), actual = expected;
        cpu::LinearEpilogue e = plain;
        e.residual = expected.data();
        scalar.linear_float(x.data(), m, k, w.data(), dtype, n, begin, n, e, expected.data());
        e.residual = actual.data();
        table.linear_float(x.data(), m, k, packed.data(), dtype, n, begin, n, e, actual.data());
        compare(s, actual.data(), expected.data(), nullptr, m * n, 1e-5, 1e-5 * std::sqrt(k),
                shape(m, k, n) + " residual in place");
        ++s.cases;
      }
    }
  }
  report(table, s);
}

// A matrix packed a slice of whole panels at a time (as ops::LinearWeight does, releasing
// each slice's pages as it goes) is byte-identical to the matrix packed at once.
void test_packing_in_slices(const cpu::KernelTable& table) {
  Stats s{"pack_weight in slices"};
  const int64_t panel = table.panel_columns;
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::INT8, DType::Q8_0, DType::Q4_1}) {
    for (int64_t k : {1, 5, 64, 67}) {
      if (pytransformer::is_block_dtype(dtype) && k % 32 != 0) continue;
      const int64_t n = 3 * panel + 5;
      const Weights w = random_weights(dtype, n, k);
      const int64_t bytes = table.packed_weight_bytes(dtype, n, k);
      if (bytes == 0) continue;  // the variant reads the stored layout
      const int64_t row_bytes = pytransformer::row_bytes(dtype, k);
      std::vector<unsigned char> whole(static_cast<size_t>(bytes)), sliced(whole.size(), 0xAB);
      table.pack_weight(w.data(), dtype, n, k, whole.data());
      for (int64_t first = 0; first < n; first += 2 * panel) {
        const int64_t rows = std::min(2 * panel, n - first);
        table.pack_weight(static_cast<const unsigned char*>(w.data()) + first * row_bytes, dtype,
                          rows, k, sliced.data() + table.packed_weight_bytes(dtype, first, k));
      }
      compare_exact(s, sliced.data(), whole.data(), whole.size(),
                    std::string(pytransformer::dtype_name(dtype)) + " " + shape(0, k, n));
      s.values += n * k;
      ++s.cases;
    }
  }
  report(table, s);
}

// Two matrices stacked by rows (ops::LinearWeight::stacked: a decoder step's q | k | v) give
// the same bits in each one's columns as each multiplied alone, whether or not the first ends
// on a panel boundary: one product may replace several.
void test_stacked_products(const cpu::KernelTable& table) {
  Stats s{"stacked products"};
  const int64_t panel = table.panel_columns, m = 3;
  const auto append = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::INT8, DType::Q8_0, DType::Q4_1}) {
    for (int64_t k : {64, 67}) {
      if (pytransformer::is_block_dtype(dtype) && k % 32 != 0) continue;
      for (int64_t first_rows : {int64_t{5}, panel + 3, 2 * panel}) {
        const int64_t second_rows = 7, n = first_rows + second_rows;
        const Weights w0 = random_weights(dtype, first_rows, k), w1 = random_weights(dtype, second_rows, k);
        Weights both = w0;
        append(both.f32, w1.f32);
        append(both.half, w1.half);
        append(both.i8, w1.i8);
        append(both.scales, w1.scales);
        append(both.blocks, w1.blocks);
        const KernelWeights packed0(table, w0, first_rows, k), packed1(table, w1, second_rows, k),
            packed(table, both, n, k);
        const std::vector<float> x = random_floats(m * k);
        std::vector<float> got(static_cast<size_t>(m * n)), got0(static_cast<size_t>(m * first_rows)),
            got1(static_cast<size_t>(m * second_rows));
        const cpu::LinearEpilogue plain;
        if (dtype == DType::INT8) {
          const int64_t stride = ref::quantized_row_stride(k);
          std::vector<int8_t> q(static_cast<size_t>(m * stride));
          std::vector<float> q_scales(static_cast<size_t>(m));
          table.quantize_rows(x.data(), m, k, q.data(), q_scales.data());
          table.linear_int8(q.data(), q_scales.data(), m, k, packed.data(), both.scales.data(), n, 0,
                            n, plain, got.data());
          table.linear_int8(q.data(), q_scales.data(), m, k, packed0.data(), w0.scales.data(),
                            first_rows, 0, first_rows, plain, got0.data());
          table.linear_int8(q.data(), q_scales.data(), m, k, packed1.data(), w1.scales.data(),
                            second_rows, 0, second_rows, plain, got1.data());
        } else {
          table.linear_float(x.data(), m, k, packed.data(), dtype, n, 0, n, plain, got.data());
          table.linear_float(x.data(), m, k, packed0.data(), dtype, first_rows, 0, first_rows, plain,
                             got0.data());
          table.linear_float(x.data(), m, k, packed1.data(), dtype, second_rows, 0, second_rows,
                             plain, got1.data());
        }
        for (int64_t i = 0; i < m; ++i) {
          const std::string where = std::string(pytransformer::dtype_name(dtype)) + " " +
                                    shape(m, k, n) + " first " + std::to_string(first_rows) +
                                    " rows, row " + std::to_string(i);
          compare_exact(s, got.data() + i * n, got0.data() + i * first_rows,
                        sizeof(float) * first_rows, where + " (first)");
          compare_exact(s, got.data() + i * n + first_rows, got1.data() + i * second_rows,
                        sizeof(float) * second_rows, where + " (second)");
        }
        s.values += m * n;
        ++s.cases;
      }
    }
  }
  report(table, s);
}

// Rows selected from a packed matrix (a shortlist's output layer) are byte-identical to those
// rows of the stored matrix packed on their own, in the selected order: repeats, descending
// order and the last, padded panel's rows included.
void test_select_packed_rows(const cpu::KernelTable& table) {
  Stats s{"select_packed_rows"};
  const int64_t panel = table.panel_columns;
  for (DType dtype : {DType::F32, DType::F16, DType::BF16, DType::INT8, DType::Q8_0, DType::Q4_1}) {
    for (int64_t k : {1, 5, 64, 67}) {
      if (pytransformer::is_block_dtype(dtype) && k % 32 != 0) continue;
      const int64_t n = 3 * panel + 5;
      const Weights w = random_weights(dtype, n, k);
      if (table.packed_weight_bytes(dtype, n, k) == 0) continue;  // the stored layout
      std::vector<unsigned char> whole(static_cast<size_t>(table.packed_weight_bytes(dtype, n, k)));
      table.pack_weight(w.data(), dtype, n, k, whole.data());
      const int64_t row_bytes = pytransformer::row_bytes(dtype, k);
      for (const std::vector<int32_t>& rows :
           {std::vector<int32_t>{0}, std::vector<int32_t>{static_cast<int32_t>(n - 1), 3, 3, 0},
            [&] {
              std::vector<int32_t> every_third;
              for (int32_t j = 1; j < n; j += 3) every_third.push_back(j);
              return every_third;
            }()}) {
        const int64_t count = static_cast<int64_t>(rows.size());
        std::vector<unsigned char> stored(static_cast<size_t>(count * row_bytes));
        for (int64_t c = 0; c < count; ++c) {
          std::memcpy(stored.data() + c * row_bytes,
                      static_cast<const unsigned char*>(w.data()) + rows[c] * row_bytes,
                      static_cast<size_t>(row_bytes));
        }
        const size_t bytes = static_cast<size_t>(table.packed_weight_bytes(dtype, count, k));
        std::vector<unsigned char> want(bytes), got(bytes, 0xAB);
        table.pack_weight(stored.data(), dtype, count, k, want.data());
        table.select_packed_rows(whole.data(), dtype, n, k, rows.data(), count, got.data());
        compare_exact(s, got.data(), want.data(), bytes,
                      std::string(pytransformer::dtype_name(dtype)) + " " + shape(0, k, count));
        s.values += count * k;
        ++s.cases;
      }
    }
  }
  report(table, s);
}

void test_int8(const cpu::KernelTable& table) {
  Stats quantize{"quantize_rows"}, product{"linear_int8"};
  for (int64_t m : kRows) {
    for (int64_t k : kDepths) {
      std::vector<float> x = random_floats(m * k, 3.0f);
      if (m > 2) std::fill(x.begin() + k, x.begin() + 2 * k, 0.0f);  // an all-zero row
      if (m > 3) x[3 * k] = 1e-40f;                                   // a subnormal-only row
      const int64_t stride = ref::quantized_row_stride(k);
      std::vector<int8_t> want_q(static_cast<size_t>(m * stride), 7), got_q(want_q.size(), 9);
      std::vector<float> want_s(static_cast<size_t>(m)), got_s(want_s.size());
      ref::quantize_rows(x.data(), m, k, want_q.data(), want_s.data());
      table.quantize_rows(x.data(), m, k, got_q.data(), got_s.data());
      compare_exact(quantize, got_q.data(), want_q.data(), want_q.size(), shape(m, k, 0));
      compare_exact(quantize, got_s.data(), want_s.data(), sizeof(float) * m, shape(m, k, 0));
      quantize.values += m * k;
      ++quantize.cases;
      for (int64_t n : kColumns) {
        if (m * k * n > 400000) continue;
        const Weights w = random_weights(DType::INT8, n, k);
        const KernelWeights packed(table, w, n, k);
        const std::vector<float> bias = random_floats(n);
        cpu::LinearEpilogue e;
        e.bias = (k + n) % 2 ? bias.data() : nullptr;
        std::vector<float> want(static_cast<size_t>(m * n)), got(want.size());
        ref::linear_int8(want_q.data(), want_s.data(), m, k, w.i8.data(), w.scales.data(), e.bias,
                         n, 0, n, want.data());
        table.linear_int8(want_q.data(), want_s.data(), m, k, packed.data(), w.scales.data(), n, 0,
                          n, e, got.data());
        compare_exact(product, got.data(), want.data(), sizeof(float) * got.size(), shape(m, k, n));
        // Column range with a ReLU epilogue: still exact.
        e.activate = true;
        std::vector<float> ranged = want;
        for (int64_t i = 0; i < m; ++i)
          for (int64_t j = n / 2; j < n; ++j) ranged[i * n + j] = std::max(0.0f, want[i * n + j]);
        std::vector<float> got_ranged = want;
        table.linear_int8(want_q.data(), want_s.data(), m, k, packed.data(), w.scales.data(), n,
                          n / 2, n, e, got_ranged.data());
        compare_exact(product, got_ranged.data(), ranged.data(), sizeof(float) * got.size(),
                      shape(m, k, n) + " relu, columns from " + std::to_string(n / 2));
        // Residual in place: exact as well (one f32 addition after the reference's value).
        e.activate = false;
        std::vector<float> residual = random_floats(m * n), expected = residual;
        for (size_t i = 0; i < expected.size(); ++i) expected[i] = want[i] + residual[i];
        e.residual = residual.data();
        table.linear_int8(want_q.data(), want_s.data(), m, k, packed.data(), w.scales.data(), n, 0,
                          n, e, residual.data());
        compare_exact(product, residual.data(), expected.data(), sizeof(float) * expected.size(),
                      shape(m, k, n) + " residual in place");
        product.values += m * n;
        ++product.cases;
      }
    }
  }
  report(table, quantize);
  report(table, product);
}

void test_elementwise(const cpu::KernelTable& table) {
  Stats activation{"activation"}, add{"add"};
  for (int64_t count : {1, 3, 7, 8, 15, 16, 17, 33, 100, 1000}) {
    for (Activation kind : {Activation::RELU, Activation::SWISH, Activation::GELU, Activation::GELU_TANH}) {
      std::vector<float> x = random_floats(count, 4.0f);
      if (count > 5) x[0] = -100.0f, x[1] = 100.0f, x[2] = 0.0f, x[3] = -0.0f, x[4] = 1e-30f;
      std::vector<float> want = x, got = x;
      ref::activation(kind, want.data(), count);
      table.activation(kind, got.data(), count);
      compare(activation, got.data(), want.data(), nullptr, count, 4e-7, 1e-30,
              "kind " + std::to_string(static_cast<int>(kind)) + " count " + std::to_string(count));
      ++activation.cases;
    }
    const std::vector<float> x = random_floats(count);
    std::vector<float> want = random_floats(count), got = want;
    for (int64_t i = 0; i < count; ++i) want[i] += x[i];
    table.add(x.data(), got.data(), count);
    compare_exact(add, got.data(), want.data(), sizeof(float) * count, "count " + std::to_string(count));
    add.values += count;
    ++add.cases;
  }
  report(table, activation);
  report(table, add);
}

// Rows as decoding sees them: wide logits, masked (-infinity) tokens, a fully masked row, and
// a vocabulary the size of OPUS-MT's (58101, not a multiple of any vector width).
void test_log_softmax(const cpu::KernelTable& table) {
  Stats s{"log_softmax"};
  const float negative_infinity = -std::numeric_limits<float>::infinity();
  for (int64_t rows : {1, 3}) {
    for (int64_t cols : {1, 2, 7, 8, 9, 16, 17, 100, 1031, 58101}) {
      std::vector<float> x = random_floats(rows * cols, 8.0f);
      for (int64_t i = 0; i < rows * cols; i += 5) x[i] = negative_infinity;
      if (cols > 3) x[1] = 60.0f, x[2] = -200.0f;
      if (rows > 1) std::fill(x.begin() + cols, x.begin() + 2 * cols, negative_infinity);
      std::vector<float> want = x, got = x;
      ref::log_softmax(want.data(), rows, cols);
      table.log_softmax(got.data(), rows, cols);
      for (int64_t i = 0; i < rows * cols; ++i) {
        if (std::isinf(want[i]) || std::isinf(got[i])) {
          if (got[i] != want[i]) fail(s, "element " + std::to_string(i) + " should be -infinity");
          got[i] = want[i] = 0.0f;  // compared above; compare() below needs finite values
        }
      }
      compare(s, got.data(), want.data(), nullptr, rows * cols, 3e-7, 1e-6,
              "rows " + std::to_string(rows) + " cols " + std::to_string(cols));
      ++s.cases;
    }
  }
  report(table, s);
}

// argmax equals the reference's index exactly: ties (the lowest index), -infinity rows, a
// maximum in the tail past the last whole vector, NaNs anywhere (never chosen unless first).
void test_argmax(const cpu::KernelTable& table) {
  Stats s{"argmax"};
  const float negative_infinity = -std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t count : {1, 2, 7, 8, 9, 16, 17, 33, 100, 1031, 58101}) {
    for (int variant = 0; variant < 8; ++variant) {
      std::vector<float> x = random_floats(count, 8.0f);
      if (variant == 1) std::fill(x.begin(), x.end(), negative_infinity);
      if (variant == 2) std::fill(x.begin(), x.end(), 0.5f);            // all tied
      if (variant == 3) x[count - 1] = 100.0f;                          // in the tail
      if (variant == 4 && count > 3) x[count / 2] = x[count / 3] = 50.0f;  // a tie: the first
      if (variant == 5) x[count / 2] = nan, x[count - 1] = 70.0f;
      if (variant == 6) x[0] = nan;
      if (variant == 7 && count > 4) {                 // NaN beside the maximum in one vector
        x[count - 3] = 90.0f;
        x[count - 2] = nan;
        x[count / 4] = nan;
      }
      const int64_t want = ref::argmax(x.data(), count), got = table.argmax(x.data(), count);
      if (got != want) {
        fail(s, "count " + std::to_string(count) + " variant " + std::to_string(variant) +
                    ": index " + std::to_string(got) + ", want " + std::to_string(want));
      }
      s.values += count;
      ++s.cases;
    }
  }
  report(table, s);
}

void test_layer_norm(const cpu::KernelTable& table) {
  Stats s{"layer_norm"};
  for (int64_t rows : {1, 3, 8}) {
    for (int64_t dim : {1, 5, 16, 17, 100, 512, 1031}) {
      const std::vector<float> x = random_floats(rows * dim, 2.0f), residual = random_floats(rows * dim);
      const std::vector<float> gamma = random_floats(dim), beta = random_floats(dim);
      for (const float* r : {static_cast<const float*>(nullptr), residual.data()}) {
        std::vector<float> want(x.size()), got(x.size());
        ref::layer_norm(x.data(), r, gamma.data(), beta.data(), rows, dim, 1e-5, want.data());
        table.layer_norm(x.data(), r, gamma.data(), beta.data(), rows, dim, 1e-5, got.data());
        compare(s, got.data(), want.data(), nullptr, rows * dim, 1e-5, 1e-5,
                "rows " + std::to_string(rows) + " dim " + std::to_string(dim));
        ++s.cases;
        // y aliasing x, then (with a residual) y aliasing the residual.
        std::vector<float> in_place = x;
        table.layer_norm(in_place.data(), r, gamma.data(), beta.data(), rows, dim, 1e-5,
                         in_place.data());
        compare(s, in_place.data(), want.data(), nullptr, rows * dim, 1e-5, 1e-5, "y == x");
        if (r) {
          in_place = residual;
          table.layer_norm(x.data(), in_place.data(), gamma.data(), beta.data(), rows, dim, 1e-5,
                           in_place.data());
          compare(s, in_place.data(), want.data(), nullptr, rows * dim, 1e-5, 1e-5,
                  "y == residual");
        }
      }
    }
  }
  report(table, s);
}

void test_gated_activation(const cpu::KernelTable& table) {
  Stats s{"gated_activation"};
  for (int64_t rows : {1, 3}) {
    for (int64_t width : {1, 7, 16, 17, 100, 1536}) {
      for (Activation kind : {Activation::SWISH, Activation::GELU}) {
        std::vector<float> x = random_floats(rows * 2 * width, 4.0f);
        if (width > 3) x[0] = -100.0f, x[1] = 100.0f, x[2] = 0.0f;
        std::vector<float> want(rows * width), got(rows * width);
        ref::gated_activation(kind, x.data(), rows, width, want.data());
        table.gated_activation(kind, x.data(), rows, width, got.data());
        const std::string where = "kind " + std::to_string(static_cast<int>(kind)) + " rows " +
                                  std::to_string(rows) + " width " + std::to_string(width);
        compare(s, got.data(), want.data(), nullptr, rows * width, 4e-7, 1e-30, where);
        std::vector<float> in_place = x;  // y aliasing x
        table.gated_activation(kind, in_place.data(), rows, width, in_place.data());
        compare(s, in_place.data(), want.data(), nullptr, rows * width, 4e-7, 1e-30,
                where + " y == x");
        ++s.cases;
      }
    }
  }
  report(table, s);
}

// The SSRU step: cells and outputs (overwritten or accumulated) from gates, the previous cells
// read through parents (repeated and reordered), and the first step's zero state.
void test_ssru(const cpu::KernelTable& table) {
  Stats s{"ssru_step"};
  std::uniform_int_distribution<int> pick(0, 5);
  for (int64_t n : {1, 3, 7}) {
    for (int64_t d : {1, 5, 16, 17, 100, 256}) {
      for (bool first : {true, false}) {
        for (bool accumulate : {false, true}) {
          std::vector<float> gates = random_floats(n * 2 * d, 3.0f);
          if (d > 3) gates[d] = -100.0f, gates[d + 1] = 100.0f, gates[d + 2] = 0.0f;
          const std::vector<float> previous = random_floats(6 * d);
          std::vector<int32_t> parent(static_cast<size_t>(n));
          for (int32_t& p : parent) p = pick(rng);
          const float* from = first ? nullptr : previous.data();
          std::vector<float> want_cells(n * d), got_cells(n * d);
          std::vector<float> want = random_floats(n * d), got = want;
          ref::ssru_step(gates.data(), from, parent.data(), n, d, accumulate, want_cells.data(),
                         want.data());
          table.ssru_step(gates.data(), from, parent.data(), n, d, accumulate, got_cells.data(),
                          got.data());
          const std::string where = "n " + std::to_string(n) + " d " + std::to_string(d) +
                                    (first ? " first" : "") + (accumulate ? " accumulate" : "");
          compare(s, got_cells.data(), want_cells.data(), nullptr, n * d, 1e-6, 1e-6, where);
          compare(s, got.data(), want.data(), nullptr, n * d, 1e-6, 1e-6, where + " out");
          ++s.cases;
        }
      }
    }
  }
  report(table, s);
}

void test_rms_norm(const cpu::KernelTable& table) {
  Stats s{"rms_norm"};
  for (int64_t rows : {1, 3, 8}) {
    for (int64_t dim : {1, 5, 16, 17, 100, 576, 1031}) {
      const std::vector<float> x = random_floats(rows * dim, 2.0f), gamma = random_floats(dim);
      std::vector<float> want(x.size()), got(x.size());
      ref::rms_norm(x.data(), gamma.data(), rows, dim, 1e-5, want.data());
      table.rms_norm(x.data(), gamma.data(), rows, dim, 1e-5, got.data());
      const std::string where = "rows " + std::to_string(rows) + " dim " + std::to_string(dim);
      compare(s, got.data(), want.data(), nullptr, rows * dim, 1e-5, 1e-6, where);
      std::vector<float> in_place = x;
      table.rms_norm(in_place.data(), gamma.data(), rows, dim, 1e-5, in_place.data());
      compare(s, in_place.data(), want.data(), nullptr, rows * dim, 1e-5, 1e-6, where + " y == x");
      ++s.cases;
    }
  }
  report(table, s);
}

// Every variant uses the reference apply_rotary (no vector version yet), so this checks the
// reference's own contract: the tables against double precision, position 0 as the identity,
// each rotated pair keeping its length, dimensions past rotary_dim untouched, and the two
// layouts giving the same result once a head's dimensions are permuted from one to the other
// (what converting GGUF's interleaved Q/K to transformers' half-split order relies on).
void test_rotary(const cpu::KernelTable& table) {
  Stats s{"apply_rotary"};
  const int64_t positions = 3000, rows = 4, heads = 3;
  for (int64_t head_dim : {2, 8, 64}) {
    for (int64_t rotary_dim : {head_dim, head_dim / 2}) {
      if (rotary_dim < 2 || rotary_dim % 2) continue;
      const int64_t pairs = rotary_dim / 2;
      std::vector<float> cos(positions * pairs), sin(positions * pairs);
      ref::rotary_tables(10000.0, rotary_dim, positions, cos.data(), sin.data());
      for (int64_t p : {0, 1, 7, 2999}) {
        for (int64_t i = 0; i < pairs; ++i) {
          const double angle = p * std::pow(10000.0, -2.0 * i / rotary_dim);
          // f32 angles: |error| grows with the position (~2999 * 2^-24 radians at most).
          const double bound = 2e-7 + p * 1.2e-7;
          if (std::fabs(cos[p * pairs + i] - std::cos(angle)) > bound ||
              std::fabs(sin[p * pairs + i] - std::sin(angle)) > bound) {
            fail(s, "table at position " + std::to_string(p) + " pair " + std::to_string(i));
          }
        }
      }
      const int32_t at[rows] = {0, 1, 17, 2999};
      const std::vector<float> x = random_floats(rows * heads * head_dim);
      std::vector<float> interleaved = x, half_split(x.size());
      // half_split holds x's heads with dimensions reordered: pair i's members (2i, 2i + 1)
      // go to (i, i + pairs); dimensions past rotary_dim stay where they are.
      auto to_half_split = [&](const std::vector<float>& from, std::vector<float>& to) {
        to = from;
        for (int64_t head = 0; head < rows * heads; ++head) {
          const float* f = from.data() + head * head_dim;
          float* t = to.data() + head * head_dim;
          for (int64_t i = 0; i < pairs; ++i) t[i] = f[2 * i], t[i + pairs] = f[2 * i + 1];
        }
      };
      to_half_split(x, half_split);
      table.apply_rotary(interleaved.data(), rows, heads, head_dim, rotary_dim, at, cos.data(),
                         sin.data(), ref::RotaryLayout::INTERLEAVED);
      table.apply_rotary(half_split.data(), rows, heads, head_dim, rotary_dim, at, cos.data(),
                         sin.data(), ref::RotaryLayout::HALF_SPLIT);
      std::vector<float> interleaved_reordered;
      to_half_split(interleaved, interleaved_reordered);
      const std::string where = "head_dim " + std::to_string(head_dim) + " rotary_dim " +
                                std::to_string(rotary_dim);
      compare_exact(s, interleaved_reordered.data(), half_split.data(),
                    sizeof(float) * half_split.size(), where + ": layouts disagree");
      for (int64_t head = 0; head < heads; ++head) {  // row 0 is at position 0
        compare_exact(s, interleaved.data() + head * head_dim, x.data() + head * head_dim,
                      sizeof(float) * head_dim, where + ": position 0 is not the identity");
      }
      for (int64_t head = 0; head < rows * heads; ++head) {
        const float* before = x.data() + head * head_dim;
        const float* after = interleaved.data() + head * head_dim;
        for (int64_t i = 0; i < pairs; ++i) {
          const double was = std::hypot(before[2 * i], before[2 * i + 1]);
          const double is = std::hypot(after[2 * i], after[2 * i + 1]);
          if (std::fabs(was - is) > 1e-6 * (1.0 + was)) fail(s, where + ": a pair's length changed");
        }
        compare_exact(s, after + rotary_dim, before + rotary_dim,
                      sizeof(float) * (head_dim - rotary_dim), where + ": dims past rotary_dim");
      }
      s.values += static_cast<int64_t>(x.size());
      ++s.cases;
    }
  }
  report(table, s);
}

// A step-chunked attention cache: the key and value chunk of each step.
struct StepCache {
  std::vector<std::vector<float>> keys, values;
  std::vector<const float*> key_bases() const { return bases(keys); }
  std::vector<const float*> value_bases() const { return bases(values); }

 private:
  static std::vector<const float*> bases(const std::vector<std::vector<float>>& chunks) {
    std::vector<const float*> out;
    for (const std::vector<float>& chunk : chunks) out.push_back(chunk.data());
    return out;
  }
};

// `steps` chunks of n random rows of `width` floats.
StepCache random_cache(int64_t steps, int64_t n, int64_t width) {
  StepCache cache;
  for (int64_t t = 0; t < steps; ++t) {
    cache.keys.push_back(random_floats(n * width));
    cache.values.push_back(random_floats(n * width));
  }
  return cache;
}

// Every variant against the reference, for multi-head (kv_heads == heads) and grouped-query
// attention (kv_heads = heads / 2 and 1), with key padding, with and without the causal mask.
void test_attention(const cpu::KernelTable& table) {
  Stats full{"attention"}, cached{"cached_attention"};
  const int64_t heads = 4;
  for (int64_t head_dim : {1, 7, 16, 64, 80}) {
    for (int64_t kv_len : {1, 2, 5, 17, 40}) {
      for (int64_t kv_heads : {heads, heads / 2, int64_t{1}}) {
        const int64_t width = heads * head_dim, kv_width = kv_heads * head_dim;
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        for (bool causal : {false, true}) {
          const int64_t batch = 3, q_len = causal ? kv_len : 4, kv_batch = 2;
          const std::vector<float> q = random_floats(batch * q_len * width);
          const std::vector<float> k = random_floats(kv_batch * kv_len * kv_width);
          const std::vector<float> v = random_floats(kv_batch * kv_len * kv_width);
          const int32_t index[batch] = {1, 0, 1};
          const int64_t lengths[kv_batch] = {kv_len, (kv_len + 1) / 2};
          std::vector<float> want(q.size()), got(q.size());
          std::vector<float> want_p(batch * heads * q_len * kv_len), got_p(want_p.size());
          ref::attention(q.data(), k.data(), v.data(), batch, q_len, kv_len, heads, kv_heads,
                         head_dim, index, lengths, causal, scale, want.data(), want_p.data());
          table.attention(q.data(), k.data(), v.data(), batch, q_len, kv_len, heads, kv_heads,
                          head_dim, index, lengths, causal, scale, got.data(), got_p.data());
          const std::string where = "kv_heads " + std::to_string(kv_heads) + " head_dim " +
                                    std::to_string(head_dim) + " kv_len " +
                                    std::to_string(kv_len) + (causal ? " causal" : "");
          compare(full, got.data(), want.data(), nullptr, want.size(), 1e-5, 1e-5, where);
          compare(full, got_p.data(), want_p.data(), nullptr, want_p.size(), 1e-5, 1e-6,
                  where + ": probabilities");
          for (int64_t b = 0; b < batch; ++b) {  // masked and padding keys get exactly 0
            for (int64_t h = 0; h < heads; ++h) {
              for (int64_t i = 0; i < q_len; ++i) {
                const int64_t length = lengths[index[b]];
                const int64_t seen = causal ? std::min(length, i + 1) : length;
                const float* row = got_p.data() + ((b * heads + h) * q_len + i) * kv_len;
                for (int64_t j = seen; j < kv_len; ++j) {
                  if (row[j] != 0.0f) fail(full, where + ": a masked key's probability is not 0");
                }
              }
            }
          }
          ++full.cases;
        }
        // Cached: steps chunks of n rows of kv_width floats, ancestry picking arbitrary rows.
        const int64_t n = 3, steps = kv_len;
        const StepCache cache = random_cache(steps, n, kv_width);
        const std::vector<const float*> key_bases = cache.key_bases();
        const std::vector<const float*> value_bases = cache.value_bases();
        std::vector<int32_t> ancestry(n * (steps + 1));
        for (size_t i = 0; i < ancestry.size(); ++i) ancestry[i] = static_cast<int32_t>(rng() % n);
        const std::vector<float> query = random_floats(n * width);
        std::vector<float> want_c(query.size()), got_c(query.size());
        ref::cached_attention(query.data(), n, heads, kv_heads, head_dim, steps, key_bases.data(),
                              value_bases.data(), ancestry.data(), steps + 1, scale,
                              want_c.data());
        table.cached_attention(query.data(), n, heads, kv_heads, head_dim, steps,
                               key_bases.data(), value_bases.data(), ancestry.data(), steps + 1,
                               scale, got_c.data());
        compare(cached, got_c.data(), want_c.data(), nullptr, want_c.size(), 1e-5, 1e-5,
                "cached kv_heads " + std::to_string(kv_heads));
        ++cached.cases;
      }
    }
  }
  report(table, full);
  report(table, cached);
}

// rows [count, kv_heads * head_dim] with each head repeated `group` times in place:
// [count, kv_heads * group * head_dim] (what grouped-query attention is defined to equal).
std::vector<float> repeat_heads(const float* rows, int64_t count, int64_t kv_heads,
                                int64_t head_dim, int64_t group) {
  std::vector<float> out;
  for (int64_t r = 0; r < count; ++r) {
    for (int64_t g = 0; g < kv_heads; ++g) {
      const float* head = rows + (r * kv_heads + g) * head_dim;
      for (int64_t t = 0; t < group; ++t) out.insert(out.end(), head, head + head_dim);
    }
  }
  return out;
}

// The contract kernels/ref/attention.h states, on every variant (the scalar one is the
// reference itself), bit for bit: with the causal mask, query i's output and probabilities
// are those of the unmasked attention over the first min(length, i + 1) keys; grouped-query
// attention is multi-head attention over K and V whose heads are repeated heads / kv_heads
// times, and so is cached grouped-query attention.
void test_attention_contract(const cpu::KernelTable& table) {
  Stats s{"attention contract"};
  const int64_t heads = 6;
  for (int64_t head_dim : {1, 16, 33}) {
    for (int64_t kv_len : {1, 3, 18}) {
      const int64_t batch = 3, kv_batch = 2, q_len = kv_len;
      const int32_t index[batch] = {1, 0, 1};
      const int64_t lengths[kv_batch] = {kv_len, (kv_len + 1) / 2};
      const float scale = 0.37f;
      for (int64_t kv_heads : {heads, int64_t{3}, int64_t{2}, int64_t{1}}) {
        const int64_t width = heads * head_dim, kv_width = kv_heads * head_dim;
        const int64_t group = heads / kv_heads;
        const std::string where = "kv_heads " + std::to_string(kv_heads) + " head_dim " +
                                  std::to_string(head_dim) + " kv_len " + std::to_string(kv_len);
        const std::vector<float> q = random_floats(batch * q_len * width);
        const std::vector<float> k = random_floats(kv_batch * kv_len * kv_width);
        const std::vector<float> v = random_floats(kv_batch * kv_len * kv_width);
        const std::vector<float> k_repeated = repeat_heads(k.data(), kv_batch * kv_len, kv_heads,
                                                           head_dim, group);
        const std::vector<float> v_repeated = repeat_heads(v.data(), kv_batch * kv_len, kv_heads,
                                                           head_dim, group);
        const size_t p_size = static_cast<size_t>(batch * heads * q_len * kv_len);
        for (bool causal : {false, true}) {
          std::vector<float> out(q.size()), p(p_size), mha(q.size()), mha_p(p_size);
          table.attention(q.data(), k.data(), v.data(), batch, q_len, kv_len, heads, kv_heads,
                          head_dim, index, lengths, causal, scale, out.data(), p.data());
          table.attention(q.data(), k_repeated.data(), v_repeated.data(), batch, q_len, kv_len,
                          heads, heads, head_dim, index, lengths, causal, scale, mha.data(),
                          mha_p.data());
          compare_exact(s, out.data(), mha.data(), sizeof(float) * out.size(),
                        where + ": grouped-query output is not MHA over repeated heads");
          compare_exact(s, p.data(), mha_p.data(), sizeof(float) * p.size(),
                        where + ": grouped-query probabilities are not MHA's");
          if (!causal) continue;
          for (int64_t i = 0; i < q_len; ++i) {
            const int64_t prefix[kv_batch] = {std::min(lengths[0], i + 1),
                                              std::min(lengths[1], i + 1)};
            std::vector<float> open(q.size()), open_p(p_size);
            table.attention(q.data(), k.data(), v.data(), batch, q_len, kv_len, heads, kv_heads,
                            head_dim, index, prefix, false, scale, open.data(), open_p.data());
            for (int64_t b = 0; b < batch; ++b) {
              const int64_t row = (b * q_len + i) * width;
              compare_exact(s, out.data() + row, open.data() + row, sizeof(float) * width,
                            where + ": causal query " + std::to_string(i) +
                                " is not attention over its prefix");
              for (int64_t h = 0; h < heads; ++h) {
                const int64_t p_row = ((b * heads + h) * q_len + i) * kv_len;
                compare_exact(s, p.data() + p_row, open_p.data() + p_row, sizeof(float) * kv_len,
                              where + ": causal probabilities of query " + std::to_string(i));
              }
            }
          }
        }
        const int64_t n = 4, steps = kv_len;
        const StepCache cache = random_cache(steps, n, kv_width);
        StepCache repeated;
        for (int64_t t = 0; t < steps; ++t) {
          repeated.keys.push_back(repeat_heads(cache.keys[t].data(), n, kv_heads, head_dim, group));
          repeated.values.push_back(
              repeat_heads(cache.values[t].data(), n, kv_heads, head_dim, group));
        }
        std::vector<int32_t> ancestry(n * steps);
        for (int32_t& row : ancestry) row = static_cast<int32_t>(rng() % n);
        const std::vector<float> query = random_floats(n * width);
        std::vector<float> out(query.size()), mha(query.size());
        table.cached_attention(query.data(), n, heads, kv_heads, head_dim, steps,
                               cache.key_bases().data(), cache.value_bases().data(),
                               ancestry.data(), steps, scale, out.data());
        table.cached_attention(query.data(), n, heads, heads, head_dim, steps,
                               repeated.key_bases().data(), repeated.value_bases().data(),
                               ancestry.data(), steps, scale, mha.data());
        compare_exact(s, out.data(), mha.data(), sizeof(float) * out.size(),
                      where + ": cached grouped-query output is not MHA over repeated heads");
        s.values += static_cast<int64_t>(out.size());
        ++s.cases;
      }
    }
  }
  report(table, s);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<cpu::Isa> isas;
  for (int i = 1; i < argc; ++i) {
    cpu::Isa isa;
    if (!cpu::parse_isa(argv[i], &isa)) {
      std::printf("unknown variant %s\n", argv[i]);
      return 2;
    }
    if (!cpu::isa_supported(isa)) {
      std::printf("%s: not supported by this CPU, skipped\n", argv[i]);
      continue;
    }
    isas.push_back(isa);
  }
  if (argc == 1) {
    for (cpu::Isa isa : cpu::supported_isas()) isas.push_back(isa);
  }
  std::printf("supported:");
  for (cpu::Isa isa : cpu::supported_isas()) std::printf(" %s", cpu::isa_name(isa));
  std::printf("\n");
  for (cpu::Isa isa : isas) {
    const cpu::KernelTable& table = cpu::kernels_for(isa);
    test_linear_float(table, DType::F32);
    test_linear_float(table, DType::F16);
    test_linear_float(table, DType::BF16);
    test_linear_float(table, DType::Q8_0);
    test_linear_float(table, DType::Q4_1);
    test_packing_in_slices(table);
    test_select_packed_rows(table);
    test_stacked_products(table);
    test_int8(table);
    test_elementwise(table);
    test_log_softmax(table);
    test_argmax(table);
    test_layer_norm(table);
    test_rms_norm(table);
    test_gated_activation(table);
    test_ssru(table);
    test_rotary(table);
    test_attention(table);
    test_attention_contract(table);
  }
  std::printf("%s: %d failing checks\n", failures ? "FAILED" : "PASSED", failures);
  return failures ? 1 : 0;
}

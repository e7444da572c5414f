// The CPU kernels, one table per instruction-set variant (kernels/cpu/cpu_isa.h).
//
// Every entry computes what its scalar reference in kernels/ref/ states, on raw pointers:
// f32/f16/bf16 kernels differ from the reference only in the order of float additions (vector
// lanes; each output element still sums in one fixed order, whatever m, the thread split or
// the column range, so results are deterministic); int8 kernels are bit-identical to
// kernels/ref/linear_int8.h. The SCALAR table is the references themselves.
// All entries are thread-safe (they only write their outputs).
#pragma once

#include <cstdint>

#include "format/dtype.h"
#include "format/model_config.h"
#include "kernels/cpu/cpu_isa.h"
#include "kernels/ref/rotary.h"

namespace pytransformer::kernels::cpu {

// What the output pass of a linear kernel applies to v = x . W[j] (+ bias[j]) before storing:
//   y[i, j] = activation(v) when `activate`, or y[i, j] = v + residual[i * n + j] when
//   `residual` is set (never both: no Transformer sub-layer needs both). residual may be y
//   itself: the pre-norm residual connection in place (each element is read before written).
struct LinearEpilogue {
  const float* bias = nullptr;  // [n]
  bool activate = false;
  format::Activation activation = format::Activation::RELU;
  const float* residual = nullptr;  // [m, n] row-major like y
};

struct KernelTable {
  Isa isa;

  // Linear kernels read weights repacked once into this variant's layout (linear_impl.h):
  // pack_weight writes packed_weight_bytes(dtype, n, k) bytes (64-byte aligned memory) from
  // an [n, k] weight as stored (kernels/ref/linear.h, linear_int8.h). packed_weight_bytes 0
  // (the scalar variant) means the kernels read the stored layout and pack_weight is null.
  // Column ranges starting at multiples of panel_columns split the work without overlap, and
  // the rows [j, j + count) of W for j a multiple of panel_columns pack on their own into
  // packed + packed_weight_bytes(dtype, j, k) (a matrix can be packed a slice at a time).
  int64_t panel_columns;
  int64_t (*packed_weight_bytes)(DType dtype, int64_t n, int64_t k);
  void (*pack_weight)(const void* weight, DType dtype, int64_t n, int64_t k, void* packed);
  // The packed matrix of rows rows[0..count) (each < n) of the packed [n, k] matrix `packed`,
  // into `out` (packed_weight_bytes(dtype, count, k) bytes): byte for byte what pack_weight
  // writes for those rows of the stored matrix, in that order (a vocabulary shortlist's output
  // layer). Null where packed_weight_bytes is 0.
  void (*select_packed_rows)(const void* packed, DType dtype, int64_t n, int64_t k,
                             const int32_t* rows, int64_t count, void* out);

  // y[i, j] = epilogue(sum_c x[i, c] W[j, c]) for i < m, j in [column_begin, column_end).
  // x: [m, k] f32; weight: packed W [n, k] of dtype F32, F16 or BF16; y: [m, n].
  void (*linear_float)(const float* x, int64_t m, int64_t k, const void* weight, DType dtype,
                       int64_t n, int64_t column_begin, int64_t column_end,
                       const LinearEpilogue& epilogue, float* y);

  // kernels/ref/linear_int8.h: quantise rows, then the int8 product (+ epilogue as above);
  // weight: packed int8 W [n, k], w_scales its per-row scales [n].
  void (*quantize_rows)(const float* x, int64_t m, int64_t k, int8_t* q, float* scales);
  // ref::quantize_rows_fixed in every table (O(m k), against the product's O(m k n)).
  void (*quantize_rows_fixed)(const float* x, int64_t m, int64_t k, float step, int8_t* q,
                              float* scales);
  void (*linear_int8)(const int8_t* q, const float* scales, int64_t m, int64_t k,
                      const void* weight, const float* w_scales, int64_t n,
                      int64_t column_begin, int64_t column_end, const LinearEpilogue& epilogue,
                      float* y);

  // kernels/ref/activation.h, ssru.h, add.h, softmax.h (log_softmax, argmax), layer_norm.h,
  // rms_norm.h, rotary.h, attention.h.
  void (*activation)(format::Activation kind, float* x, int64_t count);
  void (*gated_activation)(format::Activation kind, const float* x, int64_t rows, int64_t width,
                           float* y);
  void (*ssru_step)(const float* gates, const float* previous, const int32_t* parent, int64_t n,
                    int64_t d, bool accumulate, float* cells, float* out);
  void (*add)(const float* x, float* y, int64_t count);
  void (*log_softmax)(float* x, int64_t rows, int64_t cols);
  int64_t (*argmax)(const float* x, int64_t count);
  void (*layer_norm)(const float* x, const float* residual, const float* gamma, const float* beta,
                     int64_t rows, int64_t dim, double epsilon, float* y);
  void (*rms_norm)(const float* x, const float* gamma, int64_t rows, int64_t dim, double epsilon,
                   float* y);
  void (*apply_rotary)(float* x, int64_t rows, int64_t heads, int64_t head_dim,
                       int64_t rotary_dim, const int32_t* positions, const float* cos,
                       const float* sin, ref::RotaryLayout layout);
  void (*attention)(const float* q, const float* k, const float* v, int64_t batch, int64_t q_len,
                    int64_t kv_len, int64_t heads, int64_t kv_heads, int64_t head_dim,
                    const int32_t* kv_index, const int64_t* kv_lengths, bool causal,
                    float scale, float* out, float* probabilities);
  void (*cached_attention)(const float* q, int64_t n, int64_t heads, int64_t kv_heads,
                           int64_t head_dim, int64_t steps, const float* const* step_keys,
                           const float* const* step_values, const int32_t* ancestry,
                           int64_t ancestry_stride, float scale, float* out);
};

// The table of selected_isa() (chosen once; throws like selected_isa()).
const KernelTable& kernels();
// The table of one variant, for tests and benchmarks; `isa` must be supported.
const KernelTable& kernels_for(Isa isa);

}  // namespace pytransformer::kernels::cpu

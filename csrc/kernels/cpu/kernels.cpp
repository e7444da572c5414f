#include "kernels/cpu/kernels.h"

#include <cstring>

#include "kernels/cpu/tables.h"
#include "kernels/ref/activation.h"
#include "kernels/ref/add.h"
#include "kernels/ref/attention.h"
#include "kernels/ref/layer_norm.h"
#include "kernels/ref/linear.h"
#include "kernels/ref/linear_int8.h"
#include "kernels/ref/rms_norm.h"
#include "kernels/ref/rotary.h"
#include "kernels/ref/ssru.h"
#include "kernels/ref/softmax.h"
#include "pytransformer/error.h"

namespace pytransformer::kernels::cpu {
namespace {

// The references write x . W + b over y; a residual (which may be y itself) is added from a
// copy taken first, through a bounded buffer so that nothing is allocated.
template <class Product>
void with_epilogue(const LinearEpilogue& e, int64_t m, int64_t n, int64_t column_begin,
                   int64_t column_end, float* y, const Product& product) {
  if (!e.residual) {
    product(0, m, column_begin, column_end, y);
    if (e.activate) {
      for (int64_t i = 0; i < m; ++i) {
        ref::activation(e.activation, y + i * n + column_begin, column_end - column_begin);
      }
    }
    return;
  }
  constexpr int64_t kChunk = 256;
  float saved[kChunk];
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = column_begin; j < column_end; j += kChunk) {
      const int64_t end = j + kChunk < column_end ? j + kChunk : column_end;
      std::memcpy(saved, e.residual + i * n + j, sizeof(float) * (end - j));
      product(i, i + 1, j, end, y);
      ref::add(saved, y + i * n + j, end - j);
    }
  }
}

void scalar_linear_float(const float* x, int64_t m, int64_t k, const void* weight, DType dtype,
                         int64_t n, int64_t column_begin, int64_t column_end,
                         const LinearEpilogue& epilogue, float* y) {
  with_epilogue(epilogue, m, n, column_begin, column_end, y,
                [&](int64_t row_begin, int64_t row_end, int64_t begin, int64_t end, float* out) {
                  ref::linear(x + row_begin * k, row_end - row_begin, k, weight, dtype, nullptr,
                              epilogue.bias, n, begin, end, out + row_begin * n);
                });
}

void scalar_linear_int8(const int8_t* q, const float* scales, int64_t m, int64_t k,
                        const void* weight, const float* w_scales, int64_t n,
                        int64_t column_begin, int64_t column_end, const LinearEpilogue& epilogue,
                        float* y) {
  const int64_t stride = ref::quantized_row_stride(k);
  with_epilogue(epilogue, m, n, column_begin, column_end, y,
                [&](int64_t row_begin, int64_t row_end, int64_t begin, int64_t end, float* out) {
                  ref::linear_int8(q + row_begin * stride, scales + row_begin, row_end - row_begin,
                                   k, static_cast<const int8_t*>(weight), w_scales,
                                   epilogue.bias, n, begin, end,
                                   out + row_begin * n);
                });
}

}  // namespace

const KernelTable& scalar_table() {
  static const KernelTable table = [] {
    KernelTable t;
    t.isa = Isa::SCALAR;
    t.panel_columns = 16;
    t.packed_weight_bytes = [](DType, int64_t, int64_t) -> int64_t { return 0; };
    t.pack_weight = nullptr;
    t.select_packed_rows = nullptr;
    t.linear_float = &scalar_linear_float;
    t.quantize_rows = &ref::quantize_rows;
    t.quantize_rows_fixed = &ref::quantize_rows_fixed;
    t.linear_int8 = &scalar_linear_int8;
    t.activation = &ref::activation;
    t.gated_activation = &ref::gated_activation;
    t.ssru_step = &ref::ssru_step;
    t.add = &ref::add;
    t.log_softmax = &ref::log_softmax;
    t.argmax = &ref::argmax;
    t.layer_norm = &ref::layer_norm;
    t.rms_norm = &ref::rms_norm;
    t.apply_rotary = &ref::apply_rotary;
    t.attention = &ref::attention;
    t.cached_attention = &ref::cached_attention;
    return t;
  }();
  return table;
}

const KernelTable& kernels_for(Isa isa) {
  if (!isa_supported(isa)) {
    throw InvalidArgument(std::string("kernel variant ") + isa_name(isa) +
                          " is not supported by this CPU or build");
  }
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::AVX2: return avx2_table();
    case Isa::AVX2_VNNI: return avx2_vnni_table();
    case Isa::AVX512: return avx512_table();
    case Isa::AVX512_VNNI: return avx512_vnni_table();
#endif
#if defined(__aarch64__)
    case Isa::NEON: return neon_table();
#endif
    default: return scalar_table();
  }
}

const KernelTable& kernels() {
  static const KernelTable* table = &kernels_for(selected_isa());
  return *table;
}

}  // namespace pytransformer::kernels::cpu

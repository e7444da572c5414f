// The AVX-512 variants: AVX512 (int8 through vpmaddubsw) and AVX512_VNNI (vpdpbusd).
// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which -Wall reports as
// uninitialised once inlined (GCC bug 105593): silenced for this translation unit only.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "kernels/cpu/simd_avx512.h"
#include "kernels/cpu/table_impl.h"
#include "kernels/cpu/tables.h"

namespace pytransformer::kernels::cpu {

const KernelTable& avx512_table() {
  static const KernelTable table = make_table<Avx512>(Isa::AVX512);
  return table;
}

const KernelTable& avx512_vnni_table() {
  static const KernelTable table = make_table<Avx512Vnni>(Isa::AVX512_VNNI);
  return table;
}

}  // namespace pytransformer::kernels::cpu

// The AVX2 variant (AVX2 + FMA + F16C; int8 through vpmaddubsw).
#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/table_impl.h"
#include "kernels/cpu/tables.h"

namespace pytransformer::kernels::cpu {

const KernelTable& avx2_table() {
  static const KernelTable table = make_table<Avx2>(Isa::AVX2);
  return table;
}

}  // namespace pytransformer::kernels::cpu

// The AVX2_VNNI variant: AVX2 with int8 products through AVX-VNNI's vpdpbusd.
#include "kernels/cpu/simd_avx2.h"
#include "kernels/cpu/table_impl.h"
#include "kernels/cpu/tables.h"

namespace pytransformer::kernels::cpu {

const KernelTable& avx2_vnni_table() {
  static const KernelTable table = make_table<Avx2Vnni>(Isa::AVX2_VNNI);
  return table;
}

}  // namespace pytransformer::kernels::cpu

// The NEON variant (aarch64 Advanced SIMD; int8 through vmull_s8 / vpadalq_s16).
#include "kernels/cpu/simd_neon.h"
#include "kernels/cpu/table_impl.h"
#include "kernels/cpu/tables.h"

namespace pytransformer::kernels::cpu {

const KernelTable& neon_table() {
  static const KernelTable table = make_table<Neon>(Isa::NEON);
  return table;
}

}  // namespace pytransformer::kernels::cpu

// The kernel table of each variant, defined in that variant's translation unit
// (kernels_<isa>.cpp). Internal to kernels/cpu: use kernels() / kernels_for() (kernels.h).
// A table may only be requested when isa_supported() says the CPU runs that variant: its
// code, even the table's initialisation, may use the variant's instructions.
#pragma once

#include "kernels/cpu/kernels.h"

namespace pytransformer::kernels::cpu {

const KernelTable& scalar_table();
#if defined(__x86_64__) || defined(_M_X64)
const KernelTable& avx2_table();
const KernelTable& avx2_vnni_table();
const KernelTable& avx512_table();
const KernelTable& avx512_vnni_table();
#endif
#if defined(__aarch64__)
const KernelTable& neon_table();
#endif

}  // namespace pytransformer::kernels::cpu

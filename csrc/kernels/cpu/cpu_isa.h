// CPU feature detection and the run-time choice of the kernel variant (STYLE principle 3).
//
// Each variant (Isa) is a set of kernels compiled in its own translation units with its own
// flags (kernels/cpu/*_avx2.cpp, *_avx2_vnni.cpp, *_avx512.cpp, *_neon.cpp); selected_isa()
// picks one once per process: the value of the environment variable PYTRANSFORMER_ISA when set
// (scalar, avx2, avx2_vnni, avx512, avx512_vnni, neon; "auto" or empty = best), else the best
// variant this CPU runs. Thread-safe.
#pragma once

#include <string>
#include <vector>

namespace pytransformer::kernels::cpu {

// Ordered from the most portable to the fastest of each architecture.
enum class Isa {
  SCALAR,       // kernels/ref: the portable reference
  AVX2,         // AVX2 + FMA + F16C
  AVX2_VNNI,    // AVX2 + AVX-VNNI (int8 dot products on 256-bit vectors)
  AVX512,       // AVX-512 F/BW/VL/DQ (+ F16C, FMA)
  AVX512_VNNI,  // AVX-512 + AVX512-VNNI
  NEON,         // aarch64 Advanced SIMD
};

const char* isa_name(Isa isa);

struct CpuFeatures {
  std::string architecture;  // "x86_64", "aarch64", ...
  std::string vendor;        // cpuid vendor string on x86
  std::string brand;         // processor name when the CPU reports one
  int logical_cpus = 1;      // CPUs this process may run on
  int physical_cores = 1;    // distinct cores among them
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_vnni = false, avx512_bf16 = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;
  bool neon = false, neon_dotprod = false;
};

// Detected once (cpuid and the OS's register-state support on x86; the build target on ARM).
const CpuFeatures& cpu_features();

bool isa_supported(Isa isa);
// Every variant this build and CPU can run, the scalar reference first and the best last.
std::vector<Isa> supported_isas();
Isa best_isa();

// The variant the kernels use. Throws pytransformer::InvalidArgument when PYTRANSFORMER_ISA
// names an unknown variant or one this CPU (or build) cannot run.
Isa selected_isa();

// Parses an ISA name as PYTRANSFORMER_ISA accepts it; false when unknown.
bool parse_isa(const std::string& name, Isa* isa);

}  // namespace pytransformer::kernels::cpu

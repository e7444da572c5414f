#include "kernels/cpu/cpu_isa.h"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>
#include <utility>

#include "pytransformer/error.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#define PYTRANSFORMER_CPU_X86 1
#endif
#if defined(__aarch64__)
#include <sys/auxv.h>
#define PYTRANSFORMER_CPU_ARM64 1
#endif
#if defined(__linux__)
#include <sched.h>
#endif

namespace pytransformer::kernels::cpu {
namespace {

constexpr const char* kNames[] = {"scalar", "avx2", "avx2_vnni", "avx512", "avx512_vnni", "neon"};

#if PYTRANSFORMER_CPU_X86
bool bit(uint32_t value, int index) { return (value >> index) & 1u; }

uint64_t read_xcr0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

void detect_x86(CpuFeatures& f) {
  f.architecture = "x86_64";
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return;
  const uint32_t max_leaf = eax;
  char vendor[13] = {};
  for (int i = 0; i < 4; ++i) {
    vendor[i] = static_cast<char>(ebx >> (8 * i));
    vendor[4 + i] = static_cast<char>(edx >> (8 * i));
    vendor[8 + i] = static_cast<char>(ecx >> (8 * i));
  }
  f.vendor = vendor;
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  const bool osxsave = bit(ecx, 27), avx = bit(ecx, 28);
  const bool fma = bit(ecx, 12), f16c = bit(ecx, 29);
  // The OS must save the vector registers: XMM|YMM for AVX, opmask|ZMM for AVX-512, tiles for AMX.
  const uint64_t xcr0 = osxsave ? read_xcr0() : 0;
  const bool ymm_state = (xcr0 & 0x6) == 0x6;
  const bool zmm_state = ymm_state && (xcr0 & 0xe0) == 0xe0;
  const bool tile_state = (xcr0 & 0x60000) == 0x60000;
  if (max_leaf >= 7) {
    __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx);
    const uint32_t leaf7_ebx = ebx, leaf7_ecx = ecx, leaf7_edx = edx;
    __get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx);
    const uint32_t leaf7_1_eax = eax;
    const bool avx_usable = avx && ymm_state;
    f.avx2 = avx_usable && bit(leaf7_ebx, 5);
    f.fma = avx_usable && fma;
    f.f16c = avx_usable && f16c;
    f.avx_vnni = avx_usable && bit(leaf7_1_eax, 4);
    f.avx512f = zmm_state && bit(leaf7_ebx, 16);
    f.avx512dq = f.avx512f && bit(leaf7_ebx, 17);
    f.avx512bw = f.avx512f && bit(leaf7_ebx, 30);
    f.avx512vl = f.avx512f && bit(leaf7_ebx, 31);
    f.avx512_vnni = f.avx512f && bit(leaf7_ecx, 11);
    f.avx512_bf16 = f.avx512f && bit(leaf7_1_eax, 5);
    f.amx_bf16 = tile_state && bit(leaf7_edx, 22);
    f.amx_tile = tile_state && bit(leaf7_edx, 24);
    f.amx_int8 = tile_state && bit(leaf7_edx, 25);
  }
  __get_cpuid(0x80000000, &eax, &ebx, &ecx, &edx);
  if (eax >= 0x80000004) {
    uint32_t words[12];
    for (uint32_t leaf = 0; leaf < 3; ++leaf) {
      __get_cpuid(0x80000002 + leaf, &words[4 * leaf], &words[4 * leaf + 1], &words[4 * leaf + 2],
                  &words[4 * leaf + 3]);
    }
    std::string brand(reinterpret_cast<const char*>(words), sizeof(words));
    brand = brand.substr(0, brand.find('\0'));
    const size_t first = brand.find_first_not_of(' '), last = brand.find_last_not_of(' ');
    f.brand = first == std::string::npos ? "" : brand.substr(first, last - first + 1);
  }
}
#endif

#if PYTRANSFORMER_CPU_ARM64
void detect_arm64(CpuFeatures& f) {
  f.architecture = "aarch64";
  f.neon = true;  // Advanced SIMD is mandatory on aarch64
#ifdef HWCAP_ASIMDDP
  f.neon_dotprod = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
}
#endif

// Counts the CPUs this process may run on and the distinct (package, core) pairs among them.
void detect_topology(CpuFeatures& f) {
  f.logical_cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  f.physical_cores = f.logical_cpus;
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return;
  int logical = 0;
  std::set<std::pair<int, int>> cores;
  bool topology_known = true;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &set)) continue;
    ++logical;
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core_file(base + "core_id"), package_file(base + "physical_package_id");
    int core = -1, package = -1;
    if (!(core_file >> core) || !(package_file >> package)) topology_known = false;
    cores.emplace(package, core);
  }
  if (logical > 0) f.logical_cpus = logical;
  f.physical_cores = topology_known && !cores.empty() ? static_cast<int>(cores.size()) : f.logical_cpus;
#endif
}

CpuFeatures detect() {
  CpuFeatures f;
#if PYTRANSFORMER_CPU_X86
  detect_x86(f);
#elif PYTRANSFORMER_CPU_ARM64
  detect_arm64(f);
#else
  f.architecture = "other";
#endif
  detect_topology(f);
  return f;
}

Isa choose() {
  const char* value = std::getenv("PYTRANSFORMER_ISA");
  const std::string requested = value ? value : "";
  if (requested.empty() || requested == "auto") return best_isa();
  Isa isa;
  if (!parse_isa(requested, &isa)) {
    throw InvalidArgument("PYTRANSFORMER_ISA=" + requested +
                          " is not one of auto, scalar, avx2, avx2_vnni, avx512, avx512_vnni, neon");
  }
  if (!isa_supported(isa)) {
    std::string available;
    for (Isa s : supported_isas()) available += std::string(available.empty() ? "" : ", ") + isa_name(s);
    throw InvalidArgument("PYTRANSFORMER_ISA=" + requested +
                          ": this CPU or build cannot run it (available: " + available + ")");
  }
  return isa;
}

}  // namespace

const char* isa_name(Isa isa) { return kNames[static_cast<int>(isa)]; }

bool parse_isa(const std::string& name, Isa* isa) {
  for (int i = 0; i < static_cast<int>(sizeof(kNames) / sizeof(kNames[0])); ++i) {
    if (name == kNames[i]) {
      *isa = static_cast<Isa>(i);
      return true;
    }
  }
  return false;
}

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_supported(Isa isa) {
  const CpuFeatures& f = cpu_features();
  switch (isa) {
    case Isa::SCALAR: return true;
#if PYTRANSFORMER_CPU_X86
    case Isa::AVX2: return f.avx2 && f.fma && f.f16c;
    case Isa::AVX2_VNNI: return isa_supported(Isa::AVX2) && f.avx_vnni;
    case Isa::AVX512:
      return isa_supported(Isa::AVX2) && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
    case Isa::AVX512_VNNI: return isa_supported(Isa::AVX512) && f.avx512_vnni;
#endif
#if PYTRANSFORMER_CPU_ARM64
    case Isa::NEON: return f.neon;
#endif
    default: return false;
  }
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> isas;
  for (Isa isa : {Isa::SCALAR, Isa::NEON, Isa::AVX2, Isa::AVX2_VNNI, Isa::AVX512, Isa::AVX512_VNNI}) {
    if (isa_supported(isa)) isas.push_back(isa);
  }
  return isas;
}

Isa best_isa() { return supported_isas().back(); }

Isa selected_isa() {
  static const Isa isa = choose();  // a throw leaves it unset: the next call reports again
  return isa;
}

}  // namespace pytransformer::kernels::cpu

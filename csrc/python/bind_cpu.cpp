// _core.cpu_info(): what the CPU offers and which kernel variant the core uses
// (kernels/cpu/cpu_isa.h), for pytransformer.info() and the tests that force each variant.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdlib>
#include <string>

#include "kernels/cpu/cpu_isa.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python {
namespace {

namespace cpu = kernels::cpu;

py::dict cpu_info() {
  const cpu::CpuFeatures& f = cpu::cpu_features();
  py::dict features;
  features["avx2"] = f.avx2;
  features["fma"] = f.fma;
  features["f16c"] = f.f16c;
  features["avx512f"] = f.avx512f;
  features["avx512bw"] = f.avx512bw;
  features["avx512vl"] = f.avx512vl;
  features["avx512dq"] = f.avx512dq;
  features["avx512_vnni"] = f.avx512_vnni;
  features["avx512_bf16"] = f.avx512_bf16;
  features["avx_vnni"] = f.avx_vnni;
  features["amx_tile"] = f.amx_tile;
  features["amx_int8"] = f.amx_int8;
  features["amx_bf16"] = f.amx_bf16;
  features["neon"] = f.neon;
  features["neon_dotprod"] = f.neon_dotprod;
  py::list supported;
  for (cpu::Isa isa : cpu::supported_isas()) supported.append(cpu::isa_name(isa));
  py::dict info;
  info["architecture"] = f.architecture;
  info["vendor"] = f.vendor;
  info["brand"] = f.brand;
  info["logical_cpus"] = f.logical_cpus;
  info["physical_cores"] = f.physical_cores;
  info["features"] = features;
  info["supported_isas"] = supported;
  info["best_isa"] = cpu::isa_name(cpu::best_isa());
  const char* requested = std::getenv("PYTRANSFORMER_ISA");
  info["requested_isa"] = requested ? py::object(py::str(requested)) : py::object(py::none());
  // The variant in use, or None with the reason when PYTRANSFORMER_ISA cannot be honoured.
  try {
    info["selected_isa"] = cpu::isa_name(cpu::selected_isa());
    info["isa_error"] = py::none();
  } catch (const InvalidArgument& error) {
    info["selected_isa"] = py::none();
    info["isa_error"] = error.what();
  }
  return info;
}

}  // namespace

void bind_cpu(py::module_& m) {
  m.def("cpu_info", &cpu_info,
        "CPU features, the kernel variants this build can run on it, and the one in use "
        "(PYTRANSFORMER_ISA forces one).");
}

}  // namespace pytransformer::python

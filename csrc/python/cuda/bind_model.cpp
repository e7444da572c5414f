// _cuda.Model: the GPU model (csrc/cuda/cuda_model.h). It subclasses _core.EncoderDecoderModel,
// so it has the same encode / teacher_forced_logits / cross_attention / start_decoding methods as
// the CPU _core.Model, and _core.generate decodes with it unchanged.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "cuda/cuda_model.h"
#include "format/model_file.h"
#include "python/model_handle.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python::cuda {
namespace {

using pytransformer::cuda::CudaModel;
using pytransformer::cuda::GemmBackend;

GemmBackend parse_gemm(const std::string& name) {
  if (name == "exact") return GemmBackend::EXACT;
  if (name == "cublas") return GemmBackend::CUBLAS;
  throw InvalidArgument("gemm must be 'exact' or 'cublas', got '" + name + "'");
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<CudaModel, models::EncoderDecoderModel, std::shared_ptr<CudaModel>>(
      m, "Model",
      "The model on a CUDA GPU: weights uploaded once from a model file. gemm='exact' (default) "
      "multiplies in the CPU reference's order (bit-identical GEMMs); gemm='cublas' uses cuBLAS "
      "in full f32 where the build has it (cublas_available).")
      .def(py::init([](const std::string& path, int device, const std::string& gemm) {
             const GemmBackend backend = parse_gemm(gemm);
             py::gil_scoped_release release;
             return std::make_shared<CudaModel>(format::ModelFile::open(path), device, backend);
           }),
           py::arg("path"), py::arg("device") = 0, py::arg("gemm") = "exact")
      .def_property_readonly("device", &CudaModel::device)
      .def_property_readonly("gemm", [](const CudaModel& model) {
        return model.gemm() == GemmBackend::CUBLAS ? "cublas" : "exact";
      });
}

}  // namespace pytransformer::python::cuda

// _cuda.load_model: the model of a file on a CUDA GPU. It is a _core.Model like the CPU one (one
// models::Seq2SeqModel, its layers running on a cuda::CudaDevice instead of the CPU device), so
// it has the same methods, its `device` is "cuda:N", and _core.generate decodes with it
// unchanged.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "cuda/cuda_device.h"
#include "format/model_file.h"
#include "models/llama_model.h"
#include "models/seq2seq_model.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python::cuda {
namespace {

using pytransformer::cuda::CudaDevice;
using pytransformer::cuda::GemmBackend;

GemmBackend parse_gemm(const std::string& name) {
  if (name == "exact") return GemmBackend::EXACT;
  if (name == "cublas") return GemmBackend::CUBLAS;
  throw InvalidArgument("gemm must be 'exact' or 'cublas', got '" + name + "'");
}

}  // namespace

void bind_model(py::module_& m) {
  m.def(
      "load_model",
      [](const std::string& path, int device, const std::string& gemm) {
        const GemmBackend backend = parse_gemm(gemm);
        py::gil_scoped_release release;
        auto file = format::ModelFile::open(path);
        return std::make_shared<models::Seq2SeqModel>(
            std::move(file), std::make_shared<CudaDevice>(device, backend));
      },
      py::arg("path"), py::arg("device") = 0, py::arg("gemm") = "exact",
      "The model of a model file on CUDA GPU `device` (a _core.Model whose device is "
      "'cuda:N'): weights uploaded once. gemm='exact' (default) multiplies in the CPU "
      "reference's order (bit-identical GEMMs); gemm='cublas' uses cuBLAS in full f32 where the "
      "build has it (cublas_available).");
  m.def(
      "load_language_model",
      [](const std::string& path, int device, const std::string& gemm) {
        const GemmBackend backend = parse_gemm(gemm);
        py::gil_scoped_release release;
        auto file = format::ModelFile::open(path);
        return std::make_shared<models::LlamaModel>(
            std::move(file), std::make_shared<CudaDevice>(device, backend));
      },
      py::arg("path"), py::arg("device") = 0, py::arg("gemm") = "exact",
      "The decoder-only language model of a model file (general.architecture llama) on CUDA "
      "GPU `device` (a _core.LanguageModel whose device is 'cuda:N'), gemm as load_model's.");
}

}  // namespace pytransformer::python::cuda

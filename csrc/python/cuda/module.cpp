// The optional extension module pytransformer._cuda: the GPU backend (csrc/kernels/cuda,
// csrc/cuda). Built only with the CMake option PYTRANSFORMER_CUDA (docs/cuda.md) and imported
// only when a GPU is asked for, so the CPU package never loads CUDA libraries. Importing it works
// on a machine without a driver or a GPU: device_count() is then 0 and device_problem() says why;
// using a GPU there raises RuntimeError("CUDA requested but ...").
#include <pybind11/pybind11.h>

#include "cuda/cuda_device.h"
#include "kernels/cuda/cuda_check.h"
#include "python/conversions.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python::cuda {
void bind_device(py::module_& m);  // bind_device.cpp: device_count, device_problem, devices
void bind_model(py::module_& m);   // bind_model.cpp: load_model
void bind_ops(py::module_& m);     // bind_ops.cpp: ops (each kernel vs its reference)
}  // namespace pytransformer::python::cuda

PYBIND11_MODULE(_cuda, m) {
  m.doc() = "pytransformer's CUDA backend (private: use Translator(..., device='cuda'))";
  // _core registers the model file and model types this module builds on, and the Python
  // exception classes.
  const py::module_ core = py::module_::import("pytransformer._core");
  static py::object format_error = core.attr("ModelFormatError");
  py::register_local_exception_translator([](std::exception_ptr error) {
    if (pytransformer::python::set_core_error(error, format_error)) return;
    try {
      std::rethrow_exception(error);
    } catch (const pytransformer::cuda::CudaUnavailable& e) {
      py::set_error(PyExc_RuntimeError, e.what());
    } catch (const pytransformer::kernels::cuda::CudaError& e) {
      py::set_error(PyExc_RuntimeError, e.what());
    }
  });
  m.attr("cublas_available") = pytransformer::cuda::cublas_available();
  pytransformer::python::cuda::bind_device(m);
  pytransformer::python::cuda::bind_model(m);
  pytransformer::python::cuda::bind_ops(m);
}

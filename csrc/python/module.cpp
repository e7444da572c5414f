// The private extension module pytransformer._core. Each bind_*.cpp registers one part of the
// core; errors thrown by the core become Python exceptions here.
#include <pybind11/pybind11.h>

#include "python/conversions.h"

namespace py = pybind11;

namespace pytransformer::python {
void bind_format(py::module_& m);    // bind_format.cpp: ModelFile, expected_tensors
void bind_model(py::module_& m);     // bind_model.cpp: Model (encode, logits, attention)
void bind_decoding(py::module_& m);  // bind_decoding.cpp: generate
void bind_cpu(py::module_& m);       // bind_cpu.cpp: cpu_info
void bind_heap_allocations(py::module_& m);  // bind_heap_allocations.cpp: _heap_allocations
}  // namespace pytransformer::python

PYBIND11_MODULE(_core, m) {
  m.doc() = "pytransformer's C++ core (private: use the pytransformer package)";
  static py::exception<pytransformer::FormatError> format_error(m, "ModelFormatError",
                                                                PyExc_ValueError);
  py::register_exception_translator([](std::exception_ptr error) {
    if (!pytransformer::python::set_core_error(error, format_error)) std::rethrow_exception(error);
  });
  pytransformer::python::bind_format(m);
  pytransformer::python::bind_model(m);
  pytransformer::python::bind_decoding(m);
  pytransformer::python::bind_cpu(m);
  pytransformer::python::bind_heap_allocations(m);
}

// _cuda.device_count, _cuda.device_problem, _cuda.devices: what the GPU backend can use here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "kernels/cuda/device.h"

namespace py = pybind11;

namespace pytransformer::python::cuda {

void bind_device(py::module_& m) {
  m.def("device_count", &kernels::cuda::device_count,
        "CUDA devices visible to the runtime (0 without a driver or a GPU).");
  m.def(
      "device_problem",
      [](int device) -> std::optional<std::string> {
        const std::string problem = kernels::cuda::device_problem(device);
        if (problem.empty()) return std::nullopt;
        return "CUDA requested but " + problem;
      },
      py::arg("device") = 0,
      "None when `device` can run this build's kernels, otherwise why not "
      "('CUDA requested but ...').");
  m.def(
      "devices",
      [] {
        std::vector<std::string> names;
        for (int d = 0; d < kernels::cuda::device_count(); ++d) {
          names.push_back(kernels::cuda::device_description(d));
        }
        return names;
      },
      "A description of each visible device ('NVIDIA A100-SXM4-40GB (sm_80, 40 GiB)').");
}

}  // namespace pytransformer::python::cuda

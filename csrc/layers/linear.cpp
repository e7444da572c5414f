#include "layers/linear.h"

#include "format/tensor_names.h"

namespace pytransformer::layers {

Linear::Linear(const format::ModelFile& file, const std::string& scope, const std::string& module,
               bool with_bias, const ops::Device& device)
    : weight_(tensor::WeightMatrix::from_file(file, format::tensor_name(scope, module, "weight")),
              device,
              [&file](const void* data, uint64_t bytes) { file.release_pages(data, bytes); }) {
  if (with_bias) {
    const int64_t rows = weight_.matrix().rows;
    bias_ = static_cast<const float*>(device.weight(
        tensor::vector_from_file(file, format::tensor_name(scope, module, "bias"), rows),
        sizeof(float) * static_cast<size_t>(rows)));
  }
}

void Linear::forward(const tensor::Tensor& x, tensor::Tensor& y, const ops::Device& device,
                     std::optional<format::Activation> activation,
                     const tensor::Tensor* residual) const {
  ops::linear(x, weight_, bias_, y, device, activation, residual);
}

void Linear::forward(const tensor::Tensor& x, float* y, const ops::Device& device) const {
  ops::linear(x, weight_, bias_, y, device);
}

void Linear::forward_to_host(const tensor::Tensor& x, float* host, tensor::Tensor& staging,
                             const ops::Device& device) const {
  if (device.allocator().host_accessible()) {
    forward(x, host, device);
    return;
  }
  forward(x, staging, device);
  device.allocator().copy_to_host(staging.data(), sizeof(float) * static_cast<size_t>(staging.numel()),
                                  host);
}

}  // namespace pytransformer::layers

#include "layers/linear.h"

#include <utility>

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

Linear::Linear(ops::LinearWeight weight, std::vector<float> bias)
    : weight_(std::move(weight)), owned_bias_(std::move(bias)) {
  if (!owned_bias_.empty()) bias_ = owned_bias_.data();
}

std::unique_ptr<Linear> Linear::stacked(const format::ModelFile& file, const std::string& scope,
                                        const std::vector<std::string>& modules, bool with_bias,
                                        const ops::Device& device) {
  std::vector<tensor::WeightMatrix> parts;
  for (const std::string& module : modules) {
    parts.push_back(tensor::WeightMatrix::from_file(file, format::tensor_name(scope, module, "weight")));
  }
  std::unique_ptr<ops::LinearWeight> weight = ops::LinearWeight::stacked(
      parts, device, [&file](const void* data, uint64_t bytes) { file.release_pages(data, bytes); });
  if (!weight) return nullptr;
  std::vector<float> bias;
  if (with_bias) {
    for (size_t i = 0; i < modules.size(); ++i) {
      const float* part = tensor::vector_from_file(
          file, format::tensor_name(scope, modules[i], "bias"), parts[i].rows);
      bias.insert(bias.end(), part, part + parts[i].rows);
    }
  }
  return std::unique_ptr<Linear>(new Linear(std::move(*weight), std::move(bias)));
}

std::unique_ptr<Linear> Linear::select_rows(const std::vector<int32_t>& ids,
                                            const ops::Device& device) const {
  if (!device.allocator().host_accessible()) return nullptr;
  std::unique_ptr<ops::LinearWeight> weight = weight_.select_rows(ids, device);
  if (!weight) return nullptr;
  std::vector<float> bias;
  if (bias_) {
    for (const int32_t id : ids) bias.push_back(bias_[id]);
  }
  return std::unique_ptr<Linear>(new Linear(std::move(*weight), std::move(bias)));
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

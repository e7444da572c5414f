#include "layers/layer_norm.h"

#include "format/tensor_names.h"
#include "ops/layer_norm.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::layers {

namespace {

const float* parameter(const format::ModelFile& file, const std::string& name,
                       const ops::Device& device) {
  const int64_t d = file.config().d_model;
  return static_cast<const float*>(device.weight(tensor::vector_from_file(file, name, d),
                                                 sizeof(float) * static_cast<size_t>(d)));
}

}  // namespace

LayerNorm::LayerNorm(const format::ModelFile& file, const std::string& scope,
                     const std::string& module, const ops::Device& device)
    : gamma_(parameter(file, format::tensor_name(scope, module, "gamma"), device)),
      beta_(parameter(file, format::tensor_name(scope, module, "beta"), device)),
      epsilon_(file.config().layer_norm_epsilon) {}

void LayerNorm::forward(const tensor::Tensor& x, const tensor::Tensor* residual,
                        tensor::Tensor& y, const ops::Device& device) const {
  ops::layer_norm(x, residual, gamma_, beta_, epsilon_, y, device);
}

}  // namespace pytransformer::layers

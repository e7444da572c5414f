#include "layers/layer_norm.h"

#include "format/tensor_names.h"
#include "ops/layer_norm.h"
#include "tensor/weight_matrix.h"

namespace pytransformer::layers {

LayerNorm::LayerNorm(const format::ModelFile& file, const std::string& scope,
                     const std::string& module)
    : gamma_(tensor::vector_from_file(file, format::tensor_name(scope, module, "gamma"),
                                      file.config().d_model)),
      beta_(tensor::vector_from_file(file, format::tensor_name(scope, module, "beta"),
                                     file.config().d_model)),
      epsilon_(file.config().layer_norm_epsilon) {}

void LayerNorm::forward(const tensor::Tensor& x, const tensor::Tensor* residual,
                        tensor::Tensor& y) const {
  ops::layer_norm(x, residual, gamma_, beta_, epsilon_, y);
}

}  // namespace pytransformer::layers

#include "layers/linear.h"

#include "format/tensor_names.h"

namespace pytransformer::layers {

Linear::Linear(const format::ModelFile& file, const std::string& scope, const std::string& module,
               bool with_bias)
    : weight_(tensor::WeightMatrix::from_file(file, format::tensor_name(scope, module, "weight")),
              [&file](const void* data, uint64_t bytes) { file.release_pages(data, bytes); }) {
  if (with_bias) {
    bias_ = tensor::vector_from_file(file, format::tensor_name(scope, module, "bias"),
                                     weight_.matrix().rows);
  }
}

void Linear::forward(const tensor::Tensor& x, tensor::Tensor& y, const tensor::ThreadPool& pool,
                     std::optional<format::Activation> activation,
                     const tensor::Tensor* residual) const {
  ops::linear(x, weight_, bias_, y, pool, activation, residual);
}

void Linear::forward(const tensor::Tensor& x, float* y, const tensor::ThreadPool& pool) const {
  ops::linear(x, weight_, bias_, y, pool);
}

}  // namespace pytransformer::layers

#include "layers/ssru.h"

#include "ops/ssru.h"

namespace pytransformer::layers {

Ssru::Ssru(const format::ModelFile& file, const std::string& scope, const ops::Device& device)
    : gates_(file, scope, "ssru", /*with_bias=*/true, device) {}

void Ssru::step(const tensor::Tensor& x, const tensor::Tensor* previous, const int32_t* parent,
                tensor::Tensor& cells, tensor::Tensor& y, bool accumulate, tensor::Tensor& gates,
                const ops::Device& device) const {
  gates_.forward(x, gates, device);
  ops::ssru_step(gates, previous, parent, cells, y, accumulate, device);
}

}  // namespace pytransformer::layers

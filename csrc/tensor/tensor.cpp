#include "tensor/tensor.h"

#include <algorithm>
#include <stdexcept>

namespace pytransformer::tensor {
namespace {

int64_t product(const std::vector<int64_t>& shape) {
  int64_t total = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::logic_error("Tensor: negative dimension");
    total *= d;
  }
  return total;
}

}  // namespace

Tensor::Tensor(std::vector<int64_t> shape)
    : shape_(std::move(shape)), values_(static_cast<size_t>(product(shape_)), 0.0f) {}

void Tensor::resize(std::vector<int64_t> shape) {
  values_.resize(static_cast<size_t>(product(shape)));
  shape_ = std::move(shape);
}

void Tensor::reshape(std::vector<int64_t> shape) {
  if (product(shape) != numel()) throw std::logic_error("Tensor::reshape: element count changes");
  shape_ = std::move(shape);
}

void Tensor::fill(float value) { std::fill(values_.begin(), values_.end(), value); }

int64_t Tensor::dim(int64_t axis) const {
  const int64_t index = axis < 0 ? rank() + axis : axis;
  if (index < 0 || index >= rank()) throw std::logic_error("Tensor::dim: axis out of range");
  return shape_[static_cast<size_t>(index)];
}

int64_t Tensor::rows() const {
  if (shape_.empty()) return 1;
  const int64_t last = shape_.back();
  return last == 0 ? 0 : numel() / last;
}

std::string Tensor::shape_string() const {
  std::string text = "[";
  for (size_t i = 0; i < shape_.size(); ++i) {
    if (i) text += ", ";
    text += std::to_string(shape_[i]);
  }
  return text + "]";
}

}  // namespace pytransformer::tensor

#include "tensor/tensor.h"

#include <algorithm>
#include <stdexcept>

namespace pytransformer::tensor {

Shape::Shape(std::initializer_list<int64_t> dims) {
  if (static_cast<int64_t>(dims.size()) > kMaxRank) {
    throw std::logic_error("Shape: more than " + std::to_string(kMaxRank) + " dimensions");
  }
  for (int64_t d : dims) dims_[rank_++] = d;
}

int64_t Shape::elements() const {
  int64_t total = 1;
  for (int64_t d : *this) {
    if (d < 0) throw std::logic_error("Tensor: negative dimension");
    total *= d;
  }
  return total;
}

bool Shape::operator==(const Shape& other) const {
  return std::equal(begin(), end(), other.begin(), other.end());
}

std::string Shape::to_string() const {
  std::string text = "[";
  for (int64_t i = 0; i < rank_; ++i) {
    if (i) text += ", ";
    text += std::to_string(dims_[i]);
  }
  return text + "]";
}

Tensor::Tensor(const Shape& shape)
    : shape_(shape), values_(new float[shape.elements()]()), numel_(shape.elements()),
      capacity_(numel_) {}

void Tensor::resize(const Shape& shape) {
  const int64_t count = shape.elements();
  // Uninitialised (new float[], not a vector): untouched pages of a large buffer cost no
  // resident memory, and callers overwrite what they use.
  if (count > capacity_) {
    values_.reset(new float[count]);
    capacity_ = count;
  }
  numel_ = count;
  shape_ = shape;
}

void Tensor::reshape(const Shape& shape) {
  if (shape.elements() != numel_) throw std::logic_error("Tensor::reshape: element count changes");
  shape_ = shape;
}

void Tensor::fill(float value) { std::fill(data(), data() + numel_, value); }

int64_t Tensor::dim(int64_t axis) const {
  const int64_t index = axis < 0 ? rank() + axis : axis;
  if (index < 0 || index >= rank()) throw std::logic_error("Tensor::dim: axis out of range");
  return shape_[index];
}

int64_t Tensor::rows() const {
  if (rank() == 0) return 1;
  const int64_t last = shape_.back();
  return last == 0 ? 0 : numel_ / last;
}

}  // namespace pytransformer::tensor

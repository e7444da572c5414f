#include "tensor/tensor.h"

#include <algorithm>
#include <stdexcept>
#include <utility>

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

Tensor::Tensor(const Shape& shape) {
  resize(shape);
  std::fill(values_, values_ + numel_, 0.0f);
}

Tensor::Tensor(Tensor&& other) noexcept
    : shape_(other.shape_), allocator_(other.allocator_),
      values_(std::exchange(other.values_, nullptr)), numel_(std::exchange(other.numel_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {
  other.shape_ = Shape();
}

Tensor& Tensor::operator=(Tensor&& other) noexcept {
  if (this != &other) {
    release();
    shape_ = std::exchange(other.shape_, Shape());
    allocator_ = other.allocator_;
    values_ = std::exchange(other.values_, nullptr);
    numel_ = std::exchange(other.numel_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

Tensor::~Tensor() { release(); }

void Tensor::release() noexcept {
  if (values_) allocator_->deallocate(values_);
  values_ = nullptr;
  capacity_ = 0;
}

void Tensor::resize(const Shape& shape) {
  const int64_t count = shape.elements();
  if (count > capacity_) {
    auto* values = static_cast<float*>(allocator_->allocate(sizeof(float) * static_cast<size_t>(count)));
    release();
    values_ = values;
    capacity_ = count;
  }
  numel_ = count;
  shape_ = shape;
}

void Tensor::resize(const Shape& shape, const Allocator& allocator) {
  if (&allocator != allocator_) {
    release();
    numel_ = 0;
    shape_ = Shape();
    allocator_ = &allocator;
  }
  resize(shape);
}

void Tensor::reshape(const Shape& shape) {
  if (shape.elements() != numel_) throw std::logic_error("Tensor::reshape: element count changes");
  shape_ = shape;
}

void Tensor::fill(float value) {
  if (!allocator_->host_accessible()) throw std::logic_error("Tensor::fill: device memory");
  std::fill(values_, values_ + numel_, value);
}

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

// Activations: an owned, contiguous, row-major f32 buffer with a shape, in the memory of its
// allocator (tensor/allocator.h: the host's, or a device's; data() is then a device pointer).
//
// Weights are not Tensors: they stay in the model file's copy read at load
// (format::TensorView) and are read through tensor::WeightMatrix. A Tensor keeps its capacity when resized and its Shape is
// stored inline, so a buffer reused across calls stops allocating once it reached its largest
// size (the decode loop relies on it: models/seq2seq_model.h).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

#include "tensor/allocator.h"

namespace pytransformer::tensor {

// Dimensions of a tensor, stored inline (at most kMaxRank): making, copying or comparing one
// never allocates. Built from a braced list: `out.resize({batch, length, d})`.
class Shape {
 public:
  static constexpr int64_t kMaxRank = 6;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);  // std::logic_error past kMaxRank dimensions

  int64_t rank() const { return rank_; }
  int64_t operator[](int64_t axis) const { return dims_[axis]; }
  int64_t& back() { return dims_[rank_ - 1]; }
  int64_t back() const { return dims_[rank_ - 1]; }
  const int64_t* begin() const { return dims_; }
  const int64_t* end() const { return dims_ + rank_; }
  // Product of the dimensions (1 for rank 0); std::logic_error on a negative dimension.
  int64_t elements() const;

  bool operator==(const Shape& other) const;
  bool operator!=(const Shape& other) const { return !(*this == other); }

  std::string to_string() const;  // "[2, 7, 512]"

 private:
  int64_t dims_[kMaxRank] = {};
  int64_t rank_ = 0;
};

class Tensor {
 public:
  Tensor() = default;  // empty, in host memory
  explicit Tensor(const Shape& shape);  // zero-filled, in host memory
  // Empty, in `allocator`'s memory.
  explicit Tensor(const Allocator& allocator) : allocator_(&allocator) {}
  Tensor(Tensor&& other) noexcept;
  Tensor& operator=(Tensor&& other) noexcept;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;
  ~Tensor();

  // Sets the shape; contents are unspecified afterwards (use fill() when zeros are needed).
  // Allocates only when the element count exceeds every earlier one, and never fills.
  void resize(const Shape& shape);
  // The same in `allocator`'s memory: a tensor of another allocator gives its buffer back and
  // allocates there (the ops size their outputs so, on their device).
  void resize(const Shape& shape, const Allocator& allocator);
  // Sets a shape of the same element count, keeping the contents.
  void reshape(const Shape& shape);
  void fill(float value);  // host memory only (std::logic_error otherwise)

  const Shape& shape() const { return shape_; }
  int64_t rank() const { return shape_.rank(); }
  int64_t dim(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return numel_; }
  // Product of all dimensions but the last: the number of rows of the last dimension.
  int64_t rows() const;

  const Allocator& allocator() const { return *allocator_; }
  float* data() { return values_; }
  const float* data() const { return values_; }

  std::string shape_string() const { return shape_.to_string(); }

 private:
  void release() noexcept;

  Shape shape_;
  const Allocator* allocator_ = &host_allocator();
  float* values_ = nullptr;  // capacity_ floats from allocator_, the first numel_ in use
  int64_t numel_ = 0;
  int64_t capacity_ = 0;
};

}  // namespace pytransformer::tensor

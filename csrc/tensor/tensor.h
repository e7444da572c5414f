// Activations: an owned, contiguous, row-major f32 buffer with a shape.
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
  Tensor() = default;
  explicit Tensor(const Shape& shape);  // zero-filled

  // Sets the shape; contents are unspecified afterwards (use fill() when zeros are needed).
  // Allocates only when the element count exceeds every earlier one, and never fills.
  void resize(const Shape& shape);
  // Sets a shape of the same element count, keeping the contents.
  void reshape(const Shape& shape);
  void fill(float value);

  const Shape& shape() const { return shape_; }
  int64_t rank() const { return shape_.rank(); }
  int64_t dim(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return numel_; }
  // Product of all dimensions but the last: the number of rows of the last dimension.
  int64_t rows() const;

  float* data() { return values_.get(); }
  const float* data() const { return values_.get(); }

  std::string shape_string() const { return shape_.to_string(); }

 private:
  Shape shape_;
  std::unique_ptr<float[]> values_;  // capacity_ floats, the first numel_ in use
  int64_t numel_ = 0;
  int64_t capacity_ = 0;
};

}  // namespace pytransformer::tensor

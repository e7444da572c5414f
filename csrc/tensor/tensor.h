// Activations: an owned, contiguous, row-major f32 buffer with a shape.
//
// Weights are not Tensors: they stay in the model file's mapping (format::TensorView) and are
// read through tensor::WeightMatrix. A Tensor keeps its capacity when resized, so a buffer
// reused across calls stops allocating once it reached its largest size.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pytransformer::tensor {

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::vector<int64_t> shape);  // zero-filled

  // Sets the shape; contents are unspecified afterwards (use fill() when zeros are needed).
  void resize(std::vector<int64_t> shape);
  // Sets a shape of the same element count, keeping the contents.
  void reshape(std::vector<int64_t> shape);
  void fill(float value);

  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t rank() const { return static_cast<int64_t>(shape_.size()); }
  int64_t dim(int64_t axis) const;  // negative axes count from the end
  int64_t numel() const { return static_cast<int64_t>(values_.size()); }
  // Product of all dimensions but the last: the number of rows of the last dimension.
  int64_t rows() const;

  float* data() { return values_.data(); }
  const float* data() const { return values_.data(); }
  std::vector<float>& values() { return values_; }
  const std::vector<float>& values() const { return values_; }

  std::string shape_string() const;  // "[2, 7, 512]"

 private:
  std::vector<int64_t> shape_;
  std::vector<float> values_;
};

}  // namespace pytransformer::tensor

#include "ops/rotary.h"

#include <stdexcept>
#include <string>

#include "ops/device_checks.h"

namespace pytransformer::ops {

void apply_rotary(tensor::Tensor& x, int64_t heads, int64_t rotary_dim, const int32_t* positions,
                  const tensor::Tensor& cos, const tensor::Tensor& sin,
                  kernels::ref::RotaryLayout layout, const Device& device) {
  if (x.rank() < 1 || heads <= 0 || x.dim(-1) % heads != 0) {
    throw std::logic_error("apply_rotary: " + x.shape_string() + " is not " +
                           std::to_string(heads) + " heads");
  }
  const int64_t head_dim = x.dim(-1) / heads;
  if (rotary_dim <= 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim) {
    throw std::logic_error("apply_rotary: rotary_dim " + std::to_string(rotary_dim) +
                           " for head_dim " + std::to_string(head_dim));
  }
  if (cos.rank() != 2 || cos.shape() != sin.shape() || cos.dim(1) != rotary_dim / 2) {
    throw std::logic_error("apply_rotary: tables " + cos.shape_string() + " / " +
                           sin.shape_string() + " for rotary_dim " + std::to_string(rotary_dim));
  }
  check_on_device("apply_rotary", x, device);
  check_on_device("apply_rotary", cos, device);
  check_on_device("apply_rotary", sin, device);
  device.apply_rotary(x.data(), x.rows(), heads, head_dim, rotary_dim, positions, cos.data(),
                      sin.data(), layout);
}

}  // namespace pytransformer::ops

#include "ops/linear.h"

#include <stdexcept>

#include "kernels/ref/linear.h"

namespace pytransformer::ops {

void linear(const tensor::Tensor& x, const tensor::WeightMatrix& weight, const float* bias,
            tensor::Tensor& y, const tensor::ThreadPool& pool) {
  if (x.rank() < 1 || x.dim(-1) != weight.cols) {
    throw std::logic_error("linear: input " + x.shape_string() + " does not match a weight of " +
                           std::to_string(weight.cols) + " columns");
  }
  if (&x == &y) throw std::logic_error("linear: output aliases input");
  std::vector<int64_t> shape = x.shape();
  shape.back() = weight.rows;
  y.resize(std::move(shape));
  const int64_t m = x.rows();
  // Columns per thread: enough work to pay for waking a thread.
  const int64_t min_columns = 16;
  pool.parallel_for(weight.rows, min_columns, [&](int64_t begin, int64_t end) {
    kernels::ref::linear(x.data(), m, weight.cols, weight.data, weight.dtype, weight.row_scales,
                         bias, weight.rows, begin, end, y.data());
  });
}

}  // namespace pytransformer::ops

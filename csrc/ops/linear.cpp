#include "ops/linear.h"

#include <algorithm>
#include <new>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/kernels.h"
#include "kernels/ref/linear_int8.h"

namespace pytransformer::ops {
namespace {

void check_input(const tensor::Tensor& x, const tensor::WeightMatrix& weight) {
  if (x.rank() < 1 || x.dim(-1) != weight.cols) {
    throw std::logic_error("linear: input " + x.shape_string() + " does not match a weight of " +
                           std::to_string(weight.cols) + " columns");
  }
}

void multiply(const tensor::Tensor& x, const LinearWeight& weight,
              const kernels::cpu::LinearEpilogue& epilogue, float* y,
              const tensor::ThreadPool& pool);

}  // namespace

LinearWeight::LinearWeight(const tensor::WeightMatrix& matrix, const PackedSlice& packed_slice)
    : matrix_(matrix) {
  const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
  const int64_t bytes = kernels.packed_weight_bytes(matrix.dtype, matrix.rows, matrix.cols);
  if (bytes == 0) return;
  constexpr size_t kAlignment = 64;
  const size_t size = (static_cast<size_t>(bytes) + kAlignment - 1) / kAlignment * kAlignment;
  packed_.reset(std::aligned_alloc(kAlignment, size));
  if (!packed_) throw std::bad_alloc();
  // Slices of whole panels of about kSliceBytes of the stored matrix each.
  constexpr int64_t kSliceBytes = int64_t{1} << 22;
  const int64_t row_bytes = matrix.cols * static_cast<int64_t>(dtype_size(matrix.dtype));
  const int64_t panel = kernels.panel_columns;
  const int64_t slice_rows = std::max<int64_t>(1, kSliceBytes / (row_bytes * panel)) * panel;
  const auto* stored = static_cast<const unsigned char*>(matrix.data);
  auto* out = static_cast<unsigned char*>(packed_.get());
  for (int64_t first = 0; first < matrix.rows; first += slice_rows) {
    const int64_t rows = std::min(slice_rows, matrix.rows - first);
    kernels.pack_weight(stored + first * row_bytes, matrix.dtype, rows, matrix.cols,
                        out + kernels.packed_weight_bytes(matrix.dtype, first, matrix.cols));
    if (packed_slice) packed_slice(stored + first * row_bytes, static_cast<uint64_t>(rows * row_bytes));
  }
}

void linear(const tensor::Tensor& x, const LinearWeight& packed, const float* bias,
            tensor::Tensor& y, const tensor::ThreadPool& pool,
            std::optional<format::Activation> activation, const tensor::Tensor* residual) {
  const tensor::WeightMatrix& weight = packed.matrix();
  check_input(x, weight);
  if (&x == &y) throw std::logic_error("linear: output aliases input");
  if (activation && residual) throw std::logic_error("linear: both activation and residual");
  tensor::Shape shape = x.shape();
  shape.back() = weight.rows;
  if (residual && residual->shape() != shape) {
    throw std::logic_error("linear: residual " + residual->shape_string() + " vs output " +
                           x.shape_string() + " x " + std::to_string(weight.rows));
  }
  if (&y != residual) y.resize(shape);
  kernels::cpu::LinearEpilogue epilogue;
  epilogue.bias = bias;
  if (activation) {
    epilogue.activate = true;
    epilogue.activation = *activation;
  }
  if (residual) epilogue.residual = residual->data();
  multiply(x, packed, epilogue, y.data(), pool);
}

void linear(const tensor::Tensor& x, const LinearWeight& weight, const float* bias, float* y,
            const tensor::ThreadPool& pool) {
  check_input(x, weight.matrix());
  kernels::cpu::LinearEpilogue epilogue;
  epilogue.bias = bias;
  multiply(x, weight, epilogue, y, pool);
}

namespace {

void multiply(const tensor::Tensor& x, const LinearWeight& packed,
              const kernels::cpu::LinearEpilogue& epilogue, float* y,
              const tensor::ThreadPool& pool) {
  const kernels::cpu::KernelTable& kernels = kernels::cpu::kernels();
  const tensor::WeightMatrix& weight = packed.matrix();
  const int64_t m = x.rows(), k = weight.cols, n = weight.rows;
  // Threads take whole panels of columns (the kernels' layout), and at least
  // kMinMultiplyAdds of work each: waking a worker costs tens of microseconds, more than a
  // small decode-step product (512 x 512 at m = 1) takes on one thread.
  const int64_t block = kernels.panel_columns;
  const int64_t blocks = (n + block - 1) / block;
  constexpr int64_t kMinMultiplyAdds = int64_t{1} << 19;
  const int64_t block_work = std::max<int64_t>(1, m * k * block);
  const int64_t min_blocks = (kMinMultiplyAdds + block_work - 1) / block_work;
  if (weight.dtype == DType::INT8) {
    // Quantised rows of x, reused across calls (no allocation once grown).
    thread_local std::vector<int8_t> quantized;
    thread_local std::vector<float> scales;
    quantized.resize(static_cast<size_t>(m * kernels::ref::quantized_row_stride(k)));
    scales.resize(static_cast<size_t>(m));
    // Pointers, not the thread_local names: those would mean each worker's own buffers.
    int8_t* const rows = quantized.data();
    float* const row_scales = scales.data();
    kernels.quantize_rows(x.data(), m, k, rows, row_scales);
    pool.parallel_for(blocks, min_blocks, [&](int64_t begin, int64_t end) {
      kernels.linear_int8(rows, row_scales, m, k, packed.kernel_data(), weight.row_scales, n,
                          begin * block, std::min(n, end * block), epilogue, y);
    });
    return;
  }
  pool.parallel_for(blocks, min_blocks, [&](int64_t begin, int64_t end) {
    kernels.linear_float(x.data(), m, k, packed.kernel_data(), weight.dtype, n, begin * block,
                         std::min(n, end * block), epilogue, y);
  });
}

}  // namespace

}  // namespace pytransformer::ops

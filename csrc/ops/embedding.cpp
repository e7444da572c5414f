#include "ops/embedding.h"

#include <stdexcept>

#include "kernels/ref/embedding.h"
#include "ops/device_checks.h"

namespace pytransformer::ops {

void embedding(const int32_t* ids, const int64_t* positions, int64_t count,
               const tensor::WeightMatrix& table, float scale, const tensor::Tensor& position_table,
               tensor::Tensor& out, const Device& device) {
  if (position_table.rank() != 2 || position_table.dim(1) != table.cols) {
    throw std::logic_error("embedding: position table " + position_table.shape_string());
  }
  for (int64_t i = 0; i < count; ++i) {
    if (ids[i] < 0 || ids[i] >= table.rows || positions[i] < 0 ||
        positions[i] >= position_table.dim(0)) {
      throw std::logic_error("embedding: id or position out of range");
    }
  }
  check_on_device("embedding", position_table, device);
  out.resize({count, table.cols}, device.allocator());
  device.embedding(ids, positions, count, table.data, table.dtype, table.row_scales, table.cols,
                   scale, position_table.data(), out.data());
}

void sinusoidal_positions(int64_t first_position, int64_t count, int64_t dim,
                          format::PositionLayout layout, format::PositionFrequencies frequencies,
                          tensor::Tensor& out) {
  if (dim % 2 != 0) throw std::logic_error("sinusoidal_positions: odd dimension");
  out.resize({count, dim}, tensor::host_allocator());
  kernels::ref::sinusoidal_positions(first_position, count, dim, layout, frequencies, out.data());
}

}  // namespace pytransformer::ops

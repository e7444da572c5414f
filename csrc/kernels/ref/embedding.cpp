#include "kernels/ref/embedding.h"

#include <cmath>

#include "kernels/ref/convert.h"

namespace pytransformer::kernels::ref {

void embedding(const int32_t* ids, const int64_t* positions, int64_t count, const void* table,
               DType dtype, const float* row_scales, int64_t dim, float scale,
               const float* position_table, float* out) {
  for (int64_t i = 0; i < count; ++i) {
    float* row = out + i * dim;
    convert_row(table, dtype, row_scales, ids[i], dim, row);
    const float* position = position_table + positions[i] * dim;
    for (int64_t c = 0; c < dim; ++c) row[c] = row[c] * scale + position[c];
  }
}

void sinusoidal_positions(int64_t first_position, int64_t count, int64_t dim,
                          format::PositionLayout layout, format::PositionFrequencies frequencies,
                          float* out) {
  const int64_t half = dim / 2;
  const float log_increment = std::log(10000.0f) / static_cast<float>(half > 1 ? half - 1 : 1);
  for (int64_t r = 0; r < count; ++r) {
    const int64_t position = first_position + r;
    float* row = out + r * dim;
    for (int64_t i = 0; i < half; ++i) {
      double angle;
      if (frequencies == format::PositionFrequencies::PAPER) {
        angle = static_cast<double>(position) /
                std::pow(10000.0, 2.0 * static_cast<double>(i) / static_cast<double>(dim));
      } else {
        const float frequency = std::exp(-log_increment * static_cast<float>(i));
        angle = static_cast<float>(position) * frequency;
      }
      const float sine = static_cast<float>(std::sin(angle));
      const float cosine = static_cast<float>(std::cos(angle));
      if (layout == format::PositionLayout::HALVES) {
        row[i] = sine;
        row[half + i] = cosine;
      } else {
        row[2 * i] = sine;
        row[2 * i + 1] = cosine;
      }
    }
  }
}

}  // namespace pytransformer::kernels::ref

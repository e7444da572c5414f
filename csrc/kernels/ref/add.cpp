#include "kernels/ref/add.h"

namespace pytransformer::kernels::ref {

void add(const float* x, float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) y[i] += x[i];
}

}  // namespace pytransformer::kernels::ref

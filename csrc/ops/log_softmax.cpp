#include "ops/log_softmax.h"

#include "kernels/cpu/kernels.h"

namespace pytransformer::ops {

void log_softmax(float* scores, int64_t rows, int64_t cols) {
  if (rows > 0 && cols > 0) kernels::cpu::kernels().log_softmax(scores, rows, cols);
}

int64_t argmax(const float* scores, int64_t count) {
  return kernels::cpu::kernels().argmax(scores, count);
}

}  // namespace pytransformer::ops

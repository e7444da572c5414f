// The element-wise activations of kernels/ref/activation.h as device functions, used by the
// activation kernel and fused into the GEMM epilogue. exp, erf and tanh are evaluated in double
// and rounded to float: the correctly rounded value, which the reference's libm float functions
// return in all but rare cases (so results may differ from the reference in the last bit there).
#pragma once

#include <cuda_runtime.h>

#include "format/model_config.h"

namespace pytransformer::kernels::cuda {

__device__ inline float apply_activation(format::Activation kind, float x) {
  switch (kind) {
    case format::Activation::RELU:
      return x > 0.0f ? x : 0.0f;
    case format::Activation::SWISH:
      return __fdiv_rn(x, __fadd_rn(1.0f, static_cast<float>(exp(-static_cast<double>(x)))));
    case format::Activation::GELU: {
      const float e = static_cast<float>(erf(static_cast<double>(__fmul_rn(x, 0.70710678118654752f))));
      return __fmul_rn(__fmul_rn(0.5f, x), __fadd_rn(1.0f, e));
    }
    case format::Activation::GELU_TANH: {
      const float cubic = __fmul_rn(__fmul_rn(__fmul_rn(0.044715f, x), x), x);
      const float inner = __fmul_rn(0.79788456080286536f, __fadd_rn(x, cubic));
      const float t = static_cast<float>(tanh(static_cast<double>(inner)));
      return __fmul_rn(__fmul_rn(0.5f, x), __fadd_rn(1.0f, t));
    }
  }
  return x;
}

}  // namespace pytransformer::kernels::cuda

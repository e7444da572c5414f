// Debug dumps of named intermediates (STYLE principle 12). When the environment variable
// PYTRANSFORMER_DUMP_DIR names a directory, dump() writes `<dir>/<name>.npy` (f32, the tensor's
// shape) so a run can be compared with a reference framework tensor by tensor; otherwise it
// does nothing. Names are dot-separated (`encoder.layer3`, `decoder.step2.logits`).
#pragma once

#include <string>

#include "tensor/tensor.h"

namespace pytransformer::tensor {

bool dump_enabled();
void dump(const std::string& name, const Tensor& value);

}  // namespace pytransformer::tensor

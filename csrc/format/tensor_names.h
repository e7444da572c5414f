// The single source of truth for weight names (table in docs/format.md). The C++ loader checks
// files against expected_tensors(); the Python writer asks for the same list through the
// extension (_core.expected_tensors) so the two can never disagree. Layers build the names
// they read from a scope: tensor_name(scope, "attn_self_q", "weight") with
// scope = layer_scope(Stack::DECODER, 3) gives "dec.3.attn_self_q.weight".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/model_config.h"

namespace pytransformer::format {

enum class Stack { ENCODER, DECODER };

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;
  bool quantizable = false;  // a rank-2 matrix: may be f32, f16, bf16 or int8 (+ ".scale")
};

// Every tensor a file with this config must hold, in a stable order.
std::vector<ExpectedTensor> expected_tensors(const ModelConfig& config);

// "enc" or "dec".
std::string stack_scope(Stack stack);
// "enc.3" / "dec.0".
std::string layer_scope(Stack stack, int64_t layer);
// scope + "." + module + "." + param, e.g. ("dec.3", "ffn_up", "weight").
std::string tensor_name(const std::string& scope, const std::string& module, const std::string& param);
// name + ".scale": the per-row scales of an int8 matrix.
std::string scale_name(const std::string& matrix_name);
// `<matrix>.input_scale`: an int8 matrix's fixed quantisation step of its inputs (optional).
std::string input_scale_name(const std::string& matrix_name);

}  // namespace pytransformer::format

// How other bindings reach the C++ model behind a Python `_core.Model`.
//
// bind_model.cpp registers models::Seq2SeqModel itself as the Python class `_core.Model`, held
// by a std::shared_ptr (ModelHolder). Another binding (e.g. bind_decoding.cpp) takes the model
// as an argument of type `const ModelHolder&` (or `const models::Seq2SeqModel&`) and pybind11
// converts the Python object; holding the shared_ptr keeps the model (and its memory-mapped
// file) alive while the GIL is released. The model is immutable, so several threads may use one.
#pragma once

#include <memory>

#include <pybind11/pybind11.h>

#include "models/seq2seq_model.h"

namespace pytransformer::python {

using ModelHolder = std::shared_ptr<models::Seq2SeqModel>;
using ModelClass = pybind11::class_<models::Seq2SeqModel, ModelHolder>;

}  // namespace pytransformer::python

// How other bindings reach the C++ model behind a Python model object.
//
// bind_model.cpp registers models::EncoderDecoderModel as the Python class
// `_core.EncoderDecoderModel` (with encode, teacher-forced logits, cross-attention and
// start_decoding), held by a std::shared_ptr (ModelHolder), and models::Seq2SeqModel as its
// subclass `_core.Model`, on whichever device it was built (the CUDA backend's module returns
// the same class from `_cuda.load_model`). Another binding (e.g. bind_decoding.cpp) takes a model
// as an argument of type `const ModelHolder&`; holding the shared_ptr keeps the model (and the
// copy of its file) alive while the GIL is released. Models are immutable, so several threads
// may use one.
#pragma once

#include <memory>

#include <pybind11/pybind11.h>

#include "models/encoder_decoder_model.h"

namespace pytransformer::python {

using ModelHolder = std::shared_ptr<models::EncoderDecoderModel>;
using ModelClass = pybind11::class_<models::EncoderDecoderModel, ModelHolder>;

}  // namespace pytransformer::python

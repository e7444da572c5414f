// Exceptions thrown by the core. The bindings map each to a Python exception class
// (csrc/python/module.cpp): FormatError -> pytransformer.ModelFormatError (a ValueError),
// InvalidArgument -> ValueError. Messages name the file, tensor or argument at fault.
#pragma once

#include <stdexcept>
#include <string>

namespace pytransformer {

// A model file is malformed, truncated, inconsistent or of an unsupported version.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A caller passed an argument the core cannot honour (token id out of range, beam size 0...).
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

}  // namespace pytransformer

// What the bindings of both extension modules (_core, _cuda) share: token ids from Python
// integers, and the Python exceptions the core's errors become.
//
// Python passes ids as int64 (any int); the core takes int32. A value outside [0, INT32_MAX]
// is an InvalidArgument naming the argument and position, not a silent wrap-around.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <exception>
#include <limits>
#include <string>
#include <vector>

#include "pytransformer/error.h"

namespace pytransformer::python {

using IdBatch = std::vector<std::vector<int64_t>>;

// `values` as token ids; `what` names the argument in the error ("target_prefix[2]").
inline std::vector<int32_t> token_ids(const std::vector<int64_t>& values, const std::string& what) {
  std::vector<int32_t> ids;
  ids.reserve(values.size());
  for (size_t t = 0; t < values.size(); ++t) {
    const int64_t value = values[t];
    if (value < 0 || value > std::numeric_limits<int32_t>::max()) {
      throw InvalidArgument(what + "[" + std::to_string(t) + "] = " + std::to_string(value) +
                            " is not a valid token id");
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

// One token_ids() per sentence; `argument` names the batch ("source_ids").
inline std::vector<std::vector<int32_t>> token_id_batch(const IdBatch& batch,
                                                        const std::string& argument) {
  std::vector<std::vector<int32_t>> result;
  result.reserve(batch.size());
  for (size_t b = 0; b < batch.size(); ++b)
    result.push_back(token_ids(batch[b], argument + "[" + std::to_string(b) + "]"));
  return result;
}

// Sets the Python error for the core's own exceptions (FormatError: `format_error`, the
// ModelFormatError class of _core; InvalidArgument: ValueError) and returns true; false for any
// other exception, which the caller translates or leaves to pybind11.
inline bool set_core_error(const std::exception_ptr& error, const pybind11::object& format_error) {
  try {
    if (error) std::rethrow_exception(error);
  } catch (const FormatError& e) {
    pybind11::set_error(format_error, e.what());
    return true;
  } catch (const InvalidArgument& e) {
    pybind11::set_error(PyExc_ValueError, e.what());
    return true;
  } catch (...) {
    return false;
  }
  return false;
}

}  // namespace pytransformer::python

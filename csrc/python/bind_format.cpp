// _core.ModelFile (a validated model file, tensors read on demand), _core.expected_tensors and
// _core.known_metadata_types: what pytransformer.format needs to read and write files.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>

#include "format/crc32.h"
#include "format/model_file.h"
#include "format/tensor_names.h"
#include "kernels/ref/convert.h"
#include "pytransformer/error.h"

namespace py = pybind11;

namespace pytransformer::python {

namespace {

using format::Bytes;
using format::Metadata;
using format::MetadataType;
using format::MetadataValue;
using format::ModelFile;
using format::TensorView;

py::object to_python(const MetadataValue& value) {
  return std::visit(
      [](const auto& v) -> py::object {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Bytes>) {
          return py::bytes(v.data);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          py::list list(v.size());
          for (size_t i = 0; i < v.size(); ++i) list[i] = py::str(v[i]);
          return list;
        } else {
          return py::cast(v);
        }
      },
      value);
}

py::dict metadata_to_python(const Metadata& metadata) {
  py::dict dict;
  for (const auto& [key, value] : metadata) dict[py::str(key)] = to_python(value);
  return dict;
}

[[noreturn]] void bad_value(const std::string& key, const std::string& problem) {
  throw FormatError(key + ": " + problem);
}

int64_t to_int64(const std::string& key, py::handle item) {
  int overflow = 0;
  const long long value = PyLong_AsLongLongAndOverflow(item.ptr(), &overflow);
  if (overflow != 0) bad_value(key, "integer does not fit in int64");
  return value;
}

std::string to_utf8(const std::string& key, py::handle item) {
  Py_ssize_t length = 0;
  const char* data = PyUnicode_AsUTF8AndSize(item.ptr(), &length);
  if (data == nullptr) {
    PyErr_Clear();
    bad_value(key, "string cannot be encoded as UTF-8");
  }
  return std::string(data, static_cast<size_t>(length));
}

// The same rules as pytransformer.format's encoder: bool, int (int64), float (float64), str,
// bytes, and lists/tuples of all int, all str, or numbers with at least one float.
MetadataValue from_python(const std::string& key, py::handle value) {
  PyObject* object = value.ptr();
  if (PyBool_Check(object)) return object == Py_True;
  if (PyLong_Check(object)) return to_int64(key, value);
  if (PyFloat_Check(object)) return PyFloat_AsDouble(object);
  if (PyUnicode_Check(object)) return to_utf8(key, value);
  if (PyBytes_Check(object)) return Bytes{std::string(value.cast<std::string>())};
  if (!PyList_Check(object) && !PyTuple_Check(object)) {
    bad_value(key, std::string("unsupported metadata value type '") +
                       Py_TYPE(object)->tp_name + "'");
  }
  const py::sequence items = py::reinterpret_borrow<py::sequence>(value);
  if (items.size() == 0) {
    const auto& known = format::known_metadata_types();
    const auto it = known.find(key);
    if (it == known.end()) bad_value(key, "cannot infer the element type of an empty list");
    switch (it->second) {
      case MetadataType::STRING_ARRAY: return std::vector<std::string>{};
      case MetadataType::FLOAT64_ARRAY: return std::vector<double>{};
      default: return std::vector<int64_t>{};
    }
  }
  bool all_str = true, all_int = true, all_number = true;
  for (const py::handle item : items) {
    PyObject* element = item.ptr();
    const bool is_int = PyLong_Check(element) && !PyBool_Check(element);
    all_str = all_str && PyUnicode_Check(element);
    all_int = all_int && is_int;
    all_number = all_number && (is_int || PyFloat_Check(element));
  }
  if (all_str) {
    std::vector<std::string> values;
    for (const py::handle item : items) values.push_back(to_utf8(key, item));
    return values;
  }
  if (all_int) {
    std::vector<int64_t> values;
    for (const py::handle item : items) values.push_back(to_int64(key, item));
    return values;
  }
  if (all_number) {
    std::vector<double> values;
    for (const py::handle item : items) {
      const double number = PyFloat_AsDouble(item.ptr());
      if (number == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        bad_value(key, "integer too large for a float64 array");
      }
      values.push_back(number);
    }
    return values;
  }
  bad_value(key, "list elements must be all int, all str, or numbers (int/float)");
}

Metadata metadata_from_python(const py::dict& dict) {
  Metadata metadata;
  for (const auto& [key, value] : dict) {
    if (!PyUnicode_Check(key.ptr())) throw FormatError("metadata keys must be str");
    const std::string name = key.cast<std::string>();
    metadata.emplace(name, from_python(name, value));
  }
  return metadata;
}

std::vector<py::ssize_t> shape_of(const TensorView& view) {
  return std::vector<py::ssize_t>(view.shape.begin(), view.shape.end());
}

py::tuple shape_tuple(const std::vector<int64_t>& shape) {
  py::tuple tuple(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) tuple[i] = py::int_(shape[i]);
  return tuple;
}

// The tensor's stored bytes, read from the file (the GIL released meanwhile).
void read_bytes(const ModelFile& file, const TensorView& view, void* out, bool verify) {
  py::gil_scoped_release release;
  file.read_tensor(view, out, verify);
}

// The stored bytes: of the stored dtype and the tensor's shape, or, for block dtypes, uint8
// [rows, bytes per row].
py::array raw_copy(const ModelFile& file, const TensorView& view, const char* numpy_dtype,
                   bool verify) {
  std::vector<py::ssize_t> shape = shape_of(view);
  if (is_block_dtype(view.dtype)) shape.back() = row_bytes(view.dtype, view.shape.back());
  py::array array(py::dtype(numpy_dtype), shape);
  read_bytes(file, view, array.mutable_data(), verify);
  return array;
}

// A float32 copy of the tensor's real values (f16/bf16 widened, int8 times its row scale).
py::array dequantized_copy(const ModelFile& file, const TensorView& view, bool verify) {
  switch (view.dtype) {
    case DType::F32: return raw_copy(file, view, "float32", verify);
    case DType::F16: return raw_copy(file, view, "float16", verify).attr("astype")("float32");
    case DType::BF16: {
      std::vector<uint16_t> source(static_cast<size_t>(view.numel()));
      read_bytes(file, view, source.data(), verify);
      py::array_t<float> array(shape_of(view));
      float* target = array.mutable_data();
      for (size_t i = 0; i < source.size(); ++i) {
        const uint32_t bits = uint32_t(source[i]) << 16;
        std::memcpy(&target[i], &bits, sizeof(float));
      }
      return array;
    }
    case DType::INT8: {
      const TensorView& scale = file.tensor(format::scale_name(view.name));
      std::vector<int8_t> source(static_cast<size_t>(view.numel()));
      std::vector<float> scales(static_cast<size_t>(scale.numel()));
      read_bytes(file, view, source.data(), verify);
      read_bytes(file, scale, scales.data(), verify);
      py::array_t<float> array(shape_of(view));
      float* target = array.mutable_data();
      const int64_t rows = view.shape[0];
      const int64_t row_size = view.numel() / rows;
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < row_size; ++c) {
          target[r * row_size + c] = float(source[r * row_size + c]) * scales[r];
        }
      }
      return array;
    }
    case DType::Q8_0:
    case DType::Q4_1: {
      std::vector<unsigned char> source(static_cast<size_t>(view.size_bytes));
      read_bytes(file, view, source.data(), verify);
      py::array_t<float> array(shape_of(view));
      const int64_t rows = view.shape[0], cols = view.shape[1];
      for (int64_t r = 0; r < rows; ++r) {
        kernels::ref::convert_row(source.data(), view.dtype, nullptr, r, cols,
                                  array.mutable_data() + r * cols);
      }
      return array;
    }
  }
  throw FormatError(file.path() + ": tensor '" + view.name + "' has an unknown dtype");
}

const char* numpy_dtype(DType dtype) {
  switch (dtype) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "uint16";
    case DType::INT8: return "int8";
    case DType::Q8_0:
    case DType::Q4_1: return "uint8";
  }
  return "uint8";
}

}  // namespace

void bind_format(py::module_& m) {
  py::class_<ModelFile, std::shared_ptr<ModelFile>>(
      m, "ModelFile",
      "A validated pytransformer model file (docs/format.md): its metadata and tensor "
      "directory, tensors read from the file when asked.")
      .def(py::init([](const py::object& path) {
             const std::string name = py::module_::import("os").attr("fspath")(path).cast<std::string>();
             std::shared_ptr<const ModelFile> file;
             {
               py::gil_scoped_release release;
               file = ModelFile::open(name, format::TensorData::ON_DEMAND);
             }
             return std::const_pointer_cast<ModelFile>(file);
           }),
           py::arg("path"))
      .def_property_readonly("path", &ModelFile::path)
      .def_property_readonly("format_version", &ModelFile::format_version)
      .def_property_readonly("metadata",
                             [](const ModelFile& file) { return metadata_to_python(file.metadata()); })
      .def("tensor_names",
           [](const ModelFile& file) {
             std::vector<std::string> names;
             for (const auto& view : file.tensors()) names.push_back(view.name);
             return names;
           })
      .def(
          "tensor_info",
          [](const ModelFile& file, const std::string& name) {
            const TensorView& view = file.tensor(name);
            return py::make_tuple(dtype_name(view.dtype), shape_tuple(view.shape));
          },
          py::arg("name"), "(dtype name: 'f32', 'f16', 'bf16', 'int8', 'q8_0' or 'q4_1', shape tuple)")
      .def(
          "tensor_offset",
          [](const ModelFile& file, const std::string& name) { return file.tensor(name).offset; },
          py::arg("name"), "Offset of the tensor's bytes in the data section (tied tensors share it).")
      .def(
          "tensor",
          [](const ModelFile& file, const std::string& name, bool dequantize, bool verify) {
            const TensorView& view = file.tensor(name);
            return dequantize ? dequantized_copy(file, view, verify)
                              : raw_copy(file, view, numpy_dtype(view.dtype), verify);
          },
          py::arg("name"), py::arg("dequantize") = true, py::arg("verify") = false,
          "A copy of the tensor, read from the file: float32 values if dequantize, else the "
          "stored dtype (float32, float16, uint16 bit patterns for bf16, int8; q8_0 and q4_1: the "
          "blocks' bytes as uint8 [rows, bytes per row]). verify: check "
          "the bytes read (and an int8 matrix's scales) against the file's checksums; raises "
          "ModelFormatError if they differ or the file is now shorter.")
      .def_property_readonly(
          "has_checksums",
          [](const ModelFile& file) {
            return !file.tensors().empty() && file.tensors().front().crc32.has_value();
          },
          "Whether the file stores a checksum of every tensor (checksum.crc32).")
      .def(
          "verify",
          [](const ModelFile& file) {
            py::gil_scoped_release release;
            return file.verify();
          },
          "Reads every tensor and checks it against its checksum; raises ModelFormatError "
          "naming the first that does not match. Returns the number of tensors checked (0 "
          "for a file written without checksums).")
      .def("__repr__", [](const ModelFile& file) {
        return "<ModelFile '" + file.path() + "' version " +
               std::to_string(file.format_version()) + ", " +
               std::to_string(file.tensors().size()) + " tensors>";
      });

  m.def(
      "_crc32",
      [](const py::bytes& data, uint32_t crc, bool tables) {
        char* bytes = nullptr;
        Py_ssize_t size = 0;
        PyBytes_AsStringAndSize(data.ptr(), &bytes, &size);
        const auto n = static_cast<size_t>(size);
        return tables ? format::crc32_tables(bytes, n, crc) : format::crc32(bytes, n, crc);
      },
      py::arg("data"), py::arg("crc") = 0, py::arg("tables") = false,
      "CRC-32 of the bytes as the reader computes it (zlib.crc32's values, continuing from "
      "crc); tables: the portable implementation instead of PCLMULQDQ. For tests.");

  m.def(
      "expected_tensors",
      [](const py::dict& metadata) {
        const format::ModelConfig config = format::parse_model_config(metadata_from_python(metadata));
        py::list result;
        for (const auto& tensor : format::expected_tensors(config)) {
          result.append(py::make_tuple(tensor.name, shape_tuple(tensor.shape), tensor.quantizable));
        }
        return result;
      },
      py::arg("metadata"),
      "[(name, shape, quantizable)] a file with this metadata must hold; raises "
      "ModelFormatError if the metadata is invalid.");

  m.def(
      "known_metadata_types",
      [] {
        py::dict result;
        for (const auto& [key, type] : format::known_metadata_types()) {
          result[py::str(key)] = static_cast<int>(type);
        }
        return result;
      },
      "{key: value type code} for every metadata key the reader interprets.");
}

}  // namespace pytransformer::python

// Reader of the pytransformer model file (docs/format.md). Memory-maps the file, validates
// everything (header, metadata, tensor directory, config consistency, expected tensor set and
// shapes) in the constructor and throws FormatError naming the file and the problem.
//
// Ownership: a ModelFile owns its mapping; TensorView::data points into it and stays valid as
// long as the ModelFile lives (hold it through a shared_ptr). Immutable after construction, so
// safe to read from several threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "format/dtype.h"
#include "format/model_config.h"

namespace pytransformer::format {

// One metadata value; the alternatives follow the on-disk type codes.
struct Bytes {
  std::string data;  // raw bytes (e.g. a serialized SentencePiece model)
};
using MetadataValue = std::variant<bool, int64_t, double, std::string, Bytes, std::vector<int64_t>,
                                   std::vector<std::string>, std::vector<double>>;
using Metadata = std::map<std::string, MetadataValue>;

// The on-disk value type codes (docs/format.md): MetadataValue's alternative index + 1.
enum class MetadataType : uint8_t {
  BOOL = 1,
  INT64 = 2,
  FLOAT64 = 3,
  STRING = 4,
  BYTES = 5,
  INT64_ARRAY = 6,
  STRING_ARRAY = 7,
  FLOAT64_ARRAY = 8,
};
MetadataType metadata_type(const MetadataValue& value);
const char* metadata_type_name(MetadataType type);  // "int64", "string array", ...

// The type of every key parse_model_config() reads (required and optional ones); other keys
// are ignored by the reader.
const std::map<std::string, MetadataType>& known_metadata_types();

// Checks every key the config needs (presence, type, range, consistency); throws FormatError
// whose message starts with the offending key.
ModelConfig parse_model_config(const Metadata& metadata);

// A tensor inside the mapping. data: dims product elements of dtype, row-major, 64-byte aligned.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  uint64_t offset = 0;  // of data, relative to the data section (tied tensors share it)
  uint64_t size_bytes = 0;

  int64_t numel() const;
};

class ModelFile {
 public:
  // Maps and validates `path`; throws FormatError on any problem.
  static std::shared_ptr<const ModelFile> open(const std::string& path);

  ~ModelFile();
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  const std::string& path() const;
  uint32_t format_version() const;
  const Metadata& metadata() const;
  const ModelConfig& config() const;  // parsed and validated from metadata()

  bool has_tensor(const std::string& name) const;
  // Throws FormatError naming the file if absent.
  const TensorView& tensor(const std::string& name) const;
  const std::vector<TensorView>& tensors() const;  // directory order

  // Lets the system drop the whole pages inside [data, data + bytes) (a tensor's data, e.g.
  // once copied into another layout) from this process's resident memory; reading them
  // again loads them back from the file. Does nothing outside the mapping.
  void release_pages(const void* data, uint64_t bytes) const;

 private:
  ModelFile();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pytransformer::format

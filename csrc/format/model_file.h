// Reader of the pytransformer model file (docs/format.md). Reads the file with pread() (it is
// never memory-mapped), validates everything (header, metadata, tensor directory, config
// consistency, expected tensor set and shapes, the tensors' checksums when the data is read)
// in open() and throws FormatError naming the file and the problem.
//
// A file changed by another process while it is read, truncated or rewritten in place, gives
// a FormatError (a short read, a changed size or modification time, or a checksum that does
// not match), never a signal. Once open() has returned with TensorData::LOAD, nothing refers
// to the file any more: changing, truncating or deleting it does not affect the ModelFile.
//
// Ownership: a ModelFile owns the memory its TensorView::data points into (LOAD); keep it
// alive (through a shared_ptr) while those pointers are used. Immutable after construction
// apart from release_pages(), so safe to read from several threads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
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

// The metadata key of the tensors' checksums (docs/format.md): one CRC-32 per tensor entry.
// ModelFile checks and removes it, so metadata() never holds it.
inline constexpr const char* CHECKSUM_KEY = "checksum.crc32";

// A tensor of the file. data: dims product elements of dtype, row-major, 64-byte aligned, in
// memory the ModelFile owns (TensorData::LOAD); null with TensorData::ON_DEMAND.
struct TensorView {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;
  uint64_t offset = 0;  // of data, relative to the data section (tied tensors share it)
  uint64_t size_bytes = 0;
  std::optional<uint32_t> crc32;  // from `checksum.crc32`; absent in files written without it

  int64_t numel() const;
};

// What ModelFile::open() does with the tensors' bytes.
enum class TensorData {
  // Read the whole data section into memory the ModelFile owns and verify every checksum:
  // TensorView::data points there. The file is closed before open() returns.
  LOAD,
  // Read only the header region (and the int8 scales, to check them); TensorView::data is
  // null and read_tensor() reads a tensor when asked, through the descriptor open() opened
  // (a file replaced by a rename keeps being read from the old one). For describing a file or
  // converting it tensor by tensor without holding all of it.
  ON_DEMAND,
};

class ModelFile {
 public:
  // Reads and validates `path`; throws FormatError on any problem.
  static std::shared_ptr<const ModelFile> open(const std::string& path,
                                               TensorData data = TensorData::LOAD);

  ~ModelFile();
  ModelFile(const ModelFile&) = delete;
  ModelFile& operator=(const ModelFile&) = delete;

  const std::string& path() const;
  TensorData tensor_data() const;  // as opened
  uint32_t format_version() const;
  const Metadata& metadata() const;
  const ModelConfig& config() const;  // parsed and validated from metadata()

  bool has_tensor(const std::string& name) const;
  // Throws FormatError naming the file if absent.
  const TensorView& tensor(const std::string& name) const;
  const std::vector<TensorView>& tensors() const;  // directory order

  // Copies the tensor's bytes (view.size_bytes, view being one of tensors()) to `out`: from
  // memory (LOAD; not after release_pages() of them), or from the file (ON_DEMAND), where
  // `verify` also checks them against the tensor's checksum (LOAD checked every checksum in
  // open()). Throws FormatError if the file is now shorter or the bytes do not match.
  void read_tensor(const TensorView& view, void* out, bool verify = false) const;

  // Checks every tensor's bytes against its checksum, reading them from the file a few MB at a
  // time (ON_DEMAND; LOAD checked them all in open() and reads nothing here); throws
  // FormatError naming the first tensor that does not match. Returns the number of tensor
  // entries that have a checksum: 0 for a file written without them.
  size_t verify() const;

  // Gives back to the system the memory of the whole pages inside [data, data + bytes) (part
  // of a tensor's data, e.g. once copied into another layout): the caller promises not to
  // read those bytes again (they would read as zeros). Does nothing for bytes outside the
  // data read by LOAD, nor for a tensor whose bytes another entry shares (tied weights: the
  // other one may still be read in place).
  void release_pages(const void* data, uint64_t bytes) const;

 private:
  ModelFile();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pytransformer::format

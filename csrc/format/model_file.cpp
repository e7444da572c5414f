// ModelFile: reads a .ptm file and validates all of it (docs/format.md) before any byte is
// handed out. Every count and length is checked against the bytes that remain before it is
// used to allocate or read, so a hostile header cannot cause a large allocation (the header
// region and the data section are never larger than the file).
//
// The file is read with pread(), not memory-mapped: a mapping of a file that another process
// truncates raises SIGBUS on the next read of a page past the new end, and one rewritten in
// place silently changes what the model computes with. Reading gives a short read instead (an
// error), and after open() with TensorData::LOAD nothing refers to the file.
#include "format/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

#include "format/crc32.h"
#include "format/tensor_names.h"
#include "pytransformer/error.h"

namespace pytransformer::format {

namespace {

constexpr char kMagic[8] = {'P', 'Y', 'T', 'R', 'F', 'M', 'R', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr uint64_t kHeaderSize = 64;
constexpr uint64_t kAlignment = 64;
constexpr uint32_t kMaxNameLength = 256;
constexpr int kMaxRank = 4;
// Smallest encodings, used to bound entry counts by the bytes left:
// key length + 1-byte key + type + 1-byte bool value.
constexpr uint64_t kMinMetadataEntrySize = 4 + 1 + 1 + 1;
// name length + 1-byte name + dtype + rank + one dimension + offset + size.
constexpr uint64_t kMinTensorEntrySize = 4 + 1 + 1 + 1 + 8 + 8 + 8;

uint32_t load_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

uint64_t load_u64(const uint8_t* p) {
  return uint64_t(load_u32(p)) | uint64_t(load_u32(p + 4)) << 32;
}

bool valid_utf8(const uint8_t* s, size_t n) {
  size_t i = 0;
  while (i < n) {
    const uint8_t c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t extra;
    uint32_t code;
    if ((c & 0xE0) == 0xC0) {
      extra = 1;
      code = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      code = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      code = c & 0x07;
    } else {
      return false;
    }
    if (n - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return false;
      code = code << 6 | (s[i + k] & 0x3F);
    }
    static constexpr uint32_t kMinCode[4] = {0, 0x80, 0x800, 0x10000};
    if (code < kMinCode[extra] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;  // overlong, out of range or a surrogate
    }
    i += extra + 1;
  }
  return true;
}

// Reads the header region [begin, end) front to back; every read is bounds-checked and
// failures name what was being read.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* base, uint64_t begin, uint64_t end)
      : path_(path), base_(base), pos_(begin), end_(end) {}

  [[noreturn]] void fail(const std::string& problem) const {
    throw FormatError(path_ + ": " + problem);
  }

  uint64_t position() const { return pos_; }
  uint64_t remaining() const { return end_ - pos_; }

  const uint8_t* take(uint64_t n, const std::string& what) {
    if (n > remaining()) {
      fail(what + " (" + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
           ") runs past the end of the header region (" + std::to_string(end_) + " bytes)");
    }
    const uint8_t* p = base_ + pos_;
    pos_ += n;
    return p;
  }
  uint8_t u8(const std::string& what) { return *take(1, what); }
  uint32_t u32(const std::string& what) { return load_u32(take(4, what)); }
  uint64_t u64(const std::string& what) { return load_u64(take(8, what)); }

  // A u64 count of elements of at least `min_element_size` bytes each, checked against the
  // bytes left before anything is allocated for it.
  uint64_t count(const std::string& what, uint64_t min_element_size) {
    const uint64_t n = u64(what);
    if (n > remaining() / min_element_size) {
      fail(what + " " + std::to_string(n) + " exceeds what the remaining " +
           std::to_string(remaining()) + " header bytes can hold");
    }
    return n;
  }

  std::string utf8_string(const std::string& what) {
    const uint64_t length = count(what + " length", 1);
    const uint8_t* p = take(length, what);
    if (!valid_utf8(p, length)) fail(what + " is not valid UTF-8");
    return std::string(reinterpret_cast<const char*>(p), length);
  }

  // A key or tensor name: u32 length 1..256, then characters from `allowed`.
  std::string name(const std::string& what, bool allow_upper) {
    const uint32_t length = u32(what + " length");
    if (length < 1 || length > kMaxNameLength) {
      fail(what + " length " + std::to_string(length) + " is outside 1.." +
           std::to_string(kMaxNameLength));
    }
    const uint8_t* p = take(length, what);
    std::string name(reinterpret_cast<const char*>(p), length);
    for (const unsigned char c : name) {
      const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
                      (allow_upper && c >= 'A' && c <= 'Z');
      if (!ok) fail(what + " contains a character outside " +
                    (allow_upper ? "[A-Za-z0-9_.]" : "[a-z0-9_.]") + " (byte " +
                    std::to_string(c) + " at offset " + std::to_string(p - base_) + ")");
    }
    return name;
  }

 private:
  const std::string& path_;
  const uint8_t* base_;
  uint64_t pos_;
  uint64_t end_;
};

MetadataValue read_value(Cursor& cursor, const std::string& key) {
  const std::string what = "metadata '" + key + "'";
  const uint8_t type = cursor.u8(what + " type");
  switch (static_cast<MetadataType>(type)) {
    case MetadataType::BOOL: {
      const uint8_t value = cursor.u8(what);
      if (value > 1) cursor.fail(what + ": bool value " + std::to_string(value) + " is not 0 or 1");
      return value == 1;
    }
    case MetadataType::INT64:
      return static_cast<int64_t>(cursor.u64(what));
    case MetadataType::FLOAT64: {
      const uint64_t bits = cursor.u64(what);
      double value;
      std::memcpy(&value, &bits, sizeof value);
      return value;
    }
    case MetadataType::STRING:
      return cursor.utf8_string(what);
    case MetadataType::BYTES: {
      const uint64_t length = cursor.count(what + " length", 1);
      const uint8_t* p = cursor.take(length, what);
      return Bytes{std::string(reinterpret_cast<const char*>(p), length)};
    }
    case MetadataType::INT64_ARRAY: {
      const uint64_t n = cursor.count(what + " count", 8);
      std::vector<int64_t> values(n);
      for (auto& value : values) value = static_cast<int64_t>(cursor.u64(what));
      return values;
    }
    case MetadataType::STRING_ARRAY: {
      const uint64_t n = cursor.count(what + " count", 8);
      std::vector<std::string> values(n);
      for (uint64_t i = 0; i < n; ++i) {
        values[i] = cursor.utf8_string(what + " element " + std::to_string(i));
      }
      return values;
    }
    case MetadataType::FLOAT64_ARRAY: {
      const uint64_t n = cursor.count(what + " count", 8);
      std::vector<double> values(n);
      for (auto& value : values) {
        const uint64_t bits = cursor.u64(what);
        std::memcpy(&value, &bits, sizeof value);
      }
      return values;
    }
  }
  cursor.fail(what + " has unknown value type " + std::to_string(type));
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Released on every path out of open().
struct FileDescriptor {
  int fd = -1;

  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  ~FileDescriptor() { close(); }
};

// Page-aligned private anonymous memory for the data section (so release_pages() can give
// whole pages back).
struct DataBuffer {
  void* address = MAP_FAILED;
  uint64_t size = 0;

  ~DataBuffer() {
    if (address != MAP_FAILED) munmap(address, size);
  }
};

// What changes when a file is written, truncated or replaced in place.
struct FileState {
  dev_t device = 0;
  ino_t inode = 0;
  off_t size = 0;
  struct timespec modified = {};

  static FileState of(const struct stat& info) {
    return {info.st_dev, info.st_ino, info.st_size, info.st_mtim};
  }
  bool operator==(const FileState& other) const {
    return device == other.device && inode == other.inode && size == other.size &&
           modified.tv_sec == other.modified.tv_sec && modified.tv_nsec == other.modified.tv_nsec;
  }
};

constexpr uint64_t kReadChunk = uint64_t{1} << 24;  // bytes per pread() call

}  // namespace

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (const int64_t d : shape) n *= d;
  return n;
}

struct ModelFile::Impl {
  std::string path;
  TensorData tensor_data = TensorData::LOAD;
  FileDescriptor file;  // open until open() returns (LOAD) or for the ModelFile's life
  FileState state;      // when opened
  uint64_t file_size = 0;
  uint64_t data_offset = 0;
  DataBuffer data;  // LOAD: the data section
  std::vector<uint8_t> header_region;  // as read, until open() returns
  uint32_t format_version = 0;
  Metadata metadata;
  ModelConfig config;
  std::vector<TensorView> tensors;
  std::map<std::string, size_t> index;  // name -> position in tensors
  // Each distinct byte range of the data section once (tied entries share one), by offset.
  std::vector<const TensorView*> ranges;
  // [offset, offset + size) of the ranges that several entries share.
  std::vector<std::pair<uint64_t, uint64_t>> shared_ranges;

  [[noreturn]] void fail(const std::string& problem) const {
    throw FormatError(path + ": " + problem);
  }
  // detail: what showed it, or empty.
  [[noreturn]] void fail_changed(const std::string& detail) const {
    const bool loading = tensor_data == TensorData::LOAD;
    fail(std::string("the file changed ") +
         (loading ? "while it was being read" : "after it was opened") +
         " (truncated or rewritten by another process" + (detail.empty() ? "" : ": " + detail) +
         (loading ? "); load it again" : "); open it again"));
  }

  void open_file();
  void read_exactly(uint64_t offset, uint64_t size, void* out, const std::string& what) const;
  void read_header();
  void check_tensor_ranges();
  void take_checksums();
  void check_tensor_set() const;
  void load_data();
  void check_crc(const TensorView& view, uint32_t actual) const;  // no-op without a checksum
  void check_scales() const;
  void check_block_scales(const TensorView& view) const;
};

void ModelFile::Impl::open_file() {
  // O_NONBLOCK: opening a FIFO must not wait for a writer (fstat then rejects it).
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (file.fd < 0) {
    const int error = errno;
    if (error == ENOENT) fail("no such file");
    if (error == EACCES) fail("permission denied");
    fail(std::string("cannot open: ") + std::strerror(error));
  }
  struct stat info;
  if (fstat(file.fd, &info) != 0) fail(std::string("cannot stat: ") + std::strerror(errno));
  if (S_ISDIR(info.st_mode)) fail("is a directory, not a model file");
  if (!S_ISREG(info.st_mode)) fail("is not a regular file");
  if (info.st_size == 0) fail("file is empty");
  state = FileState::of(info);
  file_size = static_cast<uint64_t>(info.st_size);
}

// Reads [offset, offset + size) of the file, which fstat() said has file_size bytes: reaching
// its end early means that the file has since been truncated.
void ModelFile::Impl::read_exactly(uint64_t offset, uint64_t size, void* out,
                                   const std::string& what) const {
  auto* p = static_cast<unsigned char*>(out);
  while (size > 0) {
    const size_t request = static_cast<size_t>(std::min(size, kReadChunk));
    const ssize_t got = pread(file.fd, p, request, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      fail("cannot read " + what + ": " + std::strerror(errno));
    }
    if (got == 0) {
      struct stat info;
      const std::string now = fstat(file.fd, &info) == 0
                                  ? "is now " + std::to_string(info.st_size) + " bytes"
                                  : "ends before byte " + std::to_string(offset + 1);
      fail_changed("it " + now + ", not " + std::to_string(file_size) + ", reading " + what);
    }
    p += got;
    offset += static_cast<uint64_t>(got);
    size -= static_cast<uint64_t>(got);
  }
}

void ModelFile::Impl::read_header() {
  uint8_t fixed[kHeaderSize];
  read_exactly(0, std::min<uint64_t>(file_size, kHeaderSize), fixed, "the header");
  const uint8_t* base = fixed;
  if (file_size < sizeof kMagic || std::memcmp(base, kMagic, sizeof kMagic) != 0) {
    fail("not a pytransformer model file (bad magic)");
  }
  if (file_size < kHeaderSize) {
    fail("file is truncated: " + std::to_string(file_size) + " bytes, shorter than the " +
         std::to_string(kHeaderSize) + "-byte header");
  }
  format_version = load_u32(base + 8);
  if (format_version != kFormatVersion) {
    fail("unsupported format version " + std::to_string(format_version) +
         " (this reader supports version " + std::to_string(kFormatVersion) + ")");
  }
  if (load_u32(base + 12) != 0) fail("header flags must be 0");
  const uint64_t metadata_count = load_u64(base + 16);
  const uint64_t tensor_count = load_u64(base + 24);
  data_offset = load_u64(base + 32);
  const uint64_t data_size = load_u64(base + 40);
  for (uint64_t i = 48; i < kHeaderSize; ++i) {
    if (base[i] != 0) fail("reserved header bytes must be zero");
  }
  if (data_offset % kAlignment != 0) {
    fail("data offset " + std::to_string(data_offset) + " is not a multiple of 64");
  }
  if (data_offset < kHeaderSize || data_offset > file_size) {
    fail("data offset " + std::to_string(data_offset) + " is outside the file (" +
         std::to_string(file_size) + " bytes)");
  }
  if (data_size != file_size - data_offset) {
    fail("file is " + std::to_string(file_size) + " bytes but the header says " +
         (data_size > UINT64_MAX - data_offset ? std::string("more than 2^64")
                                                : std::to_string(data_offset + data_size)) +
         " (data offset + data size): truncated or trailing bytes");
  }

  // The whole header region (never more than the file holds).
  header_region.resize(data_offset);
  std::memcpy(header_region.data(), fixed, kHeaderSize);
  read_exactly(kHeaderSize, data_offset - kHeaderSize, header_region.data() + kHeaderSize,
               "the header region");
  base = header_region.data();
  Cursor cursor(path, base, kHeaderSize, data_offset);
  if (metadata_count > cursor.remaining() / kMinMetadataEntrySize) {
    fail("metadata entry count " + std::to_string(metadata_count) +
         " exceeds what the header region can hold");
  }
  for (uint64_t i = 0; i < metadata_count; ++i) {
    std::string key = cursor.name("metadata key " + std::to_string(i), false);
    if (metadata.count(key)) fail("duplicate metadata key '" + key + "'");
    MetadataValue value = read_value(cursor, key);
    metadata.emplace(std::move(key), std::move(value));
  }

  if (tensor_count > cursor.remaining() / kMinTensorEntrySize) {
    fail("tensor entry count " + std::to_string(tensor_count) +
         " exceeds what the header region can hold");
  }
  tensors.reserve(tensor_count);
  for (uint64_t i = 0; i < tensor_count; ++i) {
    TensorView view;
    view.name = cursor.name("tensor name " + std::to_string(i), true);
    const std::string what = "tensor '" + view.name + "'";
    if (index.count(view.name)) fail("duplicate tensor name '" + view.name + "'");
    const uint8_t dtype = cursor.u8(what + " dtype");
    if (dtype > static_cast<uint8_t>(kLastDType)) {
      fail(what + " has unknown dtype code " + std::to_string(dtype));
    }
    view.dtype = static_cast<DType>(dtype);
    const uint8_t rank = cursor.u8(what + " rank");
    if (rank < 1 || rank > kMaxRank) {
      fail(what + " has rank " + std::to_string(rank) + " (must be 1.." +
           std::to_string(kMaxRank) + ")");
    }
    const bool blocks = is_block_dtype(view.dtype);
    uint64_t expected_size = blocks ? block_bytes(view.dtype) : dtype_size(view.dtype);
    for (int d = 0; d < rank; ++d) {
      uint64_t dim = cursor.u64(what + " dimension");
      if (dim < 1) fail(what + " has a zero dimension");
      view.shape.push_back(static_cast<int64_t>(dim));
      if (blocks && d == rank - 1) {
        if (rank != 2) fail(what + " is " + dtype_name(view.dtype) + " but not a matrix");
        if (dim % kBlockValues != 0) {
          fail(what + " is " + dtype_name(view.dtype) + " with " + std::to_string(dim) +
               " columns, not a multiple of " + std::to_string(kBlockValues));
        }
        dim /= kBlockValues;
      }
      if (__builtin_mul_overflow(expected_size, dim, &expected_size) ||
          expected_size > static_cast<uint64_t>(INT64_MAX)) {
        fail(what + " has dimensions whose byte size overflows");
      }
    }
    view.offset = cursor.u64(what + " offset");
    view.size_bytes = cursor.u64(what + " byte size");
    if (view.offset % kAlignment != 0) {
      fail(what + " offset " + std::to_string(view.offset) + " is not a multiple of 64");
    }
    if (view.size_bytes != expected_size) {
      fail(what + " byte size " + std::to_string(view.size_bytes) + " does not match its shape " +
           shape_string(view.shape) + " and dtype " + dtype_name(view.dtype) + " (" +
           std::to_string(expected_size) + " bytes)");
    }
    if (view.offset > data_size || view.size_bytes > data_size - view.offset) {
      fail(what + " extends past the end of the data section");
    }
    index.emplace(view.name, tensors.size());
    tensors.push_back(std::move(view));
  }
  for (uint64_t pos = cursor.position(); pos < data_offset; ++pos) {
    if (base[pos] != 0) {
      fail("nonzero byte at offset " + std::to_string(pos) +
           " in the padding between the tensor directory and the data section");
    }
  }
  check_tensor_ranges();
}

// Tensors either share exactly the same bytes (tied weights) or do not overlap at all.
void ModelFile::Impl::check_tensor_ranges() {
  std::vector<const TensorView*> order;
  order.reserve(tensors.size());
  for (const auto& view : tensors) order.push_back(&view);
  // Ties in directory order (the views' addresses), so that messages are deterministic.
  std::sort(order.begin(), order.end(), [](const TensorView* a, const TensorView* b) {
    if (a->offset != b->offset) return a->offset < b->offset;
    return a->size_bytes != b->size_bytes ? a->size_bytes < b->size_bytes : a < b;
  });
  const TensorView* previous = nullptr;
  uint64_t covered_end = 0;
  for (const TensorView* view : order) {
    if (previous && view->offset == previous->offset && view->size_bytes == previous->size_bytes) {
      if (shared_ranges.empty() || shared_ranges.back().first != view->offset) {
        shared_ranges.emplace_back(view->offset, view->size_bytes);
      }
      continue;
    }
    if (previous && view->offset < covered_end) {
      fail("tensor '" + view->name + "' partially overlaps tensor '" + previous->name + "'");
    }
    previous = view;
    covered_end = view->offset + view->size_bytes;
    ranges.push_back(view);
  }
}

// `checksum.crc32`: one CRC-32 per tensor entry, in directory order (tied entries repeat it).
// Checked, given to the views, and removed from the metadata (it describes the data section,
// not the model).
void ModelFile::Impl::take_checksums() {
  const auto it = metadata.find(CHECKSUM_KEY);
  if (it == metadata.end()) return;
  const std::string key = CHECKSUM_KEY;
  const auto* values = std::get_if<std::vector<int64_t>>(&it->second);
  if (!values) {
    fail(key + ": expected int64 array, got " + metadata_type_name(metadata_type(it->second)));
  }
  if (values->size() != tensors.size()) {
    fail(key + ": has " + std::to_string(values->size()) + " values for " +
         std::to_string(tensors.size()) + " tensors");
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const int64_t value = (*values)[i];
    if (value < 0 || value > int64_t{0xFFFFFFFF}) {
      fail(key + ": value " + std::to_string(i) + " (" + std::to_string(value) +
           ") is not a CRC-32 (0..2^32-1)");
    }
    tensors[i].crc32 = static_cast<uint32_t>(value);
  }
  // Entries sharing bytes must agree (ranges holds the first entry of each range, by offset).
  for (const TensorView& view : tensors) {
    const auto first = std::lower_bound(
        ranges.begin(), ranges.end(), view.offset,
        [](const TensorView* range, uint64_t offset) { return range->offset < offset; });
    if (first != ranges.end() && (*first)->offset == view.offset && *first != &view &&
        (*first)->crc32 != view.crc32) {
      fail(key + ": tensors '" + (*first)->name + "' and '" + view.name +
           "' share their bytes but not their checksum");
    }
  }
  metadata.erase(it);
}

void ModelFile::Impl::check_tensor_set() const {
  std::set<std::string> accounted;
  for (const ExpectedTensor& expected : expected_tensors(config)) {
    const auto it = index.find(expected.name);
    if (it == index.end()) fail("missing tensor '" + expected.name + "'");
    const TensorView& view = tensors[it->second];
    accounted.insert(expected.name);
    if (view.shape != expected.shape) {
      fail("tensor '" + view.name + "' has shape " + shape_string(view.shape) + ", expected " +
           shape_string(expected.shape));
    }
    if (!expected.quantizable) {
      if (view.dtype != DType::F32) {
        fail("tensor '" + view.name + "' is " + dtype_name(view.dtype) + ", expected f32");
      }
      continue;
    }
    if (view.dtype != DType::INT8) continue;
    const std::string scale = scale_name(view.name);
    const auto scale_it = index.find(scale);
    if (scale_it == index.end()) {
      fail("tensor '" + view.name + "' is int8 but '" + scale + "' is missing");
    }
    const TensorView& scale_view = tensors[scale_it->second];
    accounted.insert(scale);
    if (scale_view.dtype != DType::F32 || scale_view.shape != std::vector<int64_t>{view.shape[0]}) {
      fail("tensor '" + scale + "' must be f32 of shape [" + std::to_string(view.shape[0]) +
           "], got " + dtype_name(scale_view.dtype) + " " + shape_string(scale_view.shape));
    }
    const std::string input_scale = input_scale_name(view.name);
    const auto input_it = index.find(input_scale);
    if (input_it != index.end()) {
      const TensorView& input_view = tensors[input_it->second];
      accounted.insert(input_scale);
      if (input_view.dtype != DType::F32 || input_view.shape != std::vector<int64_t>{1}) {
        fail("tensor '" + input_scale + "' must be f32 of shape [1], got " +
             dtype_name(input_view.dtype) + " " + shape_string(input_view.shape));
      }
    }
  }
  for (const auto& view : tensors) {
    if (!accounted.count(view.name)) {
      fail("unexpected tensor '" + view.name + "' (not in the expected set for this config)");
    }
  }
}

// Reads the data section into private memory, then checks that the file is still the one
// fstat() described and that every range matches its checksum: a file truncated meanwhile
// gives a short read, one rewritten in place a new modification time or a wrong checksum.
void ModelFile::Impl::load_data() {
  const uint64_t size = file_size - data_offset;
  if (size == 0) return;
  data.address = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (data.address == MAP_FAILED) {
    fail("cannot allocate " + std::to_string(size) + " bytes for the tensors: " +
         std::strerror(errno));
  }
  data.size = size;
  // Transparent huge pages when the system allows them: faulting in 4 KB pages costs more
  // than the copy (OPUS-MT f32, 284 MB: ~170 ms of reading instead of ~70 ms). Advice only.
#ifdef MADV_HUGEPAGE
  madvise(data.address, size, MADV_HUGEPAGE);
#endif
  read_exactly(data_offset, size, data.address, "the data section");
  // A writer rewriting the file in place while the header was read could have left a header
  // whose first entries are new and the rest old, each matching the data read after it;
  // reading the header again tells (and the modification time, unless within one tick).
  std::vector<uint8_t> again(header_region.size());
  read_exactly(0, again.size(), again.data(), "the header region");
  struct stat info;
  if (fstat(file.fd, &info) != 0) fail(std::string("cannot stat: ") + std::strerror(errno));
  if (again != header_region || !(FileState::of(info) == state)) fail_changed("");
  const auto* base = static_cast<const uint8_t*>(data.address);
  for (auto& view : tensors) view.data = base + view.offset;
  for (const TensorView* range : ranges) {
    if (range->crc32) check_crc(*range, crc32(range->data, range->size_bytes));
  }
}

void ModelFile::Impl::check_crc(const TensorView& view, uint32_t actual) const {
  if (!view.crc32 || actual == *view.crc32) return;
  char numbers[64];
  std::snprintf(numbers, sizeof numbers, "CRC-32 %08x, expected %08x", actual, *view.crc32);
  fail("tensor '" + view.name + "' does not match its checksum (" + numbers +
       "): the file is corrupt, or changed " +
       (tensor_data == TensorData::LOAD ? "while being read" : "after it was opened"));
}

// Every int8 scale is finite and positive (check_tensor_set() checked their shapes).
// Every block's f16 d (and m) is finite: an exponent field of all ones is inf or NaN. Checked
// where the tensor's bytes are in memory (TensorData::LOAD, what models are built from).
void ModelFile::Impl::check_block_scales(const TensorView& view) const {
  if (!view.data) return;
  const auto* bytes = static_cast<const unsigned char*>(view.data);
  const size_t stride = block_bytes(view.dtype);
  const int halves = view.dtype == DType::Q4_1 ? 2 : 1;
  const uint64_t blocks = view.size_bytes / stride;
  for (uint64_t b = 0; b < blocks; ++b) {
    for (int h = 0; h < halves; ++h) {
      const unsigned char high = bytes[b * stride + 2 * h + 1];  // little-endian f16
      if ((high & 0x7c) == 0x7c) {
        const int64_t blocks_per_row = view.shape[1] / kBlockValues;
        fail("tensor '" + view.name + "' row " + std::to_string(b / blocks_per_row) + " block " +
             std::to_string(b % blocks_per_row) + " has a non-finite " + (h ? "m" : "d"));
      }
    }
  }
}

void ModelFile::Impl::check_scales() const {
  std::vector<float> values;
  for (const TensorView& view : tensors) {
    if (is_block_dtype(view.dtype)) check_block_scales(view);
    if (view.dtype != DType::INT8) continue;
    const TensorView& scale = tensors[index.at(scale_name(view.name))];
    const float* scales = static_cast<const float*>(scale.data);
    if (!scales) {
      values.resize(static_cast<size_t>(scale.numel()));
      read_exactly(data_offset + scale.offset, scale.size_bytes, values.data(),
                   "tensor '" + scale.name + "'");
      scales = values.data();
    }
    for (int64_t r = 0; r < scale.numel(); ++r) {
      if (!(std::isfinite(scales[r]) && scales[r] > 0.0f)) {
        fail("tensor '" + scale.name + "' row " + std::to_string(r) +
             " is not a finite positive scale");
      }
    }
    const auto input = index.find(input_scale_name(view.name));
    if (input == index.end()) continue;
    const TensorView& input_view = tensors[input->second];
    float step = 0.0f;
    if (input_view.data) {
      std::memcpy(&step, input_view.data, sizeof(step));
    } else {
      read_exactly(data_offset + input_view.offset, sizeof(step), &step,
                   "tensor '" + input_view.name + "'");
    }
    if (!(std::isfinite(step) && step >= FLT_MIN)) {
      fail("tensor '" + input_view.name + "' is not a finite positive scale");
    }
  }
}

ModelFile::ModelFile() : impl_(std::make_unique<Impl>()) {}
ModelFile::~ModelFile() = default;

std::shared_ptr<const ModelFile> ModelFile::open(const std::string& path, TensorData data) {
  std::shared_ptr<ModelFile> file(new ModelFile());
  Impl& impl = *file->impl_;
  impl.path = path;
  impl.tensor_data = data;
  impl.open_file();
  impl.read_header();
  impl.take_checksums();
  try {
    impl.config = parse_model_config(impl.metadata);
  } catch (const FormatError& e) {
    impl.fail(e.what());
  }
  impl.check_tensor_set();
  if (data == TensorData::LOAD) {
    impl.load_data();
    impl.file.close();
  }
  impl.header_region = {};
  impl.check_scales();
  return file;
}

const std::string& ModelFile::path() const { return impl_->path; }
TensorData ModelFile::tensor_data() const { return impl_->tensor_data; }
uint32_t ModelFile::format_version() const { return impl_->format_version; }
const Metadata& ModelFile::metadata() const { return impl_->metadata; }
const ModelConfig& ModelFile::config() const { return impl_->config; }

bool ModelFile::has_tensor(const std::string& name) const { return impl_->index.count(name) != 0; }

const TensorView& ModelFile::tensor(const std::string& name) const {
  const auto it = impl_->index.find(name);
  if (it == impl_->index.end()) impl_->fail("no tensor named '" + name + "'");
  return impl_->tensors[it->second];
}

const std::vector<TensorView>& ModelFile::tensors() const { return impl_->tensors; }

void ModelFile::read_tensor(const TensorView& view, void* out, bool verify) const {
  if (view.data) {
    std::memcpy(out, view.data, view.size_bytes);
    return;
  }
  impl_->read_exactly(impl_->data_offset + view.offset, view.size_bytes, out,
                      "tensor '" + view.name + "'");
  if (verify && view.crc32) impl_->check_crc(view, crc32(out, view.size_bytes));
}

size_t ModelFile::verify() const {
  const Impl& impl = *impl_;
  size_t checked = 0;
  for (const TensorView& view : impl.tensors) checked += view.crc32.has_value();
  if (impl.tensor_data == TensorData::LOAD || checked == 0) return checked;
  std::vector<unsigned char> buffer;
  for (const TensorView* range : impl.ranges) {
    if (!range->crc32) continue;
    buffer.resize(static_cast<size_t>(std::min(range->size_bytes, kReadChunk)));
    uint32_t crc = 0;
    for (uint64_t done = 0; done < range->size_bytes;) {
      const uint64_t n = std::min<uint64_t>(buffer.size(), range->size_bytes - done);
      impl.read_exactly(impl.data_offset + range->offset + done, n, buffer.data(),
                        "tensor '" + range->name + "'");
      crc = crc32(buffer.data(), n, crc);
      done += n;
    }
    impl.check_crc(*range, crc);
  }
  return checked;
}

void ModelFile::release_pages(const void* data, uint64_t bytes) const {
  const DataBuffer& buffer = impl_->data;
  if (buffer.address == MAP_FAILED) return;
  const auto base = reinterpret_cast<uintptr_t>(buffer.address);
  const auto begin = reinterpret_cast<uintptr_t>(data);
  if (begin < base || begin - base > buffer.size || bytes > buffer.size - (begin - base)) {
    return;
  }
  const uint64_t offset = begin - base;
  for (const auto& [shared, size] : impl_->shared_ranges) {
    if (offset < shared + size && shared < offset + bytes) return;
  }
  const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t first = (begin + page - 1) / page * page;
  const uintptr_t last = (begin + bytes) / page * page;
  // Advice only: a failure leaves the pages resident, which is harmless.
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

}  // namespace pytransformer::format

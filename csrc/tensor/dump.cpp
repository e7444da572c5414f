#include "tensor/dump.h"

#include <cstdlib>
#include <fstream>
#include <vector>

namespace pytransformer::tensor {
namespace {

const std::string& dump_directory() {
  static const std::string directory = [] {
    const char* value = std::getenv("PYTRANSFORMER_DUMP_DIR");
    return std::string(value ? value : "");
  }();
  return directory;
}

}  // namespace

bool dump_enabled() { return !dump_directory().empty(); }

void dump(const std::string& name, const Tensor& value) {
  if (!dump_enabled()) return;
  std::string shape = "(";
  for (int64_t d : value.shape()) shape += std::to_string(d) + ",";
  shape += ")";
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  // NPY v1: magic, version, u16 header length; header padded with spaces to a multiple of 64
  // and ended by a newline.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::ofstream out(dump_directory() + "/" + name + ".npy", std::ios::binary);
  const unsigned char preamble[8] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out.write(reinterpret_cast<const char*>(preamble), sizeof(preamble));
  const unsigned char length[2] = {static_cast<unsigned char>(header.size() & 0xff),
                                   static_cast<unsigned char>(header.size() >> 8)};
  out.write(reinterpret_cast<const char*>(length), sizeof(length));
  out.write(header.data(), static_cast<std::streamsize>(header.size()));
  const size_t bytes = sizeof(float) * static_cast<size_t>(value.numel());
  std::vector<float> host(static_cast<size_t>(value.numel()));  // a device tensor comes to the host
  value.allocator().copy_to_host(value.data(), bytes, host.data());
  out.write(reinterpret_cast<const char*>(host.data()), static_cast<std::streamsize>(bytes));
}

}  // namespace pytransformer::tensor

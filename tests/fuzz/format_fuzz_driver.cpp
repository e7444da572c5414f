// Opens each file given on the command line with the C++ reader as the extension's ModelFile
// does (TensorData::ON_DEMAND); for files that open, reads every byte of every tensor and the
// whole metadata. Then opens it as a model does (TensorData::LOAD: the whole data section,
// checksums verified, so files whose data was mutated are rejected) and reads every tensor in
// place. Exits 1 if anything but FormatError is thrown. Built with sanitizers by
// build_asan_driver.sh and fed by fuzz_format.py --driver; "opened" counts the first opens.
#include <cstdio>
#include <exception>
#include <vector>

#include "format/model_file.h"
#include "pytransformer/error.h"

int main(int argc, char** argv) {
  using pytransformer::format::ModelFile;
  using pytransformer::format::TensorData;
  unsigned long opened = 0, rejected = 0, checksum = 0;
  std::vector<unsigned char> buffer;
  for (int i = 1; i < argc; ++i) {
    try {
      const auto file = ModelFile::open(argv[i], TensorData::ON_DEMAND);
      for (const auto& view : file->tensors()) {
        buffer.resize(view.size_bytes);
        file->read_tensor(view, buffer.data());
        for (const unsigned char byte : buffer) checksum += byte;
        checksum += static_cast<unsigned long>(view.numel());
      }
      for (const auto& entry : file->metadata()) checksum += entry.first.size();
      checksum += static_cast<unsigned long>(file->config().d_model);
      ++opened;
    } catch (const pytransformer::FormatError&) {
      ++rejected;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: unexpected exception: %s\n", argv[i], e.what());
      return 1;
    }
    try {
      const auto file = ModelFile::open(argv[i], TensorData::LOAD);
      for (const auto& view : file->tensors()) {
        const auto* bytes = static_cast<const unsigned char*>(view.data);
        for (uint64_t b = 0; b < view.size_bytes; ++b) checksum += bytes[b];
      }
    } catch (const pytransformer::FormatError&) {
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: unexpected exception: %s\n", argv[i], e.what());
      return 1;
    }
  }
  std::printf("%lu opened, %lu rejected (checksum %lu)\n", opened, rejected, checksum);
  return 0;
}

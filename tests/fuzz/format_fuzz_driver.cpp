// Opens each file given on the command line with the C++ reader; for files that open, reads
// every byte of every tensor and the whole metadata. Exits 1 if anything but FormatError is
// thrown. Built with sanitizers by build_asan_driver.sh and fed by fuzz_format.py --driver.
#include <cstdio>
#include <exception>

#include "format/model_file.h"
#include "pytransformer/error.h"

int main(int argc, char** argv) {
  using pytransformer::format::ModelFile;
  unsigned long opened = 0, rejected = 0, checksum = 0;
  for (int i = 1; i < argc; ++i) {
    try {
      const auto file = ModelFile::open(argv[i]);
      for (const auto& view : file->tensors()) {
        const auto* bytes = static_cast<const unsigned char*>(view.data);
        for (uint64_t b = 0; b < view.size_bytes; ++b) checksum += bytes[b];
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
  }
  std::printf("%lu opened, %lu rejected (checksum %lu)\n", opened, rejected, checksum);
  return 0;
}

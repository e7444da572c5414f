// CRC-32 (ISO-HDLC: the polynomial and conventions of zlib's crc32(), Python's zlib.crc32):
// the checksum the model file stores per tensor (docs/format.md, `checksum.crc32`).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pytransformer::format {

// The CRC-32 of `size` bytes at `data` continuing from `crc` (the CRC-32 of the bytes before
// them; 0 to start): crc32(b, n, crc32(a, m)) is the CRC-32 of a followed by b.
// Uses PCLMULQDQ when the CPU has it (x86-64), else crc32_tables().
uint32_t crc32(const void* data, size_t size, uint32_t crc = 0);

// The same by table lookups alone, on any CPU (tests compare both with zlib).
uint32_t crc32_tables(const void* data, size_t size, uint32_t crc = 0);

}  // namespace pytransformer::format

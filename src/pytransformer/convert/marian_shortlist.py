"""Reader of Marian's binary lexical shortlists (`lex.*.s2t.bin`, Bergamot / Firefox
Translations): for each source vocabulary id, the target ids the decoder may produce.

The format (Marian's src/data/shortlist.{h,cpp}, BinaryShortlistGenerator), all integers
little-endian:

| size | field |
| --- | --- |
| 8 | `u64` magic `0xF11A48D5013417F5` |
| 8 | `u64` checksum of the 8-byte words from `firstNum` on (see below) |
| 8 | `u64` firstNum: the target ids 0..firstNum-1 (the most frequent) are always allowed |
| 8 | `u64` bestNum: at most this many targets were kept per source id |
| 8 | `u64` O, the number of offsets (source vocabulary size + 1) |
| 8 | `u64` L, the number of target ids |
| 8 × O | `u64` offsets: source id `s` has the targets `L[offsets[s]:offsets[s+1]]` |
| 4 × L | `u32` target ids, sorted within each source id |

The file is exactly `48 + 8·O + 4·L` bytes. The checksum is Marian's
`util::hashMem<uint64_t, uint64_t>` of the 8-byte words from `firstNum` to the end of the file
(a trailing 4-byte half word is not hashed): boost's `hash_combine` over the words
with `std::hash<uint64_t>` (the identity): `seed ^= word + 0x9e3779b9 + (seed << 6) + (seed >> 2)`
modulo 2^64, from seed 0.

When translating, Marian allows per batch the ids below firstNum, the targets of every source
id of the batch, and then the next unselected ids from firstNum on until the count is a
multiple of eight (intgemm's tile size); `LexicalShortlist.allowed_targets` computes that set.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from pytransformer.convert._common import ConversionError
from pytransformer.shortlist import Shortlist

SHORTLIST_MAGIC = 0xF11A48D5013417F5
_HEADER = struct.Struct("<6Q")
_MASK = (1 << 64) - 1


@dataclass(frozen=True, eq=False)
class LexicalShortlist:
    """A binary lexical shortlist: `targets[offsets[s]:offsets[s + 1]]` are the target ids of
    source id `s` (sorted)."""

    path: Path
    first_num: int
    best_num: int
    offsets: np.ndarray  # uint64 [source_vocab_size + 1]
    targets: np.ndarray  # uint32 [offsets[-1]]

    @property
    def source_vocab_size(self) -> int:
        return len(self.offsets) - 1

    def counts(self) -> np.ndarray:
        """How many target ids each source id has (int64 [source_vocab_size])."""
        return np.diff(self.offsets.astype(np.int64))

    def targets_of(self, source_id: int) -> np.ndarray:
        """The target ids of `source_id` (uint32, sorted)."""
        if not 0 <= source_id < self.source_vocab_size:
            raise IndexError(f"source id {source_id} outside 0..{self.source_vocab_size - 1}")
        return self.targets[int(self.offsets[source_id]):int(self.offsets[source_id + 1])]

    def allowed_targets(self, source_ids: Iterable[int], target_vocab_size: int) -> np.ndarray:
        """The sorted target ids Marian's BinaryShortlistGenerator::generate allows for a batch
        whose sources hold `source_ids` (pytransformer.shortlist.Shortlist.allowed_ids)."""
        ids = list(set(int(s) for s in source_ids))
        for source_id in ids:
            self.targets_of(source_id)  # IndexError outside the vocabulary
        shortlist = Shortlist(self.first_num, self.offsets.astype(np.int64),
                              self.targets.astype(np.int64))
        return shortlist.allowed_ids(ids, target_vocab_size).astype(np.uint32)

    def metadata(self) -> dict[str, object]:
        """The `shortlist.*` metadata of a converted model (pytransformer.shortlist)."""
        return {"shortlist.first": self.first_num,
                "shortlist.offsets": self.offsets.astype(np.int64),
                "shortlist.targets": self.targets.astype(np.int64)}


def marian_hash(words: np.ndarray) -> int:
    """util::hashMem<uint64_t, uint64_t> over `words` (uint64)."""
    seed = 0
    for word in words.tolist():
        seed ^= (word + 0x9E3779B9 + ((seed << 6) & _MASK) + (seed >> 2)) & _MASK
    return seed


def read_shortlist(path: str | Path, *, source_vocab_size: int | None = None,
                   target_vocab_size: int | None = None,
                   verify_checksum: bool = True) -> LexicalShortlist:
    """Reads a binary lexical shortlist, checking its magic, its size against the header's
    counts, its checksum (as Marian does when told to check it) and its content: offsets that
    never decrease and end at the number of target ids, and — when the vocabulary sizes are
    given — one offset per source id + 1 and target ids below target_vocab_size. (Marian's
    own content check also refuses trailing source ids without targets, an offset equal to L
    before the last one; those are accepted here.) ConversionError naming the file and the
    problem otherwise."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConversionError(f"{path}: cannot read: {error.strerror or error}") from None

    def fail(message: str) -> ConversionError:
        return ConversionError(f"{path}: not a valid Marian binary shortlist: {message}")

    if len(data) < _HEADER.size:
        raise fail(f"{len(data)} bytes, shorter than its {_HEADER.size}-byte header")
    magic, checksum, first_num, best_num, offset_count, target_count = _HEADER.unpack_from(data)
    if magic != SHORTLIST_MAGIC:
        raise fail(f"magic {magic:#018x}, expected {SHORTLIST_MAGIC:#018x}")
    expected = _HEADER.size + 8 * offset_count + 4 * target_count
    if expected != len(data):
        raise fail(f"its header counts {offset_count} offsets and {target_count} target ids "
                   f"({expected} bytes), the file is {len(data)} bytes")
    if offset_count < 1:
        raise fail("no offsets")
    if verify_checksum:
        words = np.frombuffer(data, "<u8", (len(data) - 16) // 8, 16)
        actual = marian_hash(words)
        if actual != checksum:
            raise fail(f"checksum {actual:#018x} does not match the header's {checksum:#018x} "
                       "(the file is corrupt)")
    offsets = np.frombuffer(data, "<u8", offset_count, _HEADER.size)
    targets = np.frombuffer(data, "<u4", target_count, _HEADER.size + 8 * offset_count)
    if np.any(offsets[1:] < offsets[:-1]) or int(offsets[-1]) != target_count:
        raise fail("its offsets decrease or do not end at the number of target ids")
    if source_vocab_size is not None and offset_count - 1 != source_vocab_size:
        raise fail(f"{offset_count - 1} source ids, the source vocabulary has "
                   f"{source_vocab_size}")
    if target_vocab_size is not None and target_count and int(targets.max()) >= target_vocab_size:
        raise fail(f"target id {int(targets.max())} is outside the target vocabulary of "
                   f"{target_vocab_size}")
    return LexicalShortlist(path, first_num, best_num, offsets, targets)

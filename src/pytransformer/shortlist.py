"""Lexical shortlists: the target ids a translation may use, from the words of its sources.

A model converted from a Marian model with a lexical shortlist (Bergamot / Firefox
Translations: `lex.*.s2t.bin`) carries it in its metadata (docs/format.md, `shortlist.*`):
`shortlist.first` (ids below it are always allowed: the most frequent words), and for each
source id `s` the target ids `shortlist.targets[shortlist.offsets[s]:shortlist.offsets[s+1]]`.
Translator suppresses every other target id in a call (`allowed_ids`), as Marian restricts its
output layer per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

# Marian pads a batch's set with further ids up to a multiple of this (intgemm's tile width).
_PADDING = 8


@dataclass(frozen=True, eq=False)
class Shortlist:
    first: int
    offsets: np.ndarray  # int64 [source_vocab_size + 1]
    targets: np.ndarray  # int64 [offsets[-1]]

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Shortlist | None:
        """The model's shortlist, or None when it has none; ValueError when malformed."""
        if "shortlist.targets" not in metadata:
            return None
        first = int(metadata["shortlist.first"])
        offsets = np.asarray(metadata["shortlist.offsets"], dtype=np.int64)
        targets = np.asarray(metadata["shortlist.targets"], dtype=np.int64)
        if (first < 0 or offsets.ndim != 1 or len(offsets) < 2 or offsets[0] != 0
                or np.any(np.diff(offsets) < 0) or offsets[-1] != len(targets)):
            raise ValueError("the model's shortlist.* metadata is inconsistent")
        return cls(first, offsets, targets)

    def allowed_ids(self, source_ids: Iterable[int], target_vocab_size: int) -> np.ndarray:
        """Sorted target ids allowed for sources holding `source_ids`: those below `first`,
        the targets of each source id, then the next unselected ids from `first` on until the
        count is a multiple of 8 (Marian's BinaryShortlistGenerator)."""
        allowed = np.zeros(target_vocab_size, bool)
        allowed[:min(self.first, target_vocab_size)] = True
        for source_id in set(int(s) for s in source_ids):
            if 0 <= source_id < len(self.offsets) - 1:
                chosen = self.targets[self.offsets[source_id]:self.offsets[source_id + 1]]
                allowed[chosen[chosen < target_vocab_size]] = True
        missing = (-int(allowed.sum())) % _PADDING
        if missing:
            free = np.flatnonzero(~allowed[self.first:])[:missing] + self.first
            allowed[free] = True
        return np.flatnonzero(allowed)

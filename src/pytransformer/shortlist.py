"""Lexical shortlists: the target ids a translation may use, from the words of its sources.

A model converted from a Marian model with a lexical shortlist (Bergamot / Firefox
Translations: `lex.*.s2t.bin`), or given one by `pytransformer shortlist` (build_shortlist,
from parallel text), carries it in its metadata (docs/format.md, `shortlist.*`):
`shortlist.first` (ids below it are always allowed: Marian's most frequent words),
optionally `shortlist.always` (further ids always allowed), and for each source id `s` the
target ids `shortlist.targets[shortlist.offsets[s]:shortlist.offsets[s+1]]`. Translator gives
each sentence its allowed ids (`allowed_ids`): the core normalises its scores over them and
computes the output layer only for the union of a batch's lists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import numpy as np

# Marian pads a batch's set with further ids up to a multiple of this (intgemm's tile width).
_PADDING = 8


@dataclass(frozen=True, eq=False)
class Shortlist:
    first: int
    offsets: np.ndarray  # int64 [source_vocab_size + 1]
    targets: np.ndarray  # int64 [offsets[-1]]
    # int64, ids allowed besides those below first
    always: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Shortlist | None:
        """The model's shortlist, or None when it has none; ValueError when malformed."""
        if "shortlist.targets" not in metadata:
            return None
        first = int(metadata["shortlist.first"])
        offsets = np.asarray(metadata["shortlist.offsets"], dtype=np.int64)
        targets = np.asarray(metadata["shortlist.targets"], dtype=np.int64)
        always = np.asarray(metadata.get("shortlist.always", []), dtype=np.int64)
        if (first < 0 or offsets.ndim != 1 or len(offsets) < 2 or offsets[0] != 0
                or np.any(np.diff(offsets) < 0) or offsets[-1] != len(targets)
                or always.ndim != 1 or np.any(always < 0) or np.any(targets < 0)):
            raise ValueError("the model's shortlist.* metadata is inconsistent")
        return cls(first, offsets, targets, always)

    def metadata(self) -> dict[str, Any]:
        """The shortlist.* keys that from_metadata reads back."""
        keys: dict[str, Any] = {"shortlist.first": int(self.first),
                                "shortlist.offsets": self.offsets.tolist(),
                                "shortlist.targets": self.targets.tolist()}
        if len(self.always):
            keys["shortlist.always"] = self.always.tolist()
        return keys

    def allowed_ids(self, source_ids: Iterable[int], target_vocab_size: int) -> np.ndarray:
        """Sorted target ids allowed for sources holding `source_ids`: those below `first`
        and in `always`, the targets of each source id, then the next unselected ids from
        `first` on until the count is a multiple of 8 (Marian's BinaryShortlistGenerator)."""
        allowed = np.zeros(target_vocab_size, bool)
        allowed[:min(self.first, target_vocab_size)] = True
        allowed[self.always[self.always < target_vocab_size]] = True
        for source_id in set(int(s) for s in source_ids):
            if 0 <= source_id < len(self.offsets) - 1:
                chosen = self.targets[self.offsets[source_id]:self.offsets[source_id + 1]]
                allowed[chosen[chosen < target_vocab_size]] = True
        missing = (-int(allowed.sum())) % _PADDING
        if missing:
            free = np.flatnonzero(~allowed[self.first:])[:missing] + self.first
            allowed[free] = True
        return np.flatnonzero(allowed)


def build_shortlist(pairs: Iterable[tuple[str, str]], source_ids: Callable[[str], list[int]],
                    target_ids: Callable[[str], list[int]], source_vocab_size: int,
                    target_vocab_size: int, *, always: int = 1000, best: int = 100) -> Shortlist:
    """A shortlist from parallel text (`pairs` of source and target sentences): the `always`
    target ids most frequent in the targets are always allowed; each source id allows the
    `best` other target ids with the highest count of pairs holding both (co-occurrence; ties
    to the lower id). source_ids(text): the ids the translator gives the core for a source
    (Translator.shortlist_from_pairs passes its own); target_ids(text): the target ids of a
    reference translation. An id counts once per sentence."""
    if always < 0 or best < 0:
        raise ValueError("always and best must be >= 0")
    target_count = np.zeros(target_vocab_size, np.int64)
    together: dict[int, dict[int, int]] = {}
    for source, target in pairs:
        targets_here = set(target_ids(target))
        for t in targets_here:
            target_count[t] += 1
        for s in set(source_ids(source)):
            counts = together.setdefault(s, {})
            for t in targets_here:
                counts[t] = counts.get(t, 0) + 1
    frequent = np.argsort(-target_count, kind="stable")[:always]
    frequent = np.sort(frequent[target_count[frequent] > 0]).astype(np.int64)
    excluded = set(frequent.tolist())
    offsets, targets = [0], []
    for s in range(source_vocab_size):
        counts = together.get(s, {})
        ranked = sorted((t for t in counts if t not in excluded), key=lambda t: (-counts[t], t))
        targets += sorted(ranked[:best])
        offsets.append(len(targets))
    return Shortlist(0, np.asarray(offsets, np.int64), np.asarray(targets, np.int64), frequent)

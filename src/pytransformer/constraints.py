"""Terms a translation must carry as given: glossary entries and protected spans.

A glossary maps source terms to the target terms a translation must use (`--glossary FILE`,
tab-separated); protected spans are pieces of the source that must come out unchanged (URLs,
e-mail addresses, placeholders such as `{name}` or `%s`, numbers, and any user pattern:
`--keep REGEX`). Both become lexical constraints for each sentence in which they occur:
token sequences that the constrained beam search of the core (docs/decoding.md,
*Constraints*) puts in the translation. This module finds them in the text; Translator turns
them into the target model's pieces.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Pattern, Sequence

from pytransformer.languages import is_cjk_char

# Protected by default (Translator.translate(protect=True), the CLI's --protect).
PROTECTED_PATTERNS: dict[str, str] = {
    "url": r"\b(?:https?|ftp)://[^\s<>\"'，。！？）]+[^\s<>\"'.,;:!?，。！？）)\]]"
           r"|\bwww\.[^\s<>\"'，。]+[^\s<>\"'.,;:!?，。！？）)\]]",
    "email": r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b",
    "placeholder": r"\{[\w.:-]*\}|%(?:\d+\$)?[-+ #0]*\d*(?:\.\d+)?[sdifgxXeEcrou%]"
                   r"|\$\{[\w.]+\}|\{\{[\w. ]+\}\}",
    "number": r"(?<![\w.,:])\d+(?:[.,:]\d+)*(?![\w])",
}


@dataclass(frozen=True)
class Glossary:
    """Source term -> target term, longest source terms matched first."""

    entries: tuple[tuple[str, str], ...]

    @staticmethod
    def from_mapping(terms: Mapping[str, str] | Iterable[tuple[str, str]]) -> Glossary:
        pairs = list(terms.items() if isinstance(terms, Mapping) else terms)
        for source, target in pairs:
            if not isinstance(source, str) or not isinstance(target, str) or \
                    not source.strip() or not target.strip():
                raise ValueError(f"glossary entry {source!r} -> {target!r}: both terms must be "
                                 "non-empty text")
        ordered = sorted(((s.strip(), t.strip()) for s, t in pairs), key=lambda e: -len(e[0]))
        return Glossary(tuple(ordered))

    @staticmethod
    def read(path: str | Path) -> Glossary:
        """A UTF-8 file of `source term<TAB>target term` lines; blank lines and lines starting
        with `#` are skipped. ValueError naming the line for any other line without exactly
        one tab between two non-empty terms."""
        pairs = []
        text = Path(path).read_text(encoding="utf-8-sig")
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            fields = line.split("\t")
            if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
                raise ValueError(f"{path}, line {number}: expected 'source term<TAB>target "
                                 f"term', got {line!r}")
            pairs.append((fields[0], fields[1]))
        return Glossary.from_mapping(pairs)


@functools.lru_cache(maxsize=4096)
def _term_pattern(term: str) -> Pattern[str]:
    """A term as a whole word where it starts or ends in a spaced script (CJK terms anywhere):
    as written, or capitalised at the start of a sentence; a term written in lower case in
    any case."""
    pattern = re.escape(term)
    if term[0].isalpha() and term[0].lower() != term[0].upper() and term == term.lower():
        pattern = "(?i:" + pattern + ")"
    elif term[0].islower():
        pattern = f"[{re.escape(term[0])}{re.escape(term[0].upper())}]" + re.escape(term[1:])
    if not is_cjk_char(term[0]):
        pattern = r"(?<!\w)" + pattern
    if not is_cjk_char(term[-1]):
        pattern += r"(?!\w)"
    return re.compile(pattern)


def required_texts(text: str, glossary: Glossary | None,
                   keep: Sequence[str | Pattern[str]]) -> list[str]:
    """What the translation of `text` must hold, in source order: each span that a `keep`
    pattern matches, as it is, and the glossary's target term for each source term in it. A
    span overlapping one found before (the patterns first, in order, so a URL is kept whole;
    then the glossary terms, longest first) is left out."""
    taken: list[tuple[int, int, str]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= a or start >= b for a, b, _ in taken)

    for pattern in keep:
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        for match in compiled.finditer(text):
            if match.end() > match.start() and free(*match.span()):
                taken.append((match.start(), match.end(), match.group(0)))
    for source, target in glossary.entries if glossary else ():
        for match in _term_pattern(source).finditer(text):
            if free(*match.span()):
                taken.append((match.start(), match.end(), target))
    return [target for _, _, target in sorted(taken)]

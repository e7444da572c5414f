"""Text handling for the CLI: sentence splitting, rejoining and script detection.

Translation models are trained on sentence pairs, so a line holding several sentences is split,
each sentence translated on its own, and the translations rejoined into one output line.
Lines without CJK text are segmented by pysbd (the Golden Rules segmenter: "5 p.m. He was
tired." is two sentences, "U.S. government" one); lines with CJK text, or any line pysbd would
not reproduce exactly, by the rules below. Either way the sentences hold every non-space
character of the line, in order: nothing is ever dropped.
"""

from __future__ import annotations

import functools
import re

from pytransformer.languages import is_cjk_char

# A segment longer than this many characters is cut further at clause punctuation, then at
# spaces, so no single model input gets near the model's position limit.
MAX_SEGMENT_CHARS = 400

_CLOSERS = "\"'”’»)]}」』）】》"
_LATIN_END = ".!?…"
_CJK_END = "。！？"
# Words that end with a period without ending the sentence.
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st vs etc e.g i.e no fig cf approx dept est inc ltd co "
    "jan feb mar apr jun jul aug sep sept oct nov dec mt ave u.s".split()
)
_CLAUSE_BREAK = re.compile(r"(?<=[,;:，；：、])\s*")


def _ends_with_abbreviation(text: str) -> bool:
    word = text.rsplit(None, 1)[-1].rstrip(".").lower() if text.strip() else ""
    if not word:
        return False
    if word in _ABBREVIATIONS:
        return True
    # A single letter ("J. Smith") or an initialism ("U.S.") is not a sentence end.
    return len(word) == 1 or bool(re.fullmatch(r"(?:\w\.)+\w", word))


def split_sentences(line: str) -> list[str]:
    """Splits one line into sentences (whitespace-trimmed). A line without text gives [].

    The sentences joined hold exactly the line's non-space characters, in order."""
    sentences = _segment_latin(line) if not any(map(is_cjk_char, line)) else None
    if sentences is None:
        sentences = _split_by_rules(line)
    return [part for sentence in sentences for part in _cut_long(sentence)]


@functools.lru_cache(maxsize=1)
def _english_segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _without_spaces(text: str) -> str:
    return "".join(text.split())


def _segment_latin(line: str) -> list[str] | None:
    """pysbd's sentences of `line`, or None if they do not reproduce its characters."""
    if not line.strip():
        return []
    sentences: list[str] = []
    for piece in _english_segmenter().segment(line):
        piece = piece.strip()
        if piece and sentences and piece[0].islower():
            sentences[-1] += " " + piece  # a lowercase word continues the sentence
        elif piece:
            sentences.append(piece)
    if "".join(map(_without_spaces, sentences)) != _without_spaces(line):
        return None
    return sentences


def _split_by_rules(line: str) -> list[str]:
    sentences: list[str] = []
    start = 0
    i = 0
    n = len(line)
    while i < n:
        char = line[i]
        if char in _LATIN_END or char in _CJK_END:
            end = i + 1
            while end < n and (line[end] in _LATIN_END or line[end] in _CJK_END):
                end += 1
            while end < n and line[end] in _CLOSERS:
                end += 1
            if _is_boundary(line, start, i, end):
                piece = line[start:end].strip()
                if piece:
                    sentences.append(piece)
                start = end
            i = end
        else:
            i += 1
    rest = line[start:].strip()
    if rest:
        sentences.append(rest)
    return sentences


def _is_boundary(line: str, start: int, mark: int, end: int) -> bool:
    """Whether the punctuation at line[mark] (closers up to `end`) ends a sentence."""
    if end >= len(line):
        return False  # the line's end closes its last sentence anyway
    following = line[end]
    if line[mark] in _CJK_END:
        return True
    if not following.isspace():
        # "3.14", "e.g.x", "...and": no break. A CJK character may follow directly.
        return is_cjk_char(following)
    next_text = line[end:].lstrip()
    if not next_text:
        return False
    first = next_text[0]
    if first.islower():
        return False
    if line[mark] == "." and _ends_with_abbreviation(line[start:mark + 1]):
        return False
    return True


def _cut_long(sentence: str) -> list[str]:
    if len(sentence) <= MAX_SEGMENT_CHARS:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for clause in _CLAUSE_BREAK.split(sentence):
        if current and len(current) + len(clause) + 1 > MAX_SEGMENT_CHARS:
            pieces.append(current)
            current = ""
        current = join_two(current, clause) if current else clause
    if current:
        pieces.append(current)
    result: list[str] = []
    for piece in pieces:
        while len(piece) > MAX_SEGMENT_CHARS:
            cut = piece.rfind(" ", 0, MAX_SEGMENT_CHARS)
            if cut <= 0:
                cut = MAX_SEGMENT_CHARS  # no space at all (CJK): cut anywhere
            result.append(piece[:cut].strip())
            piece = piece[cut:].strip()
        if piece:
            result.append(piece)
    return result


def join_two(left: str, right: str) -> str:
    """Joins two pieces of text with a space, except between CJK text (which uses none)."""
    if not left:
        return right
    if not right:
        return left
    if is_cjk_char(left[-1]) or is_cjk_char(right[0]):
        return left + right
    return left + " " + right


def join_sentences(sentences: list[str]) -> str:
    """Rejoins translated sentences into one line."""
    joined = ""
    for sentence in sentences:
        joined = join_two(joined, sentence.strip())
    return joined

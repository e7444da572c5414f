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
import unicodedata

from pytransformer.languages import is_cjk_char

# A segment sent to the model holds at most this many bytes of UTF-8, each character counted as
# its NFKC form (the normalisation SentencePiece applies first, which expands a few characters:
# "ゟ" is "より"). Every piece of a SentencePiece model (byte fallback included) or of a
# whitespace-split model covers at least one byte of the normalised text, so a segment is at
# most this many pieces plus the word-start mark, the target-language token and the EOS: within
# the 256 positions of the default model, where the former limit of 400 characters let 400 Han
# characters, Hangul or emoji become 400 to 1,600 pieces, which the model's limit then
# truncated. About 250 characters of English, 83 of Chinese.
MAX_SEGMENT_BYTES = 250
# pysbd's time grows with the square of its input (a 300,000-character line: 85 s), so it reads
# a line in chunks of at most this many characters, cut where our rules end a sentence.
PYSBD_CHUNK_CHARS = 1000

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
    """Splits one line into sentences (whitespace-trimmed), each at most MAX_SEGMENT_BYTES as
    segment_size counts. A line without text gives [].

    The sentences joined hold exactly the line's non-space characters, in order."""
    if any(map(is_cjk_char, line)):
        sentences = _split_by_rules(line)
    else:
        sentences = _segment_latin(line)
    return [part for sentence in sentences for part in _cut_long(sentence)]


@functools.lru_cache(maxsize=1)
def _english_segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _without_spaces(text: str) -> str:
    return "".join(text.split())


def _segment_latin(line: str) -> list[str]:
    """pysbd's sentences of `line`, read in chunks of our rules' sentences of at most
    PYSBD_CHUNK_CHARS characters together; a chunk that pysbd would not reproduce exactly, and a
    longer single sentence (cut by _cut_long anyway), keep our rules' sentences."""
    sentences: list[str] = []
    for chunk in _chunks(_split_by_rules(line)):
        found = _pysbd_sentences(" ".join(chunk)) if len(chunk[0]) <= PYSBD_CHUNK_CHARS else None
        sentences.extend(chunk if found is None else found)
    return sentences


def _chunks(sentences: list[str]) -> list[list[str]]:
    """Consecutive sentences grouped up to PYSBD_CHUNK_CHARS characters (joined by spaces); a
    longer sentence is a chunk of its own."""
    chunks: list[list[str]] = []
    size = 0
    for sentence in sentences:
        if chunks and size + 1 + len(sentence) <= PYSBD_CHUNK_CHARS:
            chunks[-1].append(sentence)
            size += 1 + len(sentence)
        else:
            chunks.append([sentence])
            size = len(sentence)
    return chunks


def _pysbd_sentences(text: str) -> list[str] | None:
    """pysbd's sentences of `text`, or None if they do not hold exactly its characters."""
    sentences: list[str] = []
    for piece in _english_segmenter().segment(text):
        piece = piece.strip()
        if piece and sentences and piece[0].islower():
            sentences[-1] += " " + piece  # a lowercase word continues the sentence
        elif piece:
            sentences.append(piece)
    if "".join(map(_without_spaces, sentences)) != _without_spaces(text):
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


@functools.lru_cache(maxsize=4096)
def _char_size(char: str) -> int:
    return len(unicodedata.normalize("NFKC", char).encode("utf-8", "surrogatepass"))


def segment_size(text: str) -> int:
    """The size MAX_SEGMENT_BYTES limits: UTF-8 bytes of each character's NFKC form."""
    return len(text) if text.isascii() else sum(map(_char_size, text))


def _fitting_chars(text: str, start: int, budget: int) -> int:
    """How many characters of `text` from `start` on fit in `budget` (as segment_size counts)."""
    used = 0
    for index in range(start, len(text)):
        used += _char_size(text[index])
        if used > budget:
            return index - start
    return len(text) - start


def _cut_long(sentence: str) -> list[str]:
    """`sentence` in pieces of at most MAX_SEGMENT_BYTES: at clause punctuation, then at
    spaces, then (text without spaces, such as Chinese) anywhere."""
    if segment_size(sentence) <= MAX_SEGMENT_BYTES:
        return [sentence]
    pieces: list[str] = []
    current = ""
    for clause in _CLAUSE_BREAK.split(sentence):
        joined = join_two(current, clause)
        if current and segment_size(joined) > MAX_SEGMENT_BYTES:
            pieces.append(current)
            joined = clause
        current = joined
    if current:
        pieces.append(current)
    return [part for piece in pieces for part in _cut_at_spaces(piece)]


def _cut_at_spaces(piece: str) -> list[str]:
    """`piece` in parts of at most MAX_SEGMENT_BYTES, cut at the last space that keeps a part
    within the limit, or anywhere if there is none."""
    parts: list[str] = []
    start = 0
    while start < len(piece):
        if piece[start].isspace():
            start += 1
            continue
        fitting = max(1, _fitting_chars(piece, start, MAX_SEGMENT_BYTES))
        end = start + fitting
        if end < len(piece):
            space = piece.rfind(" ", start, end + 1)
            end = space if space > start else end
        part = piece[start:end].strip()
        if part:
            parts.append(part)
        start = end
    return parts


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

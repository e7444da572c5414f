"""Translating the text of one block of a document (a paragraph, a heading, a table cell) with
its inline markup, and placing that markup at the right words of the translation.

A block's inline content is a tree of Inline nodes over its plain text (character ranges):
spans (bold, links: their words are translated and wrapped again) and atoms (inline code, an
image, a line break: kept byte for byte). The plain text is cut into sentences and translated;
the decoder's cross-attention (Translator.align, the attention `explain` draws) links each
target piece with the source piece it attends to most, and a node's range in the translation
is the hull of the target pieces linked to the source pieces under it. Ranges are then made to
nest as the source's do: inside the parent's range, siblings in their source order and not
overlapping, each non-empty while the translation has words left for it.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from pytransformer.cli.text import join_two, split_sentences
from pytransformer.languages import is_cjk_char

_WORD_BOUNDARY = "\u2581"


@dataclass
class Inline:
    """A span or an atom of a block's inline content. start/end: its characters in the
    block's plain text (an atom with no text, such as an image, has start == end). payload:
    what the format needs to write it again (an element, a Markdown delimiter). After
    placement, target_start/target_end are its characters in the translation."""

    payload: Any
    start: int
    end: int
    atom: bool = False
    children: list[Inline] = field(default_factory=list)
    target_start: int = 0
    target_end: int = 0


@dataclass
class Block:
    """The plain text of one block and its inline tree (the root's children)."""

    text: str
    nodes: list[Inline]


def piece_spans(pieces: Sequence[str], text: str) -> list[tuple[int, int]]:
    """The characters of `text` each SentencePiece piece spells: matched left to right,
    whitespace skipped, compared after NFKC normalisation (which the models' normalisers
    apply); byte-fallback pieces (<0xNN>) share the character their bytes make up. A piece
    that spells nothing (a language token, EOS, a lone word boundary) or that cannot be found
    gets an empty span where matching stands."""
    spans: list[tuple[int, int]] = []
    position = 0
    pending: list[int] = []  # the pieces of a character spelled as bytes
    pending_bytes = bytearray()
    for piece in pieces:
        if len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            pending.append(len(spans))
            spans.append((position, position))
            pending_bytes.append(int(piece[3:5], 16))
            try:
                surface = pending_bytes.decode("utf-8")
            except UnicodeDecodeError:
                continue
            pending_bytes.clear()
            found = _match(text, position, surface)
            if found is not None:
                for index in pending:
                    spans[index] = found
                position = found[1]
            pending.clear()
            continue
        surface = piece.replace(_WORD_BOUNDARY, " ").strip()
        if not surface or (piece.startswith("<") and piece.endswith(">")) or \
                (piece.startswith(">>") and piece.endswith("<<")):
            spans.append((position, position))
            continue
        found = _match(text, position, surface)
        if found is None:
            spans.append((position, position))
        else:
            spans.append(found)
            position = found[1]
    return spans


def _match(text: str, position: int, surface: str) -> tuple[int, int] | None:
    start = position
    while start < len(text) and text[start].isspace():
        start += 1
    if text.startswith(surface, start):
        return start, start + len(surface)
    wanted = unicodedata.normalize("NFKC", surface)
    for length in range(1, len(surface) + 3):
        if unicodedata.normalize("NFKC", text[start:start + length]) == wanted:
            return start, start + length
    return None


@dataclass
class _AlignedSentence:
    """The words of one sentence and its translation (characters in the block's text and in
    the block's translation) and the attention between them [target word, source word]."""

    source_spans: list[tuple[int, int]]
    target_spans: list[tuple[int, int]]
    weights: np.ndarray
    source_start: int  # where the sentence starts in the block and its translation
    target_start: int
    target_words: list[bool] = field(default_factory=list)  # per target span: not punctuation


class _Alignment:
    """The aligned sentences of a block."""

    def __init__(self) -> None:
        self.sentences: list[_AlignedSentence] = []

    def add_sentence(self, source_text: str, attention: Any, source_offset: int,
                     target_offset: int, prefix: int) -> None:
        """attention: Translator.align's Attention of the sentence `source_text` and its
        translation; prefix: the target pieces the model forces before the translation (its
        language code). The attention is averaged over layers and heads."""
        weights = np.asarray(attention.weights, dtype=np.float64).mean(axis=(0, 1))
        source = piece_spans(attention.source_pieces, source_text)
        target = piece_spans(attention.target_pieces[prefix:-1], attention.text)
        rows = [prefix + i for i, (start, end) in enumerate(target) if end > start]
        columns = [j for j, (start, end) in enumerate(source) if end > start]
        self.sentences.append(_AlignedSentence(
            [(source[j][0] + source_offset, source[j][1] + source_offset) for j in columns],
            [(target[i - prefix][0] + target_offset, target[i - prefix][1] + target_offset)
             for i in rows],
            weights[np.ix_(rows, columns)], source_offset, target_offset,
            [not _all_punctuation(attention.text[target[i - prefix][0]:target[i - prefix][1]])
             for i in rows]))

    def copy_sentence(self, text: str, source_offset: int, target_offset: int) -> None:
        """A sentence copied unchanged: each word aligned with itself."""
        spans, start = [], 0
        for word in text.split():
            start = text.index(word, start)
            spans.append((start, start + len(word)))
            start += len(word)
        self.sentences.append(_AlignedSentence(
            [(a + source_offset, b + source_offset) for a, b in spans],
            [(a + target_offset, b + target_offset) for a, b in spans], np.eye(len(spans)),
            source_offset, target_offset, [True] * len(spans)))

    def target_position(self, position: int, source: str) -> int | None:
        """Where to put something that sits between words at `position` of the source (an
        image, a line break): at the start of the sentence it starts, else before the words
        aligned with the source word after it."""
        while position < len(source) and source[position].isspace():
            position += 1
        for sentence in self.sentences:
            if sentence.source_start == position:
                return sentence.target_start
        word_end = position
        while word_end < len(source) and not source[word_end].isspace():
            word_end += 1
        found = self.target_range(position, word_end)
        return found[0] if found is not None else None

    def target_range(self, start: int, end: int) -> tuple[int, int] | None:
        """Where source characters [start, end) went: the hull of the target words whose most
        attended source word is among theirs; if there is none, the one target word that
        attends to theirs most. None when they hold no word."""
        hits: list[tuple[int, int]] = []
        best: tuple[float, tuple[int, int]] | None = None
        for sentence in self.sentences:
            words = [j for j, (a, b) in enumerate(sentence.source_spans)
                     if a < max(end, start + 1) and b > start]
            if not words or not sentence.target_spans:
                continue
            chosen = np.argmax(sentence.weights, axis=1)
            # Punctuation of the translation goes with words only where the source's does.
            rows = [i for i, word in enumerate(sentence.target_words) if word] or \
                list(range(len(sentence.target_spans)))
            hits.extend(sentence.target_spans[i] for i in rows if chosen[i] in words)
            mass = sentence.weights[:, words].sum(axis=1)
            row = max(rows, key=lambda i: mass[i])
            if best is None or mass[row] > best[0]:
                best = (float(mass[row]), sentence.target_spans[row])
        if hits:
            return min(span[0] for span in hits), max(span[1] for span in hits)
        return best[1] if best is not None else None


@dataclass
class BlockTranslation:
    text: str            # the translation of the block's plain text
    nodes: list[Inline]  # the block's nodes, their target ranges set


# Translates sentences: per sentence, (its translation, Translator.align's Attention of the
# pair or None where the sentence was copied unchanged, the target pieces the model forces
# before a translation).
TranslateSentences = Callable[[list[str]], list[tuple[str, Any, int]]]


def translate_blocks(blocks: Sequence[Block], translate: TranslateSentences
                     ) -> list[BlockTranslation]:
    """Translates every block's plain text (its sentences in one call of `translate`) and
    places each block's inline nodes in its translation (their target ranges set)."""
    sentences: list[str] = []
    cuts: list[list[tuple[int, str]]] = []  # per block: (offset, sentence)
    for block in blocks:
        found, position = [], 0
        # Lines (a block's line breaks) are translated apart, and cut into sentences.
        for sentence in (part for line in block.text.split("\n") for part in split_sentences(line)):
            position = block.text.index(sentence, position)
            found.append((position, sentence))
            sentences.append(sentence)
            position += len(sentence)
        cuts.append(found)
    translated = iter(translate(sentences))
    results = []
    for block, found in zip(blocks, cuts):
        alignment = _Alignment()
        output = ""
        for offset, sentence in found:
            target, attention, prefix = next(translated)
            joined = join_two(output, target.strip())
            target_offset = len(joined) - len(target.strip())
            output = joined
            if attention is None:
                alignment.copy_sentence(sentence, offset, target_offset)
            else:
                alignment.add_sentence(sentence, attention, offset, target_offset, prefix)
        _place(block.nodes, alignment, 0, len(output), output, block.text)
        results.append(BlockTranslation(output, block.nodes))
    return results


def _place(nodes: list[Inline], alignment: _Alignment, start: int, end: int,
           output: str, source: str) -> None:
    """Sets the target ranges of sibling `nodes` inside [start, end) of the translation: in
    source order, each after the previous one, at the words aligned with it where possible
    (else at the next word), leaving a word for each later sibling that wraps words; then
    their children inside them."""
    words = _words(output, start, end)
    cursor = start
    for index, node in enumerate(nodes):
        if node.end == node.start:
            position = alignment.target_position(node.start, source)
            wanted = (cursor, cursor) if position is None else (position, position)
        else:
            wanted = alignment.target_range(node.start, node.end) or (cursor, cursor)
        # The words left to the later siblings that wrap source words.
        later = sum(1 for other in nodes[index + 1:] if other.end > other.start)
        limit = words[len(words) - later][0] if 0 < later <= len(words) else end
        node_start = min(max(wanted[0], cursor), end)
        if node.end == node.start:  # an image, a break: before the word aligned with what
            node.target_start = node.target_end = cursor = min(node_start, limit)  # follows
            continue
        node_end = min(max(wanted[1], node_start), end)
        own = [word for word in words if word[0] >= cursor and word[1] <= limit]
        if node_end > limit and own:
            node_end = max(limit, own[0][1]) if node_start >= limit else limit
            node_start = min(node_start, own[-1][0])
        if node_end <= node_start:
            node_end = _next_word_end(output, node_start, end)
        if node_end <= node_start and own:  # past the end: the free word nearest to it
            node_start, node_end = min(own, key=lambda word: abs(word[0] - node_start))
        node.target_start, node.target_end = _trim(output, node_start, node_end,
                                                   source[node.start:node.end])
        cursor = max(cursor, node.target_end)
        if node.children and not node.atom:
            _place(node.children, alignment, node.target_start, node.target_end, output, source)


def _words(output: str, start: int, end: int) -> list[tuple[int, int]]:
    """The words of output[start:end]: runs without spaces, each CJK character one word."""
    found: list[tuple[int, int]] = []
    position = start
    while position < end:
        if output[position].isspace():
            position += 1
            continue
        word_end = _next_word_end(output, position, end)
        found.append((position, word_end))
        position = word_end
    return found


def _next_word_end(output: str, start: int, end: int) -> int:
    position = start
    while position < end and output[position].isspace():
        position += 1
    if position < end and is_cjk_char(output[position]):
        return position + 1
    while position < end and not output[position].isspace():
        position += 1
    return position


def _trim(output: str, start: int, end: int, source: str) -> tuple[int, int]:
    """[start, end) without the spaces at its ends, nor punctuation where the source text
    (what the node wraps there) has none, so "<b>happy</b>." does not become "<b>开心。</b>"."""
    source = source.strip()

    def movable(char: str, source_char: str) -> bool:
        return char.isspace() or (_is_punctuation(char) and not _is_punctuation(source_char))

    while start < end - 1 and movable(output[start], source[:1]):
        start += 1
    while end > start + 1 and movable(output[end - 1], source[-1:]):
        end -= 1
    if end - start == 1 and output[start].isspace():
        start = end
    return start, end


def _all_punctuation(text: str) -> bool:
    return bool(text) and all(_is_punctuation(char) or char.isspace() for char in text)


def _is_punctuation(char: str) -> bool:
    return bool(char) and unicodedata.category(char).startswith("P")

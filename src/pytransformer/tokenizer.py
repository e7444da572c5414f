"""Text <-> token ids for a pytransformer model, from what its file embeds (docs/format.md).

`tokenizer.type == "sentencepiece"` (Marian / OPUS-MT, argos-translate): the source text is split
into pieces by the embedded source SentencePiece model, pieces are mapped to ids through
`vocab.source` (a piece the vocabulary lacks becomes `tokens.source_unk_id`, else
`tokens.unk_id`, as
MarianTokenizer maps it to its unknown token),
`tokens.source_eos_id` is appended when `tokenizer.add_source_eos`, and a target-language token
(`>>xx<<`) is put first when requested — or kept from the text when it starts with one, as
MarianTokenizer does. Output ids are mapped to pieces through `vocab.target` and joined by the
target SentencePiece model; special tokens (eos, pad, unk, decoder start, language tokens and
`<...>` control pieces) are left out of the text.

With `tokenizer.language_codes` (NLLB-200 and M2M100 models: `eng_Latn`, `__en__`), the model
reads the source language too: the source is its language code, the pieces and the EOS (or the
pieces, the EOS and the code with `tokenizer.source_language_last`, NLLB's legacy order), and
the target language's code is the first target token, forced (transformers'
`forced_bos_token_id`; target_prefix() gives it), and left out of the text. Languages are
named by the model's code or any ISO 639 form of it (pytransformer.languages.find_language:
`zh` finds `zho_Hans` and `__zh__`).

With `tokenizer.fullwidth_punctuation` (our trainer sets it), an ASCII , ? ! : ; after CJK
text in the output takes its full-width form (，？！：；): the embedded SentencePiece model's
NFKC normalisation turned the training targets' full-width marks into ASCII, so the model
writes "你好吗?" for 你好吗？; this restores what the references and Chinese typography use.

`tokenizer.type == "none"`: the caller's text is pieces separated by whitespace, mapped through
the vocabularies; output text is the pieces joined by single spaces.
"""

from __future__ import annotations

import functools
import re
from typing import Any, Mapping, Sequence

import sentencepiece

from pytransformer.languages import describe_languages, find_language, is_cjk_char

_WORD_BOUNDARY = "\u2581"  # SentencePiece's "▁"
_BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")  # a byte-fallback piece: part of the text
# The marks NFKC maps from full-width to ASCII, and back.
_FULLWIDTH = {",": "\uff0c", "?": "\uff1f", "!": "\uff01", ":": "\uff1a", ";": "\uff1b"}


class Tokenizer:
    """Encodes source text into ids and decodes target ids into text. Thread-safe for reading."""

    def __init__(self, metadata: Mapping[str, Any]) -> None:
        self.type = str(metadata["tokenizer.type"])
        if self.type not in ("sentencepiece", "none"):
            raise ValueError(f"tokenizer.type {self.type!r} is not supported")
        self.source_vocab: list[str] = list(metadata["vocab.source"])
        self.target_vocab: list[str] = list(metadata["vocab.target"])
        self.source_ids = _first_ids(self.source_vocab)
        self.target_ids = (self.source_ids if self.target_vocab == self.source_vocab
                           else _first_ids(self.target_vocab))
        # tokens.unk_id is a target id; tokens.source_unk_id (written by our converters) the
        # source one, which files without it share.
        self.target_unk_id = int(metadata["tokens.unk_id"])
        self.unk_id = metadata.get("tokens.source_unk_id", self.target_unk_id)
        if isinstance(self.unk_id, bool) or not isinstance(self.unk_id, int) or \
                not 0 <= self.unk_id < len(self.source_vocab):
            raise ValueError(f"tokens.source_unk_id: {self.unk_id!r} is not a source id "
                             f"(0..{len(self.source_vocab) - 1})")
        self.eos_id = int(metadata["tokens.eos_id"])
        self.end_ids = frozenset({self.eos_id})  # the ids that end a target
        self.pad_id = int(metadata["tokens.pad_id"])
        self.decoder_start_id = int(metadata["tokens.decoder_start_id"])
        self.source_eos_id = int(metadata["tokens.source_eos_id"])
        self.add_source_eos = bool(metadata["tokenizer.add_source_eos"])
        self.target_languages: list[str] = list(metadata.get("tokenizer.target_languages", []))
        self.language_codes: list[str] = list(metadata.get("tokenizer.language_codes", []))
        self.source_language_last = bool(metadata.get("tokenizer.source_language_last", False))
        for code in self.language_codes:
            if code not in self.source_ids or code not in self.target_ids:
                raise ValueError(f"tokenizer.language_codes: {code!r} is not a piece of both "
                                 "vocabularies")
        self.fullwidth_punctuation = bool(metadata.get("tokenizer.fullwidth_punctuation", False))
        self._source_model: sentencepiece.SentencePieceProcessor | None = None
        self._target_model: sentencepiece.SentencePieceProcessor | None = None
        if self.type == "sentencepiece":
            self._source_model = _load_model(metadata["tokenizer.source_model"], "source")
            # One model for both sides (the default model's joint vocabulary) is loaded once.
            self._target_model = (
                self._source_model
                if metadata["tokenizer.target_model"] == metadata["tokenizer.source_model"]
                else _load_model(metadata["tokenizer.target_model"], "target"))
        self._hidden_target_ids = {self.eos_id, self.pad_id, self.decoder_start_id,
                                   self.target_unk_id}
        self._hidden_target_ids.update(self.target_ids[language]
                                       for language in self.target_languages + self.language_codes
                                       if language in self.target_ids)

    # -- languages ----------------------------------------------------------------------------

    @property
    def languages(self) -> list[str]:
        """The target languages a caller chooses between, as the model names them: its
        `>>xx<<` tokens, or its language codes (NLLB-200, M2M100); [] for a one-way model."""
        return self.target_languages or self.language_codes

    @property
    def needs_source_language(self) -> bool:
        """Whether the source starts with (or ends with) its language's code (NLLB, M2M100)."""
        return bool(self.language_codes)

    @property
    def target_prefix_length(self) -> int:
        """Target tokens forced before the generated ones: the target language's code."""
        return 1 if self.language_codes else 0

    def language_token(self, target_language: str) -> str:
        """The model's token for `target_language` ("fra", "fr", ">>fra<<"; "zh" or "zho_Hans"
        for NLLB's "zho_Hans"); ValueError listing the known ones when the model has none
        such."""
        return self._find(target_language, "target")

    def source_language_token(self, source_language: str | None) -> str:
        """The code of `source_language` for a model that reads it (needs_source_language);
        ValueError when it is None or unknown."""
        if source_language is None:
            raise ValueError("this model (NLLB-200 / M2M100) reads the source language: pass "
                             "source_language (e.g. 'en' or '" + self.language_codes[0] + "')")
        return self._find(source_language, "source")

    def target_prefix(self, target_language: str | None) -> list[int]:
        """The target ids forced before decoding: [] except for models with language codes,
        where it is the target language's code; ValueError when that is None or unknown."""
        if not self.language_codes:
            return []
        if target_language is None:
            raise ValueError("this model translates into several languages ("
                             + describe_languages(self.language_codes)
                             + "): pass target_language")
        return [self.target_ids[self.language_token(target_language)]]

    def _find(self, language: str, role: str) -> str:
        known = self.languages
        if not self.language_codes:  # Marian: ">>fra<<", or the bare "fra"
            token = language if language.startswith(">>") else f">>{language}<<"
            if token in known:
                return token
        found = find_language(language, known)
        if found is None:
            listed = describe_languages(known) or "none (not a multilingual model)"
            raise ValueError(f"unknown {role} language {language!r}; the model knows: {listed}")
        return found

    # -- source -------------------------------------------------------------------------------

    def source_pieces(self, text: str) -> list[str]:
        """The pieces of `text` (a leading `>>xx<<` token stays one piece)."""
        check_text(text)
        if self.type == "none":
            return text.split()
        language, rest = _split_language_code(text)
        pieces = self._source_model.encode(rest, out_type=str)
        return ([language] if language else []) + pieces

    def encode_pieces(self, pieces: Sequence[str], target_language: str | None = None,
                      source_language: str | None = None) -> list[int]:
        """Source ids for `pieces`: the language token first if requested (unless the pieces
        already start with one), unknown pieces as unk, then the source EOS if the model
        appends one. For a model with language codes, the source language's code first (or
        after the EOS) instead, and target_language is not part of the source."""
        ids = [self.source_ids.get(piece, self.unk_id) for piece in pieces]
        if self.language_codes:
            code = self.source_ids[self.source_language_token(source_language)]
            if self.add_source_eos:
                ids.append(self.source_eos_id)
            return ids + [code] if self.source_language_last else [code] + ids
        if target_language is not None:
            token = self.language_token(target_language)
            if not (pieces and _is_language_token(pieces[0])):
                ids.insert(0, self.source_ids.get(token, self.unk_id))
        if self.add_source_eos:
            ids.append(self.source_eos_id)
        return ids

    def encode(self, text: str, target_language: str | None = None,
               source_language: str | None = None) -> list[int]:
        return self.encode_pieces(self.source_pieces(text), target_language, source_language)

    @property
    def source_suffix_length(self) -> int:
        """Ids encode_pieces appends after the pieces (kept when a source is truncated)."""
        return int(self.add_source_eos) + int(bool(self.language_codes) and
                                              self.source_language_last)

    # -- target -------------------------------------------------------------------------------

    def target_id(self, piece: str) -> int:
        return self.target_ids.get(piece, self.target_unk_id)

    def target_text_ids(self, text: str) -> list[int]:
        """The target ids of the pieces of a target-language text (a reference translation),
        as the decoder would generate them: no EOS, no language code."""
        check_text(text)
        if self.type == "none" or self._target_model is None:
            return [self.target_id(piece) for piece in text.split()]
        return [self.target_id(piece) for piece in self._target_model.encode(text, out_type=str)]

    def constraint_forms(self, text: str, spaced: bool) -> list[list[int]]:
        """The target id sequences with which a translation may hold `text` (a glossary term, a
        protected span): its pieces as target_text_ids gives them, which start with
        SentencePiece's word-boundary mark, and, for a target language written without spaces
        (spaced=False), the same without that mark, as the text reads in mid-sentence there."""
        ids = self.target_text_ids(text)
        forms = [ids]
        if spaced or not ids or self.type == "none":
            return forms
        first = self.target_vocab[ids[0]]
        if first == _WORD_BOUNDARY and len(ids) > 1:
            forms.append(ids[1:])
        elif first.startswith(_WORD_BOUNDARY) and first[1:] in self.target_ids:
            forms.append([self.target_ids[first[1:]]] + ids[1:])
        return forms

    @functools.cached_property
    def word_continuation_ids(self) -> list[int]:
        """The target ids whose pieces continue the word before them: no word-start mark,
        a letter or digit first (what constrained search keeps from extending a required
        word)."""
        if self.type == "none":
            return []
        return [index for index, piece in enumerate(self.target_vocab)
                if piece and piece[0].isalnum() and index not in self._hidden_target_ids]

    def target_pieces(self, ids: Sequence[int]) -> list[str]:
        return [self.target_vocab[i] for i in ids]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of generated target ids, special tokens left out."""
        pieces = [self.target_vocab[i] for i in ids if i not in self._hidden_target_ids]
        pieces = [p for p in pieces if p and (_BYTE_PIECE.fullmatch(p) or
                                              not (p.startswith("<") and p.endswith(">")))]
        if self.type == "none":
            text = " ".join(pieces)
        else:
            # A piece the target model lacks (a shared vocabulary holds source pieces too) comes
            # back verbatim with its word-boundary marks; MarianTokenizer turns those into
            # spaces.
            text = self._target_model.decode_pieces(pieces).replace(_WORD_BOUNDARY, " ").strip()
        return restore_fullwidth_punctuation(text) if self.fullwidth_punctuation else text


def restore_fullwidth_punctuation(text: str) -> str:
    """ASCII , ? ! : ; after a CJK character in their full-width forms, the spaces around them
    dropped; other text (3:30, "Hi, Tom!", a URL's ?) unchanged. Each mark depends only on the
    text before it, so a streamed translation's increments stay a prefix of the whole."""
    chars = list(text)
    before = ""  # the last character of the text so far that is not white space
    for index, char in enumerate(text):
        if char in _FULLWIDTH and before and is_cjk_char(before):
            chars[index] = _FULLWIDTH[char]
        if not char.isspace():
            before = char
    result = "".join(chars)
    for mark in _FULLWIDTH.values():  # full-width marks carry their own spacing
        result = result.replace(" " + mark, mark).replace(mark + " ", mark)
    return result


def check_text(text: object) -> None:
    """ValueError unless `text` is a str that encodes to UTF-8 (no lone surrogates, which is
    what undecodable bytes read with errors='surrogateescape' become)."""
    if isinstance(text, (bytes, bytearray)):
        raise ValueError("expected text (str), got bytes: decode it first (e.g. "
                         "data.decode('utf-8'))")
    if not isinstance(text, str):
        raise TypeError(f"expected text (str), got {type(text).__name__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"input is not valid UTF-8 text: character {error.start} is a lone "
                         f"surrogate ({text[error.start]!r}); invalid bytes in the input?"
                         ) from None


def _first_ids(vocab: Sequence[str]) -> dict[str, int]:
    """piece -> the first id that has it (filled from the end, so earlier ids overwrite)."""
    return dict(zip(reversed(vocab), range(len(vocab) - 1, -1, -1)))


def _load_model(blob: bytes, side: str) -> sentencepiece.SentencePieceProcessor:
    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(bytes(blob))
    except (RuntimeError, OSError) as error:
        raise ValueError(f"tokenizer.{side}_model is not a valid SentencePiece model: {error}"
                         ) from None
    return processor


def _is_language_token(piece: str) -> bool:
    return piece.startswith(">>") and piece.endswith("<<") and len(piece) > 4


def _split_language_code(text: str) -> tuple[str, str]:
    """(">>xx<<", rest) when text starts with a language code, as MarianTokenizer splits it."""
    if text.startswith(">>"):
        end = text.find("<<")
        if end != -1:
            return text[:end + 2], text[end + 2:]
    return "", text

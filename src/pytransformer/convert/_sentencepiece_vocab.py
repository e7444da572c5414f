"""A SentencePiece model built from a piece/score vocabulary (llama2.c's tok*.bin, GGUF's
`llama` tokenizer): the serialized `ModelProto` that `sentencepiece.SentencePieceProcessor`
loads, splitting text and joining pieces as Llama's own `tokenizer.model` does.

The proto is written here, field by field, rather than through sentencepiece_model_pb2: that
module needs the `protobuf` package, which is not a dependency of pytransformer (and the
SentencePiece processor itself, in C++, reads the bytes without it). Fields are written in
field-number order, as protobuf serializes them, so the processor's
`serialized_model_proto()` gives back the same bytes. Field numbers are those of
sentencepiece's src/sentencepiece_model.proto.

What the model says, beyond the pieces (Llama 2's tokenizer.model, and llama2.c's
train_vocab.py that trains the TinyStories vocabularies the same way):
- trainer_spec: BPE, byte_fallback (characters outside the vocabulary become <0xXX> pieces),
  split_digits, allow_whitespace_only_pieces (a run of spaces stays one word when the text is
  split into words before BPE), the unk/bos/eos/pad ids and their pieces;
- normalizer_spec: "identity" (no NFKC), add_dummy_prefix (a '▁' before the text),
  remove_extra_whitespaces off (llama2.c's run.c keeps every space), escape_whitespaces
  (' ' -> '▁').
"""

from __future__ import annotations

import enum
import math
import re
import struct
from collections.abc import Sequence

from pytransformer.convert._common import ConversionError

BYTE_PIECE = re.compile(r"<0x[0-9A-F]{2}>")


class PieceType(enum.IntEnum):
    """ModelProto.SentencePiece.Type; GGUF's `tokenizer.ggml.token_type` uses the same values."""

    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


_PIECE_TYPES = frozenset(PieceType)
_BPE = 2  # TrainerSpec.ModelType


def build_sentencepiece_model(
    pieces: Sequence[str],
    scores: Sequence[float],
    types: Sequence[int] | None = None,
    *,
    unk_id: int = 0,
    bos_id: int = 1,
    eos_id: int = 2,
    pad_id: int = -1,
    byte_fallback: bool = True,
    source: str = "vocabulary",
) -> bytes:
    """The serialized SentencePiece BPE model of the vocabulary `pieces` (id -> piece, spaces
    as '▁') with BPE merge priorities `scores`, checked by loading it in SentencePiece.

    types: a PieceType per piece; None infers them: `unk_id` UNKNOWN, `bos_id`, `eos_id` and
    `pad_id` CONTROL, `<0xXX>` BYTE (with byte_fallback), the rest NORMAL. An id of -1 means
    the vocabulary has no such piece (only pad may be absent).
    byte_fallback: every one of the 256 `<0x00>`..`<0xFF>` pieces must be present.
    Raises ConversionError naming `source` (the file the vocabulary came from) and the fault.
    """
    size = len(pieces)
    if size == 0:
        raise ConversionError(f"{source}: the vocabulary is empty")
    if len(scores) != size or (types is not None and len(types) != size):
        raise ConversionError(f"{source}: {size} pieces but {len(scores)} scores"
                              + ("" if types is None else f" and {len(types)} types"))
    for name, value in (("unk", unk_id), ("bos", bos_id), ("eos", eos_id), ("pad", pad_id)):
        if not (0 <= value < size or (name == "pad" and value == -1)):
            raise ConversionError(f"{source}: {name} id {value} is outside the vocabulary of "
                                  f"{size} pieces")
    if types is None:
        types = _infer_types(pieces, unk_id, (bos_id, eos_id, pad_id), byte_fallback)
    _check_vocabulary(pieces, scores, types, unk_id, (bos_id, eos_id, pad_id), byte_fallback,
                      source)

    encoded_pieces = b"".join(
        _message(1, _string(1, piece) + _float(2, float(score))
                 + (b"" if kind == PieceType.NORMAL else _varint_field(3, int(kind))))
        for piece, score, kind in zip(pieces, scores, types)
    )
    trainer_spec = b"".join((
        _varint_field(3, _BPE),                        # model_type
        _varint_field(4, size),                        # vocab_size
        _varint_field(25, 1),                          # split_digits
        _varint_field(26, 1),                          # allow_whitespace_only_pieces
        _varint_field(35, int(byte_fallback)),         # byte_fallback
        _varint_field(40, unk_id),
        _varint_field(41, bos_id),
        _varint_field(42, eos_id),
        _varint_field(43, pad_id),
        _string(44, " \u2047 "),                       # unk_surface: how <unk> decodes
        _string(45, pieces[unk_id]),
        _string(46, pieces[bos_id]),
        _string(47, pieces[eos_id]),
        _string(48, pieces[pad_id] if pad_id >= 0 else "<pad>"),
    ))
    normalizer_spec = b"".join((
        _string(1, "identity"),                        # name
        _varint_field(3, 1),                           # add_dummy_prefix
        _varint_field(4, 0),                           # remove_extra_whitespaces
        _varint_field(5, 1),                           # escape_whitespaces
    ))
    model = encoded_pieces + _message(2, trainer_spec) + _message(3, normalizer_spec)
    check_sentencepiece_model(model, pieces, source)
    return model


def check_sentencepiece_model(model: bytes, pieces: Sequence[str], source: str) -> None:
    """ConversionError unless SentencePiece loads `model` and its id -> piece is `pieces`."""
    import sentencepiece

    try:
        processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    except (RuntimeError, OSError, ValueError) as error:
        raise ConversionError(f"{source}: SentencePiece rejects the model built from the "
                              f"vocabulary: {error}") from None
    if processor.get_piece_size() != len(pieces):
        raise ConversionError(f"{source}: SentencePiece loaded {processor.get_piece_size()} "
                              f"pieces of {len(pieces)}")
    for index, piece in enumerate(pieces):
        if processor.id_to_piece(index) != piece:
            raise ConversionError(f"{source}: SentencePiece has piece "
                                  f"{processor.id_to_piece(index)!r} at id {index}, the "
                                  f"vocabulary {piece!r}")


def _infer_types(pieces: Sequence[str], unk_id: int, control_ids: tuple[int, ...],
                 byte_fallback: bool) -> list[PieceType]:
    types = [PieceType.BYTE if byte_fallback and BYTE_PIECE.fullmatch(piece)
             else PieceType.NORMAL for piece in pieces]
    for index in control_ids:
        if index >= 0:
            types[index] = PieceType.CONTROL
    types[unk_id] = PieceType.UNKNOWN
    return types


def _check_vocabulary(pieces: Sequence[str], scores: Sequence[float], types: Sequence[int],
                      unk_id: int, control_ids: tuple[int, ...], byte_fallback: bool,
                      source: str) -> None:
    """What SentencePiece would refuse (or misread), with a message naming the piece."""
    seen: dict[str, int] = {}
    byte_pieces = 0
    for index, (piece, score, kind) in enumerate(zip(pieces, scores, types)):
        if not isinstance(piece, str) or not piece:
            raise ConversionError(f"{source}: piece {index} is empty")
        if piece in seen:
            raise ConversionError(f"{source}: piece {piece!r} appears at ids {seen[piece]} and "
                                  f"{index}")
        seen[piece] = index
        if not math.isfinite(score):
            raise ConversionError(f"{source}: piece {index} ({piece!r}) has score {score}")
        if kind not in _PIECE_TYPES:
            raise ConversionError(f"{source}: piece {index} ({piece!r}) has type {kind}, not a "
                                  "SentencePiece piece type (1..6)")
        if kind == PieceType.BYTE:
            if not BYTE_PIECE.fullmatch(piece):
                raise ConversionError(f"{source}: byte piece {index} is {piece!r}, not <0xXX>")
            byte_pieces += 1
        if (kind == PieceType.UNKNOWN) != (index == unk_id):
            raise ConversionError(f"{source}: piece {index} ({piece!r}) is "
                                  f"{PieceType(kind).name}; the unknown piece must be exactly "
                                  f"id {unk_id}")
    for index in control_ids:
        if index >= 0 and types[index] != PieceType.CONTROL:
            raise ConversionError(f"{source}: special piece {index} ({pieces[index]!r}) is "
                                  f"{PieceType(types[index]).name}, not CONTROL")
    if byte_fallback and byte_pieces != 256:
        raise ConversionError(f"{source}: byte fallback needs the 256 pieces <0x00>..<0xFF>, "
                              f"the vocabulary has {byte_pieces}")


# --- protobuf wire format ----------------------------------------------------------------------


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int32s are sign-extended to ten bytes, as protobuf does
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _float(number: int, value: float) -> bytes:
    return _varint(number << 3 | 5) + struct.pack("<f", value)


def _message(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _string(number: int, text: str) -> bytes:
    return _message(number, text.encode("utf-8"))

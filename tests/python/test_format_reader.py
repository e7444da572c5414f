"""The C++ reader rejects each specific corruption with a message naming the file and problem."""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Callable

import pytest

from pytransformer import _core
from pytransformer.format import ModelFormatError
from tiny_models import FileLayout, TensorField, file_layout, tiny_metadata, write_random_model

HOSTILE = 2**60


def put_u8(data: bytearray, offset: int, value: int) -> None:
    data[offset] = value


def put_u32(data: bytearray, offset: int, value: int) -> None:
    struct.pack_into("<I", data, offset, value)


def put_u64(data: bytearray, offset: int, value: int) -> None:
    struct.pack_into("<Q", data, offset, value)


def get_u64(data: bytearray, offset: int) -> int:
    return struct.unpack_from("<Q", data, offset)[0]


def rename(data: bytearray, start: int, old: str, new: str) -> None:
    """Replaces a key or tensor name in place (same length)."""
    assert len(old) == len(new)
    assert data[start + 4:start + 4 + len(old)] == old.encode()
    data[start + 4:start + 4 + len(new)] = new.encode()


def open_error(tmp_path: Path, data: bytes | bytearray) -> str:
    path = tmp_path / "corrupt.ptm"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError) as error:
        _core.ModelFile(path)
    message = str(error.value)
    assert message.startswith(f"{path}: "), message
    return message[len(f"{path}: "):]


@pytest.fixture(scope="module")
def valid(tmp_path_factory) -> tuple[bytes, FileLayout]:
    path = tmp_path_factory.mktemp("valid") / "valid.ptm"
    write_random_model(path, seed=0)
    data = path.read_bytes()
    return data, file_layout(data)


@pytest.fixture(scope="module")
def valid_int8(tmp_path_factory) -> tuple[bytes, FileLayout]:
    path = tmp_path_factory.mktemp("valid") / "valid_int8.ptm"
    write_random_model(path, seed=0, quantize="int8_all", output_bias=True)
    data = path.read_bytes()
    return data, file_layout(data)


def _last_in_data(layout: FileLayout) -> TensorField:
    return max(layout.tensors, key=lambda t: (t.data_offset, -layout.tensors.index(t)))


Mutation = Callable[[bytearray, FileLayout], None]


def _set_key_value(key: str, value: int) -> Mutation:
    return lambda d, l: put_u64(d, l.key(key).value_offset, value)


def _tensor_field(name: str, field: str, value: int, put=put_u64) -> Mutation:
    return lambda d, l: put(d, getattr(l.tensor(name), field), value)


CORRUPTIONS: list[tuple[str, Mutation, str]] = [
    ("bad magic", lambda d, l: put_u8(d, 0, ord("X")), "not a pytransformer model file (bad magic)"),
    ("version 2", lambda d, l: put_u32(d, 8, 2),
     "unsupported format version 2 (this reader supports version 1)"),
    ("version 0", lambda d, l: put_u32(d, 8, 0), "unsupported format version 0"),
    ("flags", lambda d, l: put_u32(d, 12, 1), "header flags must be 0"),
    ("reserved", lambda d, l: put_u8(d, 63, 1), "reserved header bytes must be zero"),
    ("metadata count", lambda d, l: put_u64(d, 16, HOSTILE),
     f"metadata entry count {HOSTILE} exceeds what the header region can hold"),
    ("metadata count u64 max", lambda d, l: put_u64(d, 16, 2**64 - 1), "metadata entry count"),
    ("tensor count", lambda d, l: put_u64(d, 24, HOSTILE),
     f"tensor entry count {HOSTILE} exceeds what the header region can hold"),
    ("tensor count one more", lambda d, l: put_u64(d, 24, len(l.tensors) + 1),
     "tensor name .* length .* outside 1..256"),
    ("data offset misaligned", lambda d, l: put_u64(d, 32, l.data_offset + 8),
     "data offset .* is not a multiple of 64"),
    ("data offset past the file", lambda d, l: put_u64(d, 32, 2**64 - 64),
     "data offset .* is outside the file"),
    ("data offset zero", lambda d, l: put_u64(d, 32, 0), "data offset 0 is outside the file"),
    ("data size too large", lambda d, l: put_u64(d, 40, get_u64(d, 40) + 64),
     "but the header says .*: truncated or trailing bytes"),
    ("data size overflowing", lambda d, l: put_u64(d, 40, 2**64 - 1), "more than 2\\^64"),
    ("key length zero", lambda d, l: put_u32(d, l.metadata[0].start, 0),
     "metadata key 0 length 0 is outside 1..256"),
    ("key length 300", lambda d, l: put_u32(d, l.metadata[0].start, 300),
     "metadata key 0 length 300 is outside 1..256"),
    ("key length hostile", lambda d, l: put_u32(d, l.metadata[0].start, 2**32 - 1),
     "length 4294967295 is outside"),
    ("key upper case", lambda d, l: put_u8(d, l.key("model.d_model").start + 4, ord("M")),
     re.escape("contains a character outside [a-z0-9_.]")),
    ("duplicate key", lambda d, l: rename(d, l.key("model.encoder_layers").start,
                                          "model.encoder_layers", "model.decoder_layers"),
     "duplicate metadata key 'model.decoder_layers'"),
    ("unknown value type", lambda d, l: put_u8(d, l.key("model.d_model").type_offset, 9),
     "metadata 'model.d_model' has unknown value type 9"),
    ("value type zero", lambda d, l: put_u8(d, l.key("model.d_model").type_offset, 0),
     "unknown value type 0"),
    ("bool not 0 or 1", lambda d, l: put_u8(d, l.key("model.pre_norm").value_offset, 2),
     "metadata 'model.pre_norm': bool value 2 is not 0 or 1"),
    ("string length hostile", _set_key_value("general.name", HOSTILE),
     f"metadata 'general.name' length {HOSTILE} exceeds what the remaining"),
    ("string length u64 max", _set_key_value("general.name", 2**64 - 1), "exceeds"),
    ("string array count hostile", _set_key_value("vocab.source", HOSTILE),
     f"metadata 'vocab.source' count {HOSTILE} exceeds"),
    ("string array element length hostile",
     lambda d, l: put_u64(d, l.key("vocab.source").value_offset + 8, 2**63),
     "metadata 'vocab.source' element 0 length"),
    ("int array count hostile", _set_key_value("generation.suppressed_ids", 2**61),
     "metadata 'generation.suppressed_ids' count"),
    ("invalid utf-8", lambda d, l: put_u8(d, l.key("general.name").value_offset + 8, 0xFF),
     "metadata 'general.name' is not valid UTF-8"),
    ("invalid utf-8 surrogate", lambda d, l: d.__setitem__(
        slice(l.key("general.name").value_offset + 8, l.key("general.name").value_offset + 11),
        b"\xed\xa0\x80"), "is not valid UTF-8"),
    ("tensor name length zero", lambda d, l: put_u32(d, l.tensors[0].start, 0),
     "tensor name 0 length 0 is outside 1..256"),
    ("tensor name character", lambda d, l: put_u8(d, l.tensors[0].start + 4, ord("-")),
     re.escape("tensor name 0 contains a character outside [A-Za-z0-9_.]")),
    ("duplicate tensor", lambda d, l: rename(d, l.tensor("enc.0.attn_self_k.weight").start,
                                             "enc.0.attn_self_k.weight",
                                             "enc.0.attn_self_q.weight"),
     "duplicate tensor name 'enc.0.attn_self_q.weight'"),
    ("unknown dtype", _tensor_field("enc.0.ffn_up.weight", "dtype_offset", 7, put_u8),
     "tensor 'enc.0.ffn_up.weight' has unknown dtype code 7"),
    ("rank 0", _tensor_field("enc.0.ffn_up.weight", "rank_offset", 0, put_u8),
     "tensor 'enc.0.ffn_up.weight' has rank 0 \\(must be 1..4\\)"),
    ("rank 5", _tensor_field("enc.0.ffn_up.weight", "rank_offset", 5, put_u8),
     "tensor 'enc.0.ffn_up.weight' has rank 5 \\(must be 1..4\\)"),
    ("zero dimension", _tensor_field("enc.0.ffn_up.weight", "dims_offset", 0),
     "tensor 'enc.0.ffn_up.weight' has a zero dimension"),
    ("overflowing dimensions", _tensor_field("enc.0.ffn_up.weight", "dims_offset", 2**62),
     "tensor 'enc.0.ffn_up.weight' has dimensions whose byte size overflows"),
    ("overflowing dimension u64 max", _tensor_field("enc.0.ffn_up.weight", "dims_offset",
                                                    2**64 - 1), "overflows"),
    ("dimension times dtype past int64", _tensor_field("enc.0.ffn_up.bias", "dims_offset", 2**61),
     "overflows"),
    ("byte size mismatch", lambda d, l: put_u64(d, l.tensor("enc.0.ffn_up.weight").size_offset,
                                                l.tensor("enc.0.ffn_up.weight").size + 1),
     "tensor 'enc.0.ffn_up.weight' byte size 2049 does not match its shape \\[32, 16\\]"),
    ("offset misaligned", lambda d, l: put_u64(d, l.tensors[3].offset_offset,
                                               l.tensors[3].data_offset + 4),
     "tensor '.*' offset .* is not a multiple of 64"),
    ("offset out of bounds", lambda d, l: put_u64(d, l.tensors[3].offset_offset,
                                                  (l.size - l.data_offset + 63) // 64 * 64),
     "tensor '.*' extends past the end of the data section"),
    ("offset hostile", lambda d, l: put_u64(d, l.tensors[3].offset_offset, 2**64 - 64),
     "extends past the end of the data section"),
    ("last tensor past the end", lambda d, l: put_u64(
        d, _last_in_data(l).offset_offset, _last_in_data(l).data_offset + 64),
     "tensor 'dec.1.ffn_norm.beta' extends past the end of the data section"),
    ("partial overlap", lambda d, l: put_u64(d, l.tensor("enc.0.ffn_up.weight").offset_offset,
                                             l.tensor("enc.0.ffn_up.weight").data_offset + 64),
     "partially overlaps"),
    ("missing required key", lambda d, l: rename(d, l.key("model.d_model").start,
                                                 "model.d_model", "model.d_modex"),
     "model.d_model: missing required key"),
    ("wrong key type", lambda d, l: put_u8(d, l.key("model.d_model").type_offset, 3),
     "model.d_model: expected int64, got float64"),
    ("heads not dividing d_model", _set_key_value("model.encoder_heads", 3),
     "model.encoder_heads: 3 does not divide model.d_model 16"),
    ("special id out of vocab", _set_key_value("tokens.eos_id", 99),
     "tokens.eos_id: 99 is outside the target vocabulary \\(size 30\\)"),
    ("negative special id", _set_key_value("tokens.pad_id", 2**64 - 1),
     "tokens.pad_id: -1 is outside the target vocabulary"),
    ("unknown architecture", lambda d, l: put_u8(
        d, l.key("general.architecture").value_offset + 8, ord("X")),
     "general.architecture: unsupported architecture 'Xransformer-seq2seq'"),
    ("hostile layer count", _set_key_value("model.decoder_layers", 2**62),
     "model.decoder_layers: 4611686018427387904 is outside 1..1024"),
    ("vocab size not matching vocab", _set_key_value("model.source_vocab_size", 29),
     "vocab.source: has 30 pieces but model.source_vocab_size is 29"),
    ("missing tensor", lambda d, l: rename(d, l.tensor("enc.0.ffn_up.bias").start,
                                           "enc.0.ffn_up.bias", "enc.0.ffn_up.biaX"),
     "missing tensor 'enc.0.ffn_up.bias'"),
    ("wrong shape", lambda d, l: (put_u64(d, l.tensor("enc.0.ffn_up.weight").dims_offset, 16),
                                  put_u64(d, l.tensor("enc.0.ffn_up.weight").dims_offset + 8, 32)),
     re.escape("tensor 'enc.0.ffn_up.weight' has shape [16, 32], expected [32, 16]")),
    ("vector not f32", lambda d, l: (put_u8(d, l.tensor("enc.0.ffn_up.bias").dtype_offset, 1),
                                     put_u64(d, l.tensor("enc.0.ffn_up.bias").size_offset, 64)),
     "tensor 'enc.0.ffn_up.bias' is f16, expected f32"),
    ("truncated by one byte", lambda d, l: d.__delitem__(slice(-1, None)),
     "truncated or trailing bytes"),
    ("trailing byte", lambda d, l: d.append(0), "truncated or trailing bytes"),
    ("truncated to the directory", lambda d, l: d.__delitem__(slice(l.tensors[0].start, None)),
     "data offset .* is outside the file"),
    ("truncated header", lambda d, l: d.__delitem__(slice(40, None)),
     "file is truncated: 40 bytes, shorter than the 64-byte header"),
    ("truncated magic", lambda d, l: d.__delitem__(slice(5, None)), "bad magic"),
]


@pytest.mark.parametrize("mutate, message", [c[1:] for c in CORRUPTIONS],
                         ids=[c[0] for c in CORRUPTIONS])
def test_reader_rejects_corruption(tmp_path, valid, mutate, message):
    data, layout = valid
    corrupted = bytearray(data)
    mutate(corrupted, layout)
    actual = open_error(tmp_path, corrupted)
    assert message in actual or re.search(message, actual), actual


def test_valid_files_open(tmp_path, valid, valid_int8):
    for data, _ in (valid, valid_int8):
        path = tmp_path / "ok.ptm"
        path.write_bytes(data)
        assert _core.ModelFile(path).format_version == 1


def test_unexpected_tensor(tmp_path, valid_int8):
    data, layout = valid_int8
    corrupted = bytearray(data)
    put_u8(corrupted, layout.key("model.output_bias").value_offset, 0)
    assert open_error(tmp_path, corrupted) == (
        "unexpected tensor 'dec.out_proj.bias' (not in the expected set for this config)")


def test_int8_without_scale(tmp_path, valid_int8):
    data, layout = valid_int8
    corrupted = bytearray(data)
    rename(corrupted, layout.tensor("enc.embed.weight.scale").start, "enc.embed.weight.scale",
           "enc.embed.weight.scalX")
    assert open_error(tmp_path, corrupted) == (
        "tensor 'enc.embed.weight' is int8 but 'enc.embed.weight.scale' is missing")


def test_int8_scale_wrong_shape_dtype_or_value(tmp_path, valid_int8):
    data, layout = valid_int8
    scale = layout.tensor("enc.0.ffn_up.weight.scale")
    corrupted = bytearray(data)
    put_u8(corrupted, scale.dtype_offset, 1)  # f16 [32] would be 64 bytes
    put_u64(corrupted, scale.size_offset, 64)
    assert "'enc.0.ffn_up.weight.scale' must be f32 of shape [32], got f16 [32]" in open_error(
        tmp_path, corrupted)
    for bad in (b"\x00\x00\x00\x00", b"\x00\x00\x80\xbf", b"\x00\x00\xc0\x7f"):  # 0, -1, NaN
        corrupted = bytearray(data)
        position = layout.data_offset + scale.data_offset + 4 * 5
        corrupted[position:position + 4] = bad
        assert open_error(tmp_path, corrupted) == (
            "tensor 'enc.0.ffn_up.weight.scale' row 5 is not a finite positive scale")


def test_padding_before_data_must_be_zero(tmp_path):
    for length in range(1, 65):
        path = tmp_path / "padded.ptm"
        write_random_model(path, extra={"test.pad": "x" * length})
        data = bytearray(path.read_bytes())
        layout = file_layout(data)
        if layout.tensors[-1].end < layout.data_offset:
            break
    data[layout.tensors[-1].end] = 1
    assert open_error(tmp_path, data).startswith(
        f"nonzero byte at offset {layout.tensors[-1].end} in the padding")


def test_file_system_errors(tmp_path):
    missing = tmp_path / "missing.ptm"
    with pytest.raises(ModelFormatError, match=f"^{re.escape(str(missing))}: no such file$"):
        _core.ModelFile(missing)
    with pytest.raises(ModelFormatError, match="is a directory, not a model file"):
        _core.ModelFile(tmp_path)
    empty = tmp_path / "empty.ptm"
    empty.write_bytes(b"")
    with pytest.raises(ModelFormatError, match=f"^{re.escape(str(empty))}: file is empty$"):
        _core.ModelFile(empty)
    with pytest.raises(ModelFormatError, match="is not a regular file"):
        _core.ModelFile("/dev/null")
    fifo = tmp_path / "fifo.ptm"
    os.mkfifo(fifo)
    with pytest.raises(ModelFormatError, match="is not a regular file"):
        _core.ModelFile(fifo)  # without waiting for a writer
    with pytest.raises(ModelFormatError, match="cannot open: File name too long"):
        _core.ModelFile(tmp_path / ("y" * 300))
    with pytest.raises(TypeError):
        _core.ModelFile(42)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files regardless of permissions")
def test_permission_denied(tmp_path):
    path = tmp_path / "secret.ptm"
    write_random_model(path)
    path.chmod(0)
    with pytest.raises(ModelFormatError, match="permission denied"):
        _core.ModelFile(path)


def test_unknown_tensor_request_names_the_file(tmp_path, valid):
    path = tmp_path / "ok.ptm"
    path.write_bytes(valid[0])
    model_file = _core.ModelFile(path)
    for call in (model_file.tensor, model_file.tensor_info, model_file.tensor_offset):
        with pytest.raises(ModelFormatError, match=f"{re.escape(str(path))}: no tensor named 'x'"):
            call("x")


def with_checksums(data: bytes, layout: FileLayout, value: object) -> bytes:
    """The file with its `checksum.crc32` entry encoded anew with `value` (the data section
    moved to the new aligned data offset; tensor offsets are relative to it, unchanged)."""
    from pytransformer.format.writer import _encode_entry

    entry = layout.key("checksum.crc32")
    region = data[64:entry.start] + _encode_entry("checksum.crc32", value) + \
        data[entry.end:layout.tensors[-1].end]
    data_offset = (64 + len(region) + 63) // 64 * 64
    header = bytearray(data[:64])
    put_u64(header, 32, data_offset)
    return bytes(header) + region + bytes(data_offset - 64 - len(region)) + \
        data[layout.data_offset:]


def stored_checksums(data: bytes, layout: FileLayout) -> list[int]:
    entry = layout.key("checksum.crc32")
    count = get_u64(bytearray(data), entry.value_offset)
    return list(struct.unpack_from(f"<{count}q", data, entry.value_offset + 8))


def test_checksums_entry_is_validated(tmp_path, valid):
    data, layout = valid
    crcs = stored_checksums(data, layout)
    assert open_error(tmp_path, with_checksums(data, layout, "x")) == (
        "checksum.crc32: expected int64 array, got string")
    assert open_error(tmp_path, with_checksums(data, layout, crcs[:-1])) == (
        f"checksum.crc32: has {len(crcs) - 1} values for {len(crcs)} tensors")
    for bad in (-1, 2**32):
        assert open_error(tmp_path, with_checksums(data, layout, [bad] + crcs[1:])) == (
            f"checksum.crc32: value 0 ({bad}) is not a CRC-32 (0..2^32-1)")
    tied = [i for i, t in enumerate(layout.tensors) if t.name == "dec.out_proj.weight"][0]
    assert open_error(tmp_path, with_checksums(
        data, layout, crcs[:tied] + [crcs[tied] ^ 1] + crcs[tied + 1:])) == (
        "checksum.crc32: tensors 'dec.embed.weight' and 'dec.out_proj.weight' share their "
        "bytes but not their checksum")
    # Unchanged values re-encoded: the helper itself keeps the file valid.
    path = tmp_path / "same.ptm"
    path.write_bytes(with_checksums(data, layout, crcs))
    assert _core.ModelFile(path).verify() == len(crcs)


def test_a_wrong_checksum_is_found_by_verify_and_by_loading(tmp_path, valid):
    data, layout = valid
    crcs = stored_checksums(data, layout)
    index = [t.name for t in layout.tensors].index("enc.1.ffn_up.bias")
    path = tmp_path / "wrong.ptm"
    path.write_bytes(with_checksums(data, layout, crcs[:index] + [crcs[index] ^ 0xFF]
                                    + crcs[index + 1:]))
    model_file = _core.ModelFile(path)  # the directory is fine; tensors are read on demand
    model_file.tensor("enc.1.ffn_up.bias")
    message = (f"^{re.escape(str(path))}: tensor 'enc.1.ffn_up.bias' does not match its "
               r"checksum \(CRC-32 [0-9a-f]{8}, expected [0-9a-f]{8}\): the file is corrupt")
    with pytest.raises(ModelFormatError, match=message):
        model_file.tensor("enc.1.ffn_up.bias", verify=True)
    with pytest.raises(ModelFormatError, match=message):
        model_file.verify()
    with pytest.raises(ModelFormatError, match=message):
        _core.Model(str(path))


BAD_METADATA = [
    ({"d_model": 15, "heads": 5}, "model.d_model: must be even"),
    ({"d_model": 2, "heads": 1, "position_frequencies": "tensor2tensor"},
     "model.d_model: must be at least 4 with tensor2tensor"),
    ({"d_model": 2**20}, "model.d_model: 1048576 is outside 2..65536"),
    ({"decoder_heads": 5}, "model.decoder_heads: 5 does not divide model.d_model 16"),
    ({"encoder_heads": 0}, "model.encoder_heads: 0 is outside 1..16"),
    ({"layers": 0}, "model.encoder_layers: 0 is outside 1..1024"),
    ({"ffn_dim": -1}, "model.encoder_ffn_dim: -1 is outside"),
    ({"activation": "tanh"}, "model.activation: unknown value 'tanh' \\(expected one of: gelu, "
                             "gelu_tanh, relu, swish\\)"),
    ({"position_layout": "mixed"}, "model.position_layout: unknown value 'mixed'"),
    ({"layer_norm_epsilon": 0.0}, "model.layer_norm_epsilon: must be in \\(0, 1\\]"),
    ({"layer_norm_epsilon": float("nan")}, "model.layer_norm_epsilon: must be a finite number"),
    ({"max_positions": 0}, "model.max_positions: 0 is outside"),
    ({"position_offset": -1}, "model.position_offset: -1 is outside"),
    ({"source_vocab_size": 0}, "model.source_vocab_size: 0 is outside"),
    ({"extra": {"vocab.target": ["a"] * 29}},
     "vocab.target: has 29 pieces but model.target_vocab_size is 30"),
    ({"target_vocab_size": 10, "eos_id": 10},
     "tokens.eos_id: 10 is outside the target vocabulary \\(size 10\\)"),
    ({"source_eos_id": 30}, "tokens.source_eos_id: 30 is outside the source vocabulary"),
    ({"source_vocab_size": 2, "unk_id": 2}, "tokens.unk_id: 2 is outside the source vocabulary"),
    ({"decoder_start_id": -1}, "tokens.decoder_start_id: -1 is outside"),
    ({"tokenizer_type": "bpe"}, "tokenizer.type: unknown value 'bpe'"),
    ({"tokenizer_type": "sentencepiece"},
     "tokenizer.source_model: required when tokenizer.type is sentencepiece"),
    ({"tokenizer_type": "sentencepiece",
      "extra": {"tokenizer.source_model": b"x", "tokenizer.target_model": b""}},
     "tokenizer.target_model: is empty"),
    ({"target_languages": [">>fra<<"]}, "tokenizer.target_languages: '>>fra<<' is not in vocab"),
    ({"beam_size": 0}, "generation.beam_size: 0 is outside 1..1024"),
    ({"max_length": 0}, "generation.max_length: 0 is outside"),
    ({"length_penalty": float("inf")}, "generation.length_penalty: must be a finite number"),
    ({"suppressed_ids": [0, 30]}, "generation.suppressed_ids: 30 is outside the target"),
    ({"search_convention": "fairseq"}, "generation.search_convention: unknown value 'fairseq'"),
    ({"extra": {"generation.max_length_factor": 2.0}},
     "generation.max_length_factor: is only defined for the marian convention"),
    ({"search_convention": "marian", "extra": {"generation.max_length_factor": -1.0}},
     "generation.max_length_factor: must be >= 0"),
    ({"extra": {"generation.word_penalty": 0.5}},
     "generation.word_penalty: is only defined for the marian convention"),
    ({"pre_norm": 1}, "model.pre_norm: expected bool, got int64"),
    ({"suppressed_ids": [0.5]}, "generation.suppressed_ids: expected int64 array, got float64"),
    ({"extra": {"vocab.source": None}}, "vocab.source: missing required key"),
    ({"extra": {"general.license": 3}}, "general.license: expected string, got int64"),
    ({"extra": {"tokenizer.source_model": "text"}},
     "tokenizer.source_model: expected bytes, got string"),
]


@pytest.mark.parametrize("overrides, message", BAD_METADATA)
def test_config_validation(overrides, message):
    with pytest.raises(ModelFormatError, match="^" + message):
        _core.expected_tensors(tiny_metadata(**overrides))


def test_valid_config_variants():
    for overrides in ({"tokenizer_type": "sentencepiece",
                       "extra": {"tokenizer.source_model": b"x", "tokenizer.target_model": b"y"}},
                      {"target_languages": ["\u2581w5"]},
                      {"activation": "gelu_tanh", "position_layout": "interleaved",
                       "position_frequencies": "tensor2tensor", "d_model": 4, "heads": 1},
                      {"search_convention": "ctranslate2", "length_penalty": 0.0,
                       "suppressed_ids": []},
                      {"search_convention": "marian",
                       "extra": {"generation.max_length_factor": 2.5,
                                 "generation.word_penalty": -0.5}}):
        assert _core.expected_tensors(tiny_metadata(**overrides))

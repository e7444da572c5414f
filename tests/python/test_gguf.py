"""The GGUF reader (pytransformer.gguf) against the reference implementation, the `gguf`
package: metadata, tensor directory and dequantised values of the real SmolLM2 Q4_1 file and of
small written files of every supported type (values bit-identical: same arithmetic order), and
fuzzing: truncated, mutated and hand-made hostile files read or raise GgufError, nothing else."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import numpy as np
import pytest

from conftest import SHARED

gguf = pytest.importorskip("gguf")

from pytransformer import gguf as pg

SMOLLM2_Q4_1 = (SHARED / "peer-models" / "smollm2-135m-instruct-gguf"
                / "SmolLM2-135M-Instruct.Q4_1.gguf")
QT = gguf.GGMLQuantizationType


def _same(ours, reference) -> bool:
    if isinstance(ours, np.ndarray):
        return ours.ndim == 1 and ours.tolist() == list(reference)
    if isinstance(ours, list) and ours and isinstance(ours[0], np.ndarray):
        return False  # nested arrays: GGUFReader flattens them, not compared here
    return type(ours) is type(reference) and ours == reference


def _check_against_reader(path: Path) -> pg.GgufFile:
    ours = pg.read_gguf(path)
    reader = gguf.GGUFReader(path)
    keys = [k for k in reader.fields if not k.startswith("GGUF.")]
    assert list(ours.metadata) == keys
    for key in keys:
        assert _same(ours.metadata[key], reader.fields[key].contents()), key
    assert list(ours.tensors) == [t.name for t in reader.tensors]
    for ref in reader.tensors:
        t = ours.tensors[ref.name]
        assert t.type == ref.tensor_type.name
        assert t.dims == tuple(int(d) for d in ref.shape)  # GGUF order
        assert t.shape == tuple(reversed(t.dims))  # numpy order
        assert t.offset == ref.data_offset and t.nbytes == ref.n_bytes
        expected = gguf.quants.dequantize(ref.data, ref.tensor_type)
        got = t.dequantize()
        assert got.dtype == np.float32 and got.shape == expected.shape == t.shape
        # Bit-identical (NaN patterns included): same operations in the same order.
        assert np.array_equal(got.view(np.uint32), expected.astype(np.float32).view(np.uint32)), \
            ref.name
    return ours


@pytest.mark.skipif(not SMOLLM2_Q4_1.exists(), reason=f"{SMOLLM2_Q4_1} not present")
def test_smollm2_q4_1_matches_gguf_reader():
    ours = _check_against_reader(SMOLLM2_Q4_1)
    assert ours.version == 3
    assert isinstance(ours.metadata["tokenizer.ggml.tokens"], list)
    assert len(ours.metadata["tokenizer.ggml.tokens"]) == 49152
    # A Linear weight is (out, in): token_embd is (vocab, hidden).
    assert ours.tensors["token_embd.weight"].shape == (49152, 576)
    assert {t.type for t in ours.tensors.values()} >= {"Q4_1"}


def _random_blocks(rng, qtype, n_blocks: int) -> np.ndarray:
    """Random valid raw blocks: random bytes with finite float16 scales where the type has them
    (byte offsets of d / dmin within the block)."""
    block_bytes = gguf.GGML_QUANT_SIZES[qtype][1]
    blocks = rng.integers(0, 256, size=(n_blocks, block_bytes), dtype=np.uint8)
    f16_at = {QT.Q4_K: (0, 2), QT.Q5_K: (0, 2), QT.Q6_K: (208,)}[qtype]
    for at in f16_at:
        d = rng.uniform(-2, 2, size=n_blocks).astype(np.float16)
        blocks[:, at:at + 2] = d.view(np.uint8).reshape(n_blocks, 2)
    return blocks


def _write_every_type(path: Path, alignment: int | None = None) -> None:
    rng = np.random.default_rng(7)
    w = gguf.GGUFWriter(path, arch="llama")
    if alignment is not None:
        w.add_custom_alignment(alignment)
    w.add_uint8("t.u8", 200)
    w.add_int8("t.i8", -5)
    w.add_uint16("t.u16", 60000)
    w.add_int16("t.i16", -3000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -7)
    w.add_float32("t.f32", 0.1)
    w.add_uint64("t.u64", 2**63 + 5)
    w.add_int64("t.i64", -(2**40))
    w.add_float64("t.f64", 1e-300)
    w.add_bool("t.bool", True)
    w.add_string("t.str", "héllo ✓")
    w.add_array("t.strs", ["a", "", "ünï"])
    w.add_array("t.ints", [1, -2, 3])
    w.add_array("t.floats", [0.5, -1.25])
    w.add_array("t.empty", [])
    x = rng.standard_normal((3, 64)).astype(np.float32)
    w.add_tensor("f32", rng.standard_normal((2, 3, 5)).astype(np.float32))
    w.add_tensor("f16", x.astype(np.float16))
    for qt in (QT.BF16, QT.Q8_0, QT.Q4_0, QT.Q4_1):
        w.add_tensor(qt.name.lower(), gguf.quants.quantize(x, qt), raw_dtype=qt)
    for qt in (QT.Q4_K, QT.Q5_K, QT.Q6_K):  # gguf can only dequantise these
        w.add_tensor(qt.name.lower(), _random_blocks(rng, qt, 6).reshape(2, -1), raw_dtype=qt)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.mark.parametrize("alignment", [None, 64])
def test_every_supported_type_matches_gguf(tmp_path, alignment):
    path = tmp_path / "types.gguf"
    _write_every_type(path, alignment)
    ours = _check_against_reader(path)
    assert ours.alignment == (alignment or 32)
    m = ours.metadata
    assert m["t.u64"] == 2**63 + 5 and m["t.i64"] == -(2**40) and m["t.bool"] is True
    assert m["t.str"] == "héllo ✓" and m["t.strs"] == ["a", "", "ünï"]
    assert m["t.ints"].dtype == np.int32 and m["t.f32"] == float(np.float32(0.1))
    assert ours.tensors["q6_k"].shape == (2, 768) and ours.tensors["f32"].shape == (2, 3, 5)
    assert {t.type for t in ours.tensors.values()} == set(pg.SUPPORTED_TYPES)


def test_unsupported_type_names_tensor_and_type(tmp_path):
    path = tmp_path / "q5_0.gguf"
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_tensor("blk.0.w", np.zeros((1, 22), np.uint8), raw_dtype=QT.Q5_0)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    t = pg.read_gguf(path).tensors["blk.0.w"]
    assert t.type == "Q5_0" and t.shape == (1, 32)
    with pytest.raises(pg.GgufError, match=r"'blk\.0\.w'.*Q5_0"):
        t.dequantize()


# --- fuzzing ---------------------------------------------------------------------------------

def _small_file(tmp_path) -> bytes:
    path = tmp_path / "small.gguf"
    _write_every_type(path)
    return path.read_bytes()


def _read_or_gguf_error(path: Path) -> str:
    try:
        f = pg.read_gguf(path)
        for t in f.tensors.values():
            try:
                t.dequantize()
            except pg.GgufError as e:
                assert "cannot be dequantised" in str(e)
        return "ok"
    except pg.GgufError as e:
        assert str(path) in str(e)
        return "error"


def test_truncated_files_raise_gguf_error(tmp_path):
    data = _small_file(tmp_path)
    path = tmp_path / "cut.gguf"
    small = pg.read_gguf(tmp_path / "small.gguf")
    # GGUFWriter pads the end of the file, so only cuts before the last tensor's end must fail.
    data_end = max(t.offset + t.nbytes for t in small.tensors.values())
    cuts = list(range(0, small.data_offset + 1)) + list(range(small.data_offset, data_end, 7))
    for cut in cuts:
        path.write_bytes(data[:cut])
        with pytest.raises(pg.GgufError, match="truncated|past the end"):
            pg.read_gguf(path)
    path.write_bytes(data[:data_end])
    assert len(pg.read_gguf(path).tensors) == len(small.tensors)


def test_mutated_files_read_or_raise_gguf_error(tmp_path):
    data = _small_file(tmp_path)
    header_end = pg.read_gguf(tmp_path / "small.gguf").data_offset
    rng = random.Random(11)
    path = tmp_path / "mutated.gguf"
    outcomes = {"ok": 0, "error": 0}
    specials = [0, 0xFF, 0x7F, 0x80]
    for _ in range(400):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(header_end)  # the header is where the checks live
            b[at] = rng.choice(specials) if rng.random() < 0.3 else rng.randrange(256)
        path.write_bytes(bytes(b))
        outcomes[_read_or_gguf_error(path)] += 1
    assert outcomes["ok"] > 0 and outcomes["error"] > 0, outcomes


def _s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _file(kvs: bytes = b"", n_kv: int = 0, infos: bytes = b"", n_tensors: int = 0,
          data: bytes = b"", version: int = 3, magic: bytes = b"GGUF") -> bytes:
    head = magic + struct.pack("<IQQ", version, n_tensors, n_kv) + kvs + infos
    return head + b"\0" * ((-len(head)) % 32) + data


def _info(name="w", dims=(32,), type_id=0, offset=0) -> bytes:
    return (_s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
            + struct.pack("<IQ", type_id, offset))


HOSTILE = {
    "bad magic": _file(magic=b"GGUG"),
    "version 1": _file(version=1),
    "version 4": _file(version=4),
    "huge tensor count": _file(n_tensors=2**63),
    "huge kv count": _file(n_kv=2**64 - 1),
    "huge key length": _file(struct.pack("<Q", 2**62) + b"abc", 1),
    "huge string value": _file(_s("k") + struct.pack("<IQ", 8, 2**60), 1),
    "huge array": _file(_s("k") + struct.pack("<IIQ", 9, 10, 2**61), 1),
    "huge string array": _file(_s("k") + struct.pack("<IIQ", 9, 8, 2**61), 1),
    "deep nesting": _file(_s("k") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 40, 1),
    "unknown value type": _file(_s("k") + struct.pack("<I", 13) + b"\0" * 16, 1),
    "unknown array item type": _file(_s("k") + struct.pack("<IIQ", 9, 99, 1) + b"\0" * 8, 1),
    "bad bool": _file(_s("k") + struct.pack("<IB", 7, 2) + b"\0" * 12, 1),
    "duplicate key": _file((_s("k") + struct.pack("<IB", 0, 1)) * 2, 2),
    "bad key utf-8": _file(_s(b"\xff\xfe") + struct.pack("<IB", 0, 1) + b"\0" * 12, 1),
    "alignment 0": _file(_s("general.alignment") + struct.pack("<II", 4, 0), 1),
    "alignment 3": _file(_s("general.alignment") + struct.pack("<II", 4, 3), 1),
    "alignment string": _file(_s("general.alignment") + struct.pack("<I", 8) + _s("32"), 1),
    "huge alignment": _file(_s("general.alignment") + struct.pack("<IQ", 10, 2**62),
                            1, _info(), 1, b"\0" * 128),
    "huge dims": _file(infos=_info(dims=(2**40, 2**20)), n_tensors=1, data=b"\0" * 128),
    "dims overflow": _file(infos=_info(dims=(2**32, 2**32, 2**32)), n_tensors=1,
                           data=b"\0" * 128),
    "dims wrap to zero": _file(infos=_info(dims=(2**32, 2**32)), n_tensors=1),
    "five dims": _file(infos=_info(dims=(1, 1, 1, 1, 1)), n_tensors=1, data=b"\0" * 32),
    "zero dims": _file(infos=_info(dims=()), n_tensors=1, data=b"\0" * 32),
    "unknown tensor type": _file(infos=_info(type_id=77), n_tensors=1, data=b"\0" * 128),
    "row not whole blocks": _file(infos=_info(dims=(33,), type_id=2), n_tensors=1,
                                  data=b"\0" * 128),
    "misaligned offset": _file(infos=_info(offset=4), n_tensors=1, data=b"\0" * 256),
    "data past end": _file(infos=_info(dims=(64,)), n_tensors=1, data=b"\0" * 128),
    "offset past end": _file(infos=_info(offset=2**63), n_tensors=1, data=b"\0" * 128),
    "overlap": _file(infos=_info("a", (16,)) + _info("b", (16,), offset=32), n_tensors=2,
                     data=b"\0" * 128),
    "duplicate tensor": _file(infos=_info("a") + _info("a", offset=128), n_tensors=2,
                              data=b"\0" * 256),
    "bad tensor name utf-8": _file(infos=_info(b"\xc3"), n_tensors=1, data=b"\0" * 128),
    "empty file": b"",
    "short file": b"GGUF\3\0",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_headers_raise_gguf_error(tmp_path, case):
    path = tmp_path / "hostile.gguf"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(pg.GgufError) as raised:
        pg.read_gguf(path)
    assert str(path) in str(raised.value)


def test_hand_made_valid_file_reads(tmp_path):
    # The builder itself makes readable files: one F32 tensor of 32 values, version 2.
    path = tmp_path / "ok.gguf"
    values = np.arange(32, dtype=np.float32)
    path.write_bytes(_file(_s("k") + struct.pack("<IIQ", 9, 9, 2) + struct.pack("<IQ", 5, 1)
                           + struct.pack("<i", -1) + struct.pack("<IQ", 8, 1) + _s("x"), 1,
                           _info(), 1, values.tobytes(), version=2))
    f = pg.read_gguf(path)
    assert f.version == 2
    nested = f.metadata["k"]
    assert nested[0].tolist() == [-1] and nested[1] == ["x"]
    assert np.array_equal(f.tensors["w"].dequantize(), values)

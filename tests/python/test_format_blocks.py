"""The block dtypes q8_0 and q4_1 (docs/format.md, "Block-quantised matrices"): our numpy
quantisers give the bytes of the gguf package's (ggml's reference quantisers) on random and
awkward data, our dequantisation (and the C++ reader's) its values bit for bit, write_model
stores a BlockMatrix byte for byte (tied ones once) and quantize="q8_0" / "q4_1" as gguf would,
and bad blocks or shapes are refused."""

from __future__ import annotations

import platform
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.format import BlockMatrix, DType, read_model, stored_bytes, write_model
from pytransformer.format.quantize import from_blocks, to_blocks
from tiny_models import file_layout, random_tensors, tiny_metadata

gguf = pytest.importorskip("gguf", reason="the reference quantisers are the gguf package's "
                           "(pip install gguf)")
QT = gguf.GGMLQuantizationType
KINDS = {"q8_0": QT.Q8_0, "q4_1": QT.Q4_1}
BLOCK_BYTES = {"q8_0": 34, "q4_1": 20}


def _bits(values: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)


def _awkward() -> dict[str, np.ndarray]:
    """[rows, cols] float32 matrices, cols a multiple of 32."""
    rng = np.random.default_rng(1)
    normal = rng.standard_normal((16, 256)).astype(np.float32)
    constant = np.repeat(np.array([[0.0], [1.0], [-2.5], [1e-3], [65504.0], [-7.0]],
                                  dtype=np.float32), 64, axis=1)
    halves = (rng.integers(-254, 255, (8, 64)) / np.float32(2)).astype(np.float32)
    halves[:, 0] = 127.0  # q8_0: d = 1, so x / d lands on every half
    outlier = normal[:4, :64].copy()
    outlier[:, 5] = 1e4
    signed_zero = np.zeros((2, 32), np.float32)
    signed_zero[0, ::2] = -0.0
    signed_zero[1, :] = -0.0
    return {
        "normal": normal,
        "wide range": (normal * np.float32(10) ** rng.integers(-6, 5, (16, 1))).astype(
            np.float32),
        "zeros": np.zeros((3, 64), np.float32),
        "signed zeros": signed_zero,
        "constant blocks": constant,
        "negative only": -np.abs(normal[:8]) - np.float32(0.25),
        "positive only": np.abs(normal[:8]) + np.float32(3),
        "tiny": (normal[:4] * np.float32(1e-30)).astype(np.float32),
        "subnormal": (normal[:4] * np.float32(1e-42)).astype(np.float32),
        "large": (normal[:4] * np.float32(1e4)).astype(np.float32),
        "halves": halves,
        "one outlier": outlier,
        "two values": np.where(normal[:4] > 0, np.float32(1), np.float32(-1)),
        "many blocks": rng.standard_normal((40, 1024 * 33)).astype(np.float32),  # > one chunk
    }


AWKWARD = _awkward()


@pytest.mark.parametrize("dtype", ["q8_0", "q4_1"])
@pytest.mark.parametrize("case", list(AWKWARD))
def test_quantisers_match_gguf(dtype: str, case: str) -> None:
    matrix = AWKWARD[case]
    with np.errstate(all="ignore"):  # gguf's own warnings ("subnormal": 1 / d overflows)
        expected = gguf.quants.quantize(matrix, KINDS[dtype])
    if case == "subnormal" and platform.machine().lower() not in ("x86_64", "amd64"):
        # There gguf's integers are numpy's casts of inf / NaN, which vary by machine (ggml's
        # are undefined); ours are 0. The values read back are 0 either way (d's float16 is 0).
        expected = _zero_integers(expected, dtype)
    blocks = to_blocks(matrix, dtype)
    assert blocks.dtype == np.uint8 and blocks.shape == expected.shape
    np.testing.assert_array_equal(blocks, expected)
    values = from_blocks(blocks, dtype, matrix.shape)
    np.testing.assert_array_equal(_bits(values), _bits(gguf.quants.dequantize(expected,
                                                                                KINDS[dtype])))


def _zero_integers(blocks: np.ndarray, dtype: str) -> np.ndarray:
    result = blocks.copy().reshape(-1, BLOCK_BYTES[dtype])
    result[:, 2 if dtype == "q8_0" else 4:] = 0
    return result.reshape(blocks.shape)


@pytest.mark.parametrize("dtype", ["q8_0", "q4_1"])
def test_other_float_inputs_are_quantised_from_float32(dtype: str) -> None:
    """float64 and float16 inputs: both sides go through float32 first."""
    matrix = np.random.default_rng(2).standard_normal((4, 96))
    for source in (matrix, matrix.astype(np.float16)):
        np.testing.assert_array_equal(to_blocks(source, dtype),
                                      gguf.quants.quantize(source, KINDS[dtype]))


def _random_blocks(dtype: str, rows: int, cols: int, seed: int) -> np.ndarray:
    """Arbitrary block bytes whose d (and m) are finite float16 values of every magnitude
    (subnormals included), in the layout of the file."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (rows * cols // 32, BLOCK_BYTES[dtype]), dtype=np.uint8)
    scales = 2 if dtype == "q8_0" else 4
    bits = rng.integers(0, 0x7C00, (data.shape[0], scales // 2), dtype=np.uint16)
    bits |= rng.integers(0, 2, bits.shape, dtype=np.uint16) << 15  # signs
    data[:, :scales] = bits.astype("<u2").view(np.uint8).reshape(data.shape[0], scales)
    return data.reshape(rows, -1)


@pytest.mark.parametrize("dtype", ["q8_0", "q4_1"])
def test_dequantisation_matches_gguf_on_arbitrary_blocks(dtype: str, tmp_path: Path) -> None:
    """Any bytes with finite d (and m), subnormal ones included: our values, read_model's and
    the C++ reader's (ModelFile.tensor) are gguf.quants.dequantize's, bit for bit."""
    data = _random_blocks(dtype, 64, 96, seed=3)
    expected = _bits(gguf.quants.dequantize(data, KINDS[dtype]))
    np.testing.assert_array_equal(_bits(from_blocks(data, dtype, (64, 96))), expected)
    np.testing.assert_array_equal(_bits(BlockMatrix(dtype, (64, 96), data).dequantize()),
                                  expected)

    metadata = _metadata()
    tensors = random_tensors(metadata, seed=0)
    up = _random_blocks(dtype, 64, 32, seed=4)  # dec.0.ffn_up.weight: [ffn 64, d 32]
    tensors["dec.0.ffn_up.weight"] = BlockMatrix(dtype, (64, 32), up)
    path = tmp_path / "blocks.ptm"
    write_model(path, metadata, tensors)
    expected = _bits(gguf.quants.dequantize(up, KINDS[dtype]))
    np.testing.assert_array_equal(_bits(read_model(path)[1]["dec.0.ffn_up.weight"]), expected)
    np.testing.assert_array_equal(_bits(_core.ModelFile(path).tensor("dec.0.ffn_up.weight")),
                                  expected)


# ---------------------------------------------------------------------------------------------
# files

def _metadata(**overrides) -> dict:
    """A tiny translation model whose matrices have 32 or 64 columns (ffn_dim 40: ffn_down has
    40 columns, not a multiple of 32)."""
    return tiny_metadata(d_model=32, ffn_dim=overrides.pop("ffn_dim", 64), **overrides)


def _stored(path: Path) -> dict[str, tuple[int, tuple[int, ...], int, bytes]]:
    """name -> (dtype code, dims, offset, stored bytes), parsed here from the file itself."""
    data = path.read_bytes()
    layout = file_layout(data)
    result = {}
    for entry in layout.tensors:
        rank = data[entry.rank_offset]
        dims = struct.unpack_from(f"<{rank}Q", data, entry.dims_offset)
        start = layout.data_offset + entry.data_offset
        result[entry.name] = (data[entry.dtype_offset], dims, entry.data_offset,
                              data[start:start + entry.size])
    return result


@pytest.mark.parametrize("dtype", ["q8_0", "q4_1"])
def test_write_model_quantises_as_gguf(dtype: str, tmp_path: Path) -> None:
    """Every matrix in blocks, tied output projection stored once; ffn_down (40 columns) f16;
    vectors f32; bytes those of gguf.quants.quantize; read back bit for bit."""
    metadata = _metadata(ffn_dim=40)
    tensors = random_tensors(metadata, seed=0)
    path = tmp_path / "model.ptm"
    write_model(path, metadata, tensors, quantize=dtype)
    stored = _stored(path)
    code = DType.Q8_0 if dtype == "q8_0" else DType.Q4_1
    _, read = read_model(path)
    model_file = _core.ModelFile(path)
    for name, (stored_dtype, dims, _, data) in stored.items():
        value = tensors[name]
        assert dims == value.shape
        if value.ndim == 1:
            assert stored_dtype == DType.F32, name
        elif value.shape[1] % 32:
            assert stored_dtype == DType.F16, name
        else:
            assert stored_dtype == code, name
            blocks = gguf.quants.quantize(value, KINDS[dtype])
            assert data == blocks.tobytes(), name
            assert len(data) == stored_bytes(dtype, value.shape)
            expected = _bits(gguf.quants.dequantize(blocks, KINDS[dtype]))
            np.testing.assert_array_equal(_bits(read[name]), expected, err_msg=name)
            np.testing.assert_array_equal(_bits(model_file.tensor(name)), expected,
                                          err_msg=name)
            assert model_file.tensor_info(name) == (dtype, value.shape)
    assert stored["dec.out_proj.weight"][2] == stored["dec.embed.weight"][2]
    assert read["dec.out_proj.weight"] is read["dec.embed.weight"]


def test_block_matrices_are_stored_verbatim(tmp_path: Path) -> None:
    """A BlockMatrix is stored as given whatever quantize says (here None and int8); the same
    BlockMatrix given twice is stored once; read_model(keep_blocks=True) gives the bytes back
    and writing those again gives the same file."""
    metadata = _metadata()
    tensors = random_tensors(metadata, seed=1)
    embed = BlockMatrix("q8_0", (30, 32), gguf.quants.quantize(tensors["dec.embed.weight"],
                                                                 QT.Q8_0))
    up = _random_blocks("q4_1", 64, 32, seed=4)
    tensors.update({"dec.embed.weight": embed, "dec.out_proj.weight": embed,
                    "dec.1.ffn_up.weight": BlockMatrix("q4_1", (64, 32), up)})
    for quantize in (None, "int8"):
        path = tmp_path / f"{quantize}.ptm"
        write_model(path, metadata, tensors, quantize=quantize)
        stored = _stored(path)
        assert stored["dec.embed.weight"][0] == DType.Q8_0
        assert stored["dec.embed.weight"][3] == embed.data.tobytes()
        assert stored["dec.out_proj.weight"][2] == stored["dec.embed.weight"][2]
        assert stored["dec.1.ffn_up.weight"][:2] == (DType.Q4_1, (64, 32))
        assert stored["dec.1.ffn_up.weight"][3] == up.tobytes()
        assert stored["dec.0.ffn_up.weight"][0] == (DType.F32 if quantize is None
                                                    else DType.INT8)
        model_file = _core.ModelFile(path)
        raw = model_file.tensor("dec.1.ffn_up.weight", dequantize=False)
        assert raw.dtype == np.uint8 and raw.shape == (64, 20)
        np.testing.assert_array_equal(raw, up)
        assert model_file.verify() == len(stored)

    _, kept = read_model(tmp_path / "None.ptm", keep_blocks=True)
    assert isinstance(kept["dec.embed.weight"], BlockMatrix)
    assert kept["dec.out_proj.weight"] is kept["dec.embed.weight"]
    np.testing.assert_array_equal(kept["dec.1.ffn_up.weight"].data, up)
    rewritten = tmp_path / "again.ptm"
    write_model(rewritten, *read_model(tmp_path / "None.ptm", keep_blocks=True))
    again, first = _stored(rewritten), _stored(tmp_path / "None.ptm")
    assert again.keys() == first.keys()
    for name, (dtype, dims, offset, data) in first.items():
        assert again[name][0] == dtype and again[name][1] == dims and again[name][3] == data
    assert again["dec.out_proj.weight"][2] == again["dec.embed.weight"][2]

    _, values = read_model(tmp_path / "None.ptm")
    np.testing.assert_array_equal(_bits(values["dec.1.ffn_up.weight"]),
                                  _bits(gguf.quants.dequantize(up, QT.Q4_1)))


def test_equal_blocks_over_the_same_memory_are_tied(tmp_path: Path) -> None:
    metadata = _metadata()
    tensors = random_tensors(metadata, seed=2)
    data = gguf.quants.quantize(tensors["dec.embed.weight"], QT.Q4_1)
    tensors["dec.embed.weight"] = BlockMatrix("q4_1", (30, 32), data)
    tensors["dec.out_proj.weight"] = BlockMatrix("q4_1", (30, 32), data[:])
    write_model(tmp_path / "tied.ptm", metadata, tensors)
    stored = _stored(tmp_path / "tied.ptm")
    assert stored["dec.out_proj.weight"][2] == stored["dec.embed.weight"][2]
    tensors["dec.out_proj.weight"] = BlockMatrix("q4_1", (30, 32), data.copy())
    write_model(tmp_path / "copy.ptm", metadata, tensors)
    stored = _stored(tmp_path / "copy.ptm")
    assert stored["dec.out_proj.weight"][2] != stored["dec.embed.weight"][2]


def test_stored_bytes() -> None:
    assert stored_bytes("q8_0", (3, 64)) == 3 * 2 * 34
    assert stored_bytes(DType.Q4_1, (5, 32)) == 5 * 20
    assert stored_bytes("f16", (3, 7)) == 42 and stored_bytes("f32", (4,)) == 16
    with pytest.raises(ValueError, match="cols a multiple of 32"):
        stored_bytes("q4_1", (4, 40))
    with pytest.raises(ValueError, match="unknown dtype 'q5_0'"):
        stored_bytes("q5_0", (4, 32))


# ---------------------------------------------------------------------------------------------
# refusals

def _with_field(data: np.ndarray, dtype: str, field: int, value: float) -> np.ndarray:
    """A copy of the blocks with float16 field `field` (0: d, 1: m) of the third block
    replaced."""
    changed = data.copy()
    blocks = changed.reshape(-1, BLOCK_BYTES[dtype])
    blocks[2, 2 * field:2 * field + 2] = np.array([value], "<f2").view(np.uint8)
    return changed


GOOD = {dtype: gguf.quants.quantize(AWKWARD["normal"][:4, :64], KINDS[dtype])
        for dtype in KINDS}
BAD_BLOCKS = [
    (lambda: BlockMatrix("q4_0", (4, 64), GOOD["q4_1"]), ValueError, "one of q8_0, q4_1"),
    (lambda: BlockMatrix("q8_0", (4, 48), GOOD["q8_0"]), ValueError, "a multiple of 32"),
    (lambda: BlockMatrix("q8_0", (256,), GOOD["q8_0"]), ValueError, "shape (rows, cols)"),
    (lambda: BlockMatrix("q8_0", (4, 0), GOOD["q8_0"]), ValueError, "positive integers"),
    (lambda: BlockMatrix("q8_0", (2, 64), GOOD["q8_0"]), ValueError,
     "has data of shape (2, 68), not (4, 68)"),
    (lambda: BlockMatrix("q8_0", (4, 64), GOOD["q8_0"].reshape(-1)), ValueError, "not (272,)"),
    (lambda: BlockMatrix("q4_1", (4, 64), GOOD["q8_0"]), ValueError, "(4, 40)"),
    (lambda: BlockMatrix("q8_0", (4, 64), GOOD["q8_0"].view(np.int8)), TypeError, "uint8"),
    (lambda: BlockMatrix("q8_0", (4, 64), GOOD["q8_0"].tobytes()), TypeError, "uint8"),
    (lambda: BlockMatrix("q8_0", (4, 64), _with_field(GOOD["q8_0"], "q8_0", 0, np.inf)),
     ValueError, "finite d"),
    (lambda: BlockMatrix("q4_1", (4, 64), _with_field(GOOD["q4_1"], "q4_1", 0, np.nan)),
     ValueError, "finite d"),
    (lambda: BlockMatrix("q4_1", (4, 64), _with_field(GOOD["q4_1"], "q4_1", 1, -np.inf)),
     ValueError, "finite m"),
    (lambda: BlockMatrix.from_float(np.full((1, 32), np.nan, np.float32), "q8_0"), ValueError,
     "NaN or infinite"),
]


@pytest.mark.parametrize("make,error,message", BAD_BLOCKS)
def test_bad_block_matrices_are_refused(make, error, message) -> None:
    with pytest.raises(error, match=re.escape(message)):
        make()


def test_writer_refuses_misplaced_or_misshapen_blocks(tmp_path: Path) -> None:
    metadata = _metadata()
    blocks = BlockMatrix("q8_0", (32, 64), _random_blocks("q8_0", 32, 64, seed=5))
    tensors = random_tensors(metadata, seed=0)
    tensors["dec.0.ffn_down.weight"] = blocks  # [d 32, ffn 64]: its place
    write_model(tmp_path / "good.ptm", metadata, tensors)
    for name, message in (("dec.0.attn_self_q.weight",
                           ("tensor 'dec.0.attn_self_q.weight' has shape [32, 64], expected "
                            "[32, 32]")),
                          ("dec.0.ffn_up.bias", ("tensor 'dec.0.ffn_up.bias' is given as q8_0 "
                                                 "blocks, but it is stored as f32"))):
        tensors = random_tensors(metadata, seed=0)
        tensors[name] = blocks
        with pytest.raises(ValueError, match=re.escape(message)):
            write_model(tmp_path / "refused.ptm", metadata, tensors, quantize="q8_0")
    assert not (tmp_path / "refused.ptm").exists()


# (dtype, a value that makes a block's float16 d or m infinite, a value just inside)
BEYOND_RANGE = [
    ("q8_0", 127 * 65520.0, 8.32e6),      # d = max|x| / 127
    ("q4_1", 1e6, 9.8e5),                 # d = (max - min) / 15, min about -3
    ("q4_1", -65520.0, -65500.0),         # m = min
    ("q4_1", 3e38, 1e4),                  # max - min overflows float32
]


@pytest.mark.parametrize("dtype,beyond,inside", BEYOND_RANGE)
def test_values_beyond_the_block_range_are_refused(dtype: str, beyond: float, inside: float,
                                                   tmp_path: Path) -> None:
    """A block whose float16 d (or m) would be infinite: refused, naming the tensor; nothing is
    written. Just inside the range is written."""
    metadata = _metadata()
    tensors = random_tensors(metadata, seed=0)
    matrix = tensors["dec.1.ffn_down.weight"] = tensors["dec.1.ffn_down.weight"].copy()
    matrix[3, 7] = beyond
    path = tmp_path / "big.ptm"
    with pytest.raises(ValueError, match=re.escape(f"tensor 'dec.1.ffn_down.weight': values "
                                                   f"exceed the {dtype} range")):
        write_model(path, metadata, tensors, quantize=dtype)
    assert not list(tmp_path.iterdir())
    matrix[3, 7] = inside
    write_model(path, metadata, tensors, quantize=dtype)
    blocks = gguf.quants.quantize(matrix, KINDS[dtype])
    assert _stored(path)["dec.1.ffn_down.weight"][3] == blocks.tobytes()


def test_unknown_quantize_is_refused(tmp_path: Path) -> None:
    metadata = _metadata()
    with pytest.raises(ValueError, match=re.escape("'q8_0', 'q4_1', not 'q4_0'")):
        write_model(tmp_path / "m.ptm", metadata, random_tensors(metadata), quantize="q4_0")

"""Writer and reader of the model file: round trips, quantization, tied weights, refusals."""

from __future__ import annotations

import os
import re
import struct
import zlib

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.format import (
    FORMAT_VERSION,
    MAGIC,
    DType,
    ModelFormatError,
    ValueType,
    read_model,
    write_model,
)
from tiny_models import file_layout, random_tensors, tiny_metadata, write_random_model


@pytest.fixture
def model_path(tmp_path):
    return tmp_path / "model.ptm"


def test_header_constants_match_written_file(model_path):
    write_random_model(model_path)
    data = model_path.read_bytes()
    assert data[:8] == MAGIC == b"PYTRFMR\x00"
    version, flags, _, _, data_offset, data_size = struct.unpack_from("<IIQQQQ", data, 8)
    assert (version, flags) == (FORMAT_VERSION, 0) == (1, 0)
    assert data[48:64] == bytes(16)
    assert data_offset % 64 == 0 and data_offset + data_size == len(data)
    layout = file_layout(data)
    assert all(t.data_offset % 64 == 0 for t in layout.tensors)
    assert [int(d) for d in DType] == [0, 1, 2, 3, 4, 5]
    assert [int(v) for v in ValueType] == list(range(1, 9))


def test_every_metadata_type_round_trips(model_path):
    extra = {
        "test.bool_true": True,
        "test.bool_false": False,
        "test.int": -(2**63),
        "test.int_max": 2**63 - 1,
        "test.float": -1.5e-300,
        "test.float_inf": float("inf"),
        "test.string": "héllo ▁ 世界 \U0001F600",
        "test.empty_string": "",
        "test.bytes": bytes(range(256)) * 3,
        "test.empty_bytes": b"",
        "test.int_array": [0, -1, 2**62, -(2**63)],
        "test.string_array": ["", "a", "▁b", "\x00nul"],
        "test.float_array": [0.5, -2.0, 1e308],
        "test.mixed_numbers": (1, 2.5),
        "tokenizer.target_languages": [],
        "generation.suppressed_ids": [],
        "test.numpy_scalar": np.int32(7),
        "test.numpy_array": np.array([1.0, 2.0], dtype=np.float32),
    }
    metadata = tiny_metadata(extra=extra)
    write_model(model_path, metadata, random_tensors(metadata))
    read_metadata, _ = read_model(model_path)
    assert set(read_metadata) == set(metadata)
    for key, value in read_metadata.items():
        original = metadata[key]
        if key == "test.mixed_numbers":
            assert value == [1.0, 2.5] and all(type(v) is float for v in value)
        elif key == "test.numpy_scalar":
            assert value == 7 and type(value) is int
        elif key == "test.numpy_array":
            assert value == [1.0, 2.0]
        elif isinstance(original, (list, tuple)):
            assert value == list(original), key
            assert all(type(a) is type(b) for a, b in zip(value, original)), key
        else:
            assert value == original and type(value) is type(original), key
    assert _core.ModelFile(model_path).metadata == read_metadata


@pytest.mark.parametrize("bad, message", [
    ({"test.none": object()}, "unsupported value type"),
    ({"test.dict": {"a": 1}}, "unsupported value type"),
    ({"test.mixed": [1, "a"]}, "list elements"),
    ({"test.bools": [True, False]}, "list elements"),
    ({"test.empty": []}, "cannot infer the element type"),
    ({"test.big": 2**63}, "does not fit in int64"),
    ({"Test.upper": 1}, "metadata key"),
    ({"a" * 257: 1}, "metadata key"),
    ({"test.matrix": np.zeros((2, 2))}, "1-D"),
])
def test_writer_rejects_unencodable_metadata(model_path, bad, message):
    metadata = tiny_metadata(extra=bad)
    with pytest.raises((TypeError, ValueError), match=message):
        write_model(model_path, metadata, random_tensors(tiny_metadata()))
    assert not model_path.exists()


def test_binding_and_writer_encode_alike():
    """_core.expected_tensors converts dict values with the same rules as the writer."""
    assert _core.expected_tensors(tiny_metadata(extra={"test.x": [1, 2.5]}))
    with pytest.raises(ModelFormatError, match="test.x: list elements"):
        _core.expected_tensors(tiny_metadata(extra={"test.x": [1, "a"]}))
    with pytest.raises(ModelFormatError, match="test.x: cannot infer"):
        _core.expected_tensors(tiny_metadata(extra={"test.x": []}))
    with pytest.raises(ModelFormatError, match="model.d_model: expected int64, got float64"):
        _core.expected_tensors(tiny_metadata(d_model=16.0))


def stored_dtype(name: str, quantize: str | None) -> str:
    """The dtype write_model(quantize=...) gives the matrix `name` (docs/format.md)."""
    if quantize == "int8":
        int8 = re.fullmatch(r"dec\.[0-9]+\.ffn_(up|down)\.weight|dec\.out_proj\.weight", name)
        return "int8" if int8 else "f16"
    return {None: "f32", "f16": "f16", "bf16": "bf16", "int8_all": "int8"}[quantize]


@pytest.mark.parametrize("quantize", [None, "f16", "bf16", "int8", "int8_all"])
def test_quantized_round_trip_within_bounds(model_path, quantize):
    metadata = tiny_metadata(d_model=32, heads=4, source_vocab_size=50, target_vocab_size=40)
    original = random_tensors(metadata, seed=3)
    big_row = original["dec.0.ffn_up.weight"]
    big_row[0] *= 1000.0  # rows of very different magnitude: per-row scales must handle it
    big_row[1] = 0.0  # an all-zero row
    write_model(model_path, metadata, original, quantize=quantize)
    model_file = _core.ModelFile(model_path)
    _, tensors = read_model(model_path)
    for name, shape, quantizable in _core.expected_tensors(metadata):
        dtype, stored_shape = model_file.tensor_info(name)
        assert stored_shape == shape
        assert dtype == (stored_dtype(name, quantize) if quantizable else "f32"), name
        value, source = tensors[name], original[name]
        assert value.dtype == np.float32 and value.shape == shape
        if dtype == "f32":
            np.testing.assert_array_equal(value, source)
        elif dtype == "f16":
            np.testing.assert_array_equal(value, source.astype(np.float16).astype(np.float32))
        elif dtype == "bf16":
            # Round to nearest: the error is at most half a bf16 step (2^-8 relative).
            assert np.all(np.abs(value - source) <= np.abs(source) * 2.0**-8)
            assert np.all(value.view(np.uint32) & 0xFFFF == 0)
        else:
            scale = model_file.tensor(name + ".scale")
            np.testing.assert_allclose(scale, np.abs(source).max(axis=1) / 127
                                       + (np.abs(source).max(axis=1) == 0), rtol=1e-6)
            assert np.all(np.abs(value - source) <= scale[:, None] * (0.5 + 1e-5))
            raw = model_file.tensor(name, dequantize=False)
            assert raw.dtype == np.int8 and raw.min() >= -127
            np.testing.assert_array_equal(value, raw.astype(np.float32) * scale[:, None])
    if quantize in ("int8", "int8_all"):
        assert np.all(tensors["dec.0.ffn_up.weight"][1] == 0)
        assert model_file.tensor("dec.0.ffn_up.weight.scale")[1] == 1.0


def test_bf16_rounds_to_nearest_even(model_path):
    metadata = tiny_metadata()
    tensors = random_tensors(metadata)
    matrix = tensors["enc.0.ffn_up.weight"]
    # 1 + 2^-8 lies exactly between two bf16 values (1 and 1 + 2^-7): ties go to the even one
    # (1); 1 + 3 * 2^-8 goes up to 1 + 2^-6 (even); 1 + 2^-8 + 2^-20 rounds up.
    matrix[0, :4] = [1 + 2.0**-8, 1 + 3 * 2.0**-8, 1 + 2.0**-8 + 2.0**-20, -(1 + 2.0**-8)]
    write_model(model_path, metadata, tensors, quantize="bf16")
    raw = _core.ModelFile(model_path).tensor("enc.0.ffn_up.weight", dequantize=False)
    assert raw.dtype == np.uint16
    expected = np.array([1.0, 1 + 2.0**-6, 1 + 2.0**-7, -1.0], dtype=np.float32)
    np.testing.assert_array_equal(raw[0, :4], expected.view(np.uint32) >> 16)


def test_raw_dtypes(model_path):
    write_random_model(model_path, quantize="f16")
    model_file = _core.ModelFile(model_path)
    raw = model_file.tensor("enc.0.ffn_up.weight", dequantize=False)
    assert raw.dtype == np.float16
    np.testing.assert_array_equal(raw.astype(np.float32), model_file.tensor("enc.0.ffn_up.weight"))
    assert model_file.tensor("enc.0.ffn_up.bias", dequantize=False).dtype == np.float32


@pytest.mark.parametrize("quantize", [None, "int8_all"])
def test_tied_weights_stored_once(tmp_path, quantize):
    metadata = tiny_metadata(d_model=32, target_vocab_size=200)
    tied_path, untied_path = tmp_path / "tied.ptm", tmp_path / "untied.ptm"
    tensors = random_tensors(metadata, tied=True)
    write_model(tied_path, metadata, tensors, quantize=quantize)
    untied = dict(tensors, **{"dec.out_proj.weight": tensors["dec.embed.weight"].copy()})
    write_model(untied_path, metadata, untied, quantize=quantize)
    matrix_bytes = 200 * 32 * (4 if quantize is None else 1)
    saved = os.path.getsize(untied_path) - os.path.getsize(tied_path)
    assert matrix_bytes <= saved <= matrix_bytes + 64 + (200 * 4 + 64 if quantize else 0)

    model_file = _core.ModelFile(tied_path)
    names = ["dec.embed.weight", "dec.out_proj.weight"]
    if quantize:
        assert (model_file.tensor_offset(names[0] + ".scale")
                == model_file.tensor_offset(names[1] + ".scale"))
    assert model_file.tensor_offset(names[0]) == model_file.tensor_offset(names[1])
    _, read = read_model(tied_path)
    assert read[names[0]] is read[names[1]]
    _, read_untied = read_model(untied_path)
    assert read_untied[names[0]] is not read_untied[names[1]]
    np.testing.assert_array_equal(read[names[1]], read_untied[names[1]])


def test_int8_stores_a_tied_output_projection_twice(model_path):
    """quantize="int8": int8 output projection, f16 embeddings (still shared by both stacks)."""
    metadata = tiny_metadata(d_model=32, target_vocab_size=30, source_vocab_size=30)
    tensors = random_tensors(metadata, tied=True)
    tensors["enc.embed.weight"] = tensors["dec.embed.weight"]
    write_model(model_path, metadata, tensors, quantize="int8")
    model_file = _core.ModelFile(model_path)
    assert model_file.tensor_info("dec.out_proj.weight")[0] == "int8"
    assert model_file.tensor_info("dec.embed.weight")[0] == "f16"
    assert (model_file.tensor_offset("enc.embed.weight")
            == model_file.tensor_offset("dec.embed.weight")
            != model_file.tensor_offset("dec.out_proj.weight"))
    _, read = read_model(model_path)
    assert read["enc.embed.weight"] is read["dec.embed.weight"]
    assert read["dec.out_proj.weight"] is not read["dec.embed.weight"]


def test_views_of_the_same_memory_are_tied(model_path):
    metadata = tiny_metadata()
    tensors = random_tensors(metadata, tied=False)
    tensors["dec.out_proj.weight"] = tensors["dec.embed.weight"][:]  # a view, not the object
    write_model(model_path, metadata, tensors)
    model_file = _core.ModelFile(model_path)
    assert model_file.tensor_offset("dec.out_proj.weight") == model_file.tensor_offset(
        "dec.embed.weight")


def test_torch_state_dict_tied_parameters_are_tied(model_path):
    torch = pytest.importorskip("torch")
    metadata = tiny_metadata()
    tensors = random_tensors(metadata, tied=False)
    embedding = torch.nn.Embedding(30, 16)
    projection = torch.nn.Linear(16, 30, bias=False)
    projection.weight = embedding.weight  # tied as in Marian
    module = torch.nn.ModuleDict({"embed": embedding, "out": projection})
    state = module.state_dict()
    assert state["embed.weight"] is not state["out.weight"]  # distinct tensors, one storage
    tensors["dec.embed.weight"] = state["embed.weight"]
    tensors["dec.out_proj.weight"] = state["out.weight"]
    write_model(model_path, metadata, tensors)
    model_file = _core.ModelFile(model_path)
    assert model_file.tensor_offset("dec.out_proj.weight") == model_file.tensor_offset(
        "dec.embed.weight")
    np.testing.assert_array_equal(model_file.tensor("dec.out_proj.weight"),
                                  embedding.weight.detach().numpy())


def test_read_model_output_can_be_written_again(tmp_path):
    write_random_model(tmp_path / "a.ptm", seed=5, quantize="int8_all", output_bias=True)
    metadata, tensors = read_model(tmp_path / "a.ptm")
    assert not any(name.endswith(".scale") for name in tensors)
    write_model(tmp_path / "b.ptm", metadata, tensors)
    metadata_b, tensors_b = read_model(tmp_path / "b.ptm")
    assert metadata_b == metadata
    for name in tensors:
        np.testing.assert_array_equal(tensors_b[name], tensors[name])
    assert tensors_b["dec.out_proj.weight"] is tensors_b["dec.embed.weight"]


def test_writer_refuses_missing_unknown_and_misshaped_tensors(model_path):
    metadata = tiny_metadata()
    good = random_tensors(metadata)
    cases = [
        ({k: v for k, v in good.items() if k != "enc.1.ffn_down.bias"},
         ValueError, "missing tensors for this metadata: enc.1.ffn_down.bias"),
        (dict(good, **{"enc.2.ffn_up.weight": good["enc.0.ffn_up.weight"]}),
         ValueError, "unexpected tensors for this metadata: enc.2.ffn_up.weight"),
        (dict(good, **{"dec.out_proj.bias": np.zeros(30, np.float32)}),
         ValueError, "unexpected tensors"),
        (dict(good, **{"enc.0.ffn_up.weight": np.zeros((16, 32), np.float32)}),
         ValueError, re.escape("'enc.0.ffn_up.weight' has shape [16, 32], expected [32, 16]")),
        (dict(good, **{"enc.0.ffn_up.bias": np.zeros((1, 32), np.float32)}),
         ValueError, "has shape"),
        (dict(good, **{"enc.0.ffn_up.bias": np.full(32, np.nan, np.float32)}),
         ValueError, "NaN"),
        (dict(good, **{"enc.0.ffn_up.bias": np.array(["x"] * 32)}),
         TypeError, "not a real number type"),
    ]
    for tensors, error, message in cases:
        with pytest.raises(error, match=message):
            write_model(model_path, metadata, tensors)
        assert not model_path.exists()
    with pytest.raises(ValueError, match="quantize must be"):
        write_model(model_path, metadata, good, quantize="int4")
    big = dict(good, **{"enc.0.ffn_up.weight": np.full((32, 16), 70000.0, np.float32)})
    with pytest.raises(ValueError, match="float16 range"):
        write_model(model_path, metadata, big, quantize="f16")
    assert not model_path.exists()
    assert os.listdir(model_path.parent) == []  # no temporary file left behind


def test_writer_refuses_metadata_the_reader_rejects(model_path):
    metadata = tiny_metadata(heads=3)
    with pytest.raises(ModelFormatError, match="model.encoder_heads: 3 does not divide"):
        write_model(model_path, metadata, random_tensors(tiny_metadata()))
    assert not model_path.exists()


def test_write_replaces_atomically_and_keeps_old_file_on_failure(model_path):
    write_random_model(model_path, seed=1)
    before = model_path.read_bytes()
    metadata = tiny_metadata()
    tensors = random_tensors(metadata)
    tensors["dec.1.ffn_down.weight"] = np.full((16, 32), 1e6, np.float32)  # fails mid-stream
    with pytest.raises(ValueError, match="float16 range"):
        write_model(model_path, metadata, tensors, quantize="f16")
    assert model_path.read_bytes() == before
    assert os.listdir(model_path.parent) == ["model.ptm"]
    write_random_model(model_path, seed=2)
    assert model_path.read_bytes() != before
    umask = os.umask(0)
    os.umask(umask)
    assert model_path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_writer_stores_the_crc32_of_every_tensor(model_path, quantize):
    """`checksum.crc32`: zlib.crc32 of each entry's stored bytes, in directory order (tied
    entries repeat it); the reader takes it out of the metadata."""
    metadata = write_random_model(model_path, seed=4, quantize=quantize)
    data = model_path.read_bytes()
    layout = file_layout(data)
    entry = layout.key("checksum.crc32")
    assert layout.metadata[-1] is entry and data[entry.type_offset] == ValueType.INT64_ARRAY
    count = struct.unpack_from("<Q", data, entry.value_offset)[0]
    stored = struct.unpack_from(f"<{count}q", data, entry.value_offset + 8)
    assert count == len(layout.tensors)
    for tensor, crc in zip(layout.tensors, stored):
        start = layout.data_offset + tensor.data_offset
        assert crc == zlib.crc32(data[start:start + tensor.size]), tensor.name
    model_file = _core.ModelFile(model_path)
    assert model_file.has_checksums and model_file.verify() == count
    assert set(model_file.metadata) == set(metadata)


def test_reader_crc32_matches_zlib():
    """Both implementations (PCLMULQDQ folding, tables) on every length around the 16- and
    64-byte blocks, at unaligned starts, continuing from a previous CRC."""
    data = np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    for length in [*range(0, 200), 1000, 4096, 4097, 4999]:
        for start in (0, 1, 7):
            chunk = data[start:start + length]
            for tables in (False, True):
                assert _core._crc32(chunk, 0, tables) == zlib.crc32(chunk), (length, start)
                assert _core._crc32(chunk, 12345, tables) == zlib.crc32(chunk, 12345)


def test_writer_refuses_to_be_given_checksums(model_path):
    metadata = tiny_metadata(extra={"checksum.crc32": [0]})
    with pytest.raises(ValueError, match="'checksum.crc32' is written by write_model itself"):
        write_model(model_path, metadata, random_tensors(tiny_metadata()))
    assert not model_path.exists()


def test_accepts_path_objects_and_strings(model_path):
    write_random_model(str(model_path))
    assert _core.ModelFile(model_path).path == str(model_path)
    assert _core.ModelFile(str(model_path)).format_version == 1


def _expected_names_from_the_spec(c: dict) -> list[str]:
    """The table of docs/format.md, written out independently of csrc/format/tensor_names.cpp."""
    names = []

    def norm(prefix):
        names.extend([prefix + ".gamma", prefix + ".beta"])

    def linear(prefix):
        names.append(prefix + ".weight")
        if c["model.linear_bias"]:
            names.append(prefix + ".bias")

    for side, kinds in (("enc", ["self"]), ("dec", ["self", "cross"])):
        stack = "encoder" if side == "enc" else "decoder"
        names.append(f"{side}.embed.weight")
        if c["model.embedding_norm"]:
            norm(f"{side}.embed_norm")
        for i in range(c[f"model.{stack}_layers"]):
            for kind in kinds:
                for p in ("q", "k", "v", "out"):
                    linear(f"{side}.{i}.attn_{kind}_{p}")
                norm(f"{side}.{i}.attn_{kind}_norm")
            linear(f"{side}.{i}.ffn_up")
            linear(f"{side}.{i}.ffn_down")
            norm(f"{side}.{i}.ffn_norm")
        if c["model.pre_norm"]:
            norm(f"{side}.final_norm")
    names.append("dec.out_proj.weight")
    if c["model.output_bias"]:
        names.append("dec.out_proj.bias")
    return names


@pytest.mark.parametrize("overrides", [
    {},
    {"pre_norm": True, "embedding_norm": True, "output_bias": True},
    {"linear_bias": False, "encoder_layers": 3, "decoder_layers": 1},
    {"encoder_ffn_dim": 24, "decoder_ffn_dim": 40, "source_vocab_size": 7,
     "target_vocab_size": 9},
])
def test_tensor_table_matches_the_spec(overrides):
    metadata = tiny_metadata(**overrides)
    expected = _core.expected_tensors(metadata)
    assert sorted(n for n, _, _ in expected) == sorted(_expected_names_from_the_spec(metadata))
    d = metadata["model.d_model"]
    for name, shape, quantizable in expected:
        assert quantizable == (name.endswith(".weight") and len(shape) == 2)
        if name == "enc.embed.weight":
            assert shape == (metadata["model.source_vocab_size"], d)
        elif name in ("dec.embed.weight", "dec.out_proj.weight"):
            assert shape == (metadata["model.target_vocab_size"], d)
        elif "ffn_up.weight" in name:
            assert shape == (metadata[f"model.{'encoder' if name[0] == 'e' else 'decoder'}"
                                      "_ffn_dim"], d)
        elif "ffn_down.weight" in name:
            assert shape[0] == d
        elif name.endswith(".weight"):
            assert shape == (d, d)
        elif name == "dec.out_proj.bias":
            assert shape == (metadata["model.target_vocab_size"],)


def test_tiny_models_overrides():
    metadata = tiny_metadata(layers=3, heads=2, ffn_dim=8, separate_vocabs=True,
                             target_vocab_size=12, extra={"general.name": None})
    assert metadata["model.encoder_layers"] == metadata["model.decoder_layers"] == 3
    assert metadata["vocab.target"][3] == "\u2581t3" and len(metadata["vocab.target"]) == 12
    assert "general.name" not in metadata
    with pytest.raises(TypeError, match="unknown override"):
        tiny_metadata(dmodel=8)

"""Malformed Marian files: every truncation and random mutation of small .bin, .npz and
shortlist files either reads (and its items can be used) or raises one ConversionError; never
another exception, and never an allocation sized by a corrupt count (the readers check every
count and shape against the bytes the file has first)."""

from __future__ import annotations

import io
import re
import struct
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from marian_native_models import (BASE_OPTIONS, model_yml, spm_pieces, train_sentencepiece,
                                  write_bin, write_npz, write_shortlist)
from pytransformer.convert import ConversionError
from pytransformer.convert.marian_files import read_marian_model
from pytransformer.convert.marian_native import load_marian_native
from pytransformer.convert.marian_shortlist import read_shortlist

_EXTREMES = [0, 1, 0xFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1 << 32, 1 << 40, 1 << 62,
             (1 << 63) - 1, (1 << 64) - 1]


def _tiny_items(vocab: int, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], dict]:
    d, ffn = 8, 12
    options = {**BASE_OPTIONS, "dim-emb": d, "enc-depth": 1, "dec-depth": 1,
               "transformer-heads": 2, "transformer-dim-ffn": ffn, "dim-vocabs": [vocab, vocab]}
    items: dict[str, np.ndarray] = {"Wemb": rng.normal(size=(vocab, d))}
    for stack in ("encoder", "decoder"):
        for block in ["self"] + (["context"] if stack == "decoder" else []):
            prefix = f"{stack}_l1_{block}"
            for letter in "qkvo":
                items[f"{prefix}_W{letter}"] = rng.normal(size=(d, d))
                items[f"{prefix}_b{letter}"] = rng.normal(size=(1, d))
            items[f"{prefix}_Wo_ln_scale"] = np.ones((1, d))
            items[f"{prefix}_Wo_ln_bias"] = np.zeros((1, d))
        items[f"{stack}_l1_ffn_W1"] = rng.normal(size=(d, ffn))
        items[f"{stack}_l1_ffn_b1"] = rng.normal(size=(1, ffn))
        items[f"{stack}_l1_ffn_W2"] = rng.normal(size=(ffn, d))
        items[f"{stack}_l1_ffn_b2"] = rng.normal(size=(1, d))
        items[f"{stack}_l1_ffn_ffn_ln_scale"] = np.ones((1, d))
        items[f"{stack}_l1_ffn_ffn_ln_bias"] = np.zeros((1, d))
    items["decoder_ff_logit_out_b"] = rng.normal(size=(1, vocab))
    return {name: value.astype(np.float32) for name, value in items.items()}, options


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("marian_fuzz")
    rng = np.random.default_rng(0)
    spm = train_sentencepiece(40, seed=4)
    vocab = len(spm_pieces(spm))
    items, options = _tiny_items(vocab, rng)
    yml = model_yml(options)
    (directory / "vocab.xx.spm").write_bytes(spm)
    paths = {
        "bin": write_bin(directory / "model.bin", items, yml),
        "bin_unpadded": write_bin(directory / "unpadded.bin", items, yml, pad_to_256=False),
        "bin_int8": write_bin(directory / "int8.bin", items, yml,
                              intgemm8={"Wemb", "encoder_l1_ffn_W1", "decoder_l1_self_Wq"}),
        "npz": write_npz(directory / "model.npz", items, yml),
        "shortlist": write_shortlist(directory / "lex.s2t.bin",
                                     [list(rng.choice(vocab, size=rng.integers(0, 5),
                                                      replace=False)) for _ in range(vocab)]),
    }
    return paths


def _outcome(kind: str, path: Path, checksum: bool = True) -> str:
    """'ok', or the ConversionError's message with file names and numbers blanked."""
    try:
        if kind == "shortlist":
            # Without the checksum, mutations reach the content checks.
            shortlist = read_shortlist(path, verify_checksum=checksum, target_vocab_size=64)
            for source_id in range(shortlist.source_vocab_size):
                shortlist.targets_of(source_id)
        else:
            model = read_marian_model(path)
            for item in model.tensors.values():
                try:
                    item.float32()
                except ConversionError:
                    pass
        return "ok"
    except ConversionError as error:
        message = str(error).replace(str(path), "FILE")
        return re.sub(r"0x[0-9a-f]+|\d+", "N", message)[:90]


def _mutations(data: bytes, rng: np.random.Generator, count: int):
    header = min(len(data), 1024)
    for _ in range(count):
        mutated = bytearray(data)
        choice = rng.integers(0, 3)
        if choice == 0:  # flip random bytes
            for _ in range(rng.integers(1, 5)):
                mutated[rng.integers(0, len(mutated))] ^= int(rng.integers(1, 256))
        elif choice == 1:  # an extreme u64 in the header region
            position = int(rng.integers(0, max(1, header - 8))) // 8 * 8
            value = _EXTREMES[int(rng.integers(len(_EXTREMES)))]
            mutated[position:position + 8] = struct.pack("<Q", value)
        else:  # an extreme i32 (a shape dimension)
            position = int(rng.integers(0, max(1, header - 4))) // 4 * 4
            value = _EXTREMES[int(rng.integers(len(_EXTREMES)))] & 0xFFFFFFFF
            mutated[position:position + 4] = struct.pack("<I", value)
        yield bytes(mutated)


@pytest.mark.parametrize("kind", ["bin", "bin_unpadded", "bin_int8", "npz", "shortlist"])
def test_truncated_and_mutated_files_read_or_raise_conversion_error(files, kind, tmp_path):
    data = files[kind].read_bytes()
    target = tmp_path / files[kind].name
    outcomes: Counter[str] = Counter()
    lengths = list(range(0, min(len(data), 700))) + list(range(700, len(data), 97))
    for length in lengths:
        target.write_bytes(data[:length])
        outcome = _outcome(kind, target)
        assert outcome != "ok" or kind == "npz" and length == len(data), length
        outcomes[outcome] += 1
    rng = np.random.default_rng(hash(kind) % 2**32)
    for index, mutated in enumerate(_mutations(data, rng, 1500)):
        target.write_bytes(mutated)
        outcomes[_outcome(kind, target, checksum=index % 2 == 0)] += 1
    assert outcomes["ok"] > 0  # some mutations leave a readable file (e.g. in float values)
    assert len(outcomes) > (5 if kind == "shortlist" else 15), outcomes


def test_mutated_models_convert_or_raise_conversion_error(files, tmp_path):
    """The converter on top of the readers: configs and shapes that read but do not fit."""
    directory = tmp_path / "model"
    directory.mkdir()
    (directory / "vocab.xx.spm").write_bytes(files["bin"].with_name("vocab.xx.spm").read_bytes())
    data = files["bin"].read_bytes()
    config_start = data.rindex(b"bert-train-type-embeddings")
    rng = np.random.default_rng(11)
    outcomes: Counter[str] = Counter()
    for index, mutated in enumerate(_mutations(data, rng, 300)):
        if index % 2:  # mutate the YAML text instead
            text = bytearray(data)
            for _ in range(rng.integers(1, 4)):
                text[int(rng.integers(config_start, len(data) - 1))] = int(
                    rng.choice(list(b" :-\n\"'[]{}&*!|>%@`0123456789abcxyz\t")))
            mutated = bytes(text)
        (directory / "model.bin").write_bytes(mutated)
        try:
            load_marian_native(directory)
            outcomes["ok"] += 1
        except ConversionError as error:
            outcomes[re.sub(r"\d+", "N", str(error).replace(str(directory), "DIR"))[:70]] += 1
    assert outcomes["ok"] > 0 and len(outcomes) > 10, outcomes


def _npy(header: dict, payload: bytes) -> bytes:
    text = repr(header).encode("latin1")
    text += b" " * (63 - (len(text) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + payload


@pytest.mark.parametrize("header, message", [
    ({"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)}, "needs N bytes"),
    ({"descr": "<f4", "fortran_order": False, "shape": (1 << 31, 1 << 31)}, "needs N bytes"),
    ({"descr": "<f4", "fortran_order": False, "shape": (-4,)}, "has shape"),
    ({"descr": "|O", "fortran_order": False, "shape": (1,)}, "dtype|not a valid"),
    ({"descr": "<i4", "fortran_order": False, "shape": (4,)}, "Marian reads every"),
])
def test_npz_headers_are_checked_before_reading(tmp_path: Path, header: dict,
                                                message: str) -> None:
    path = tmp_path / "model.npz"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Wemb.npy", _npy(header, b"\0" * 16))
        archive.writestr("special:model.yml.npy",
                         _npy({"descr": "|i1", "fortran_order": False, "shape": (3,)}, b"a:1"))
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ConversionError) as error:
        read_marian_model(path)
    assert re.search(message, re.sub(r"\d+", "N", str(error.value))), str(error.value)


def test_bin_counts_that_cannot_fit_are_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(struct.pack("<QQ", 1, 1 << 60) + b"\0" * 64)
    with pytest.raises(ConversionError, match="items cannot fit"):
        read_marian_model(path)
    path.write_bytes(struct.pack("<QQ4Q", 1, 1, 5, 0x404, 2, 1 << 62) + b"abcd\0"
                     + struct.pack("<2i", 1 << 30, 1 << 30) + struct.pack("<Q", 0))
    with pytest.raises(ConversionError, match="the file ends inside the data of 'abcd'"):
        read_marian_model(path)

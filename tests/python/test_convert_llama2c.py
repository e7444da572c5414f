"""convert_llama2c: llama2.c checkpoints (.bin + tok*.bin) into `llama` model files.

A tiny checkpoint and tokenizer are written here in llama2.c's own layouts (export.py's
legacy_export, tokenizer.py's export) for the structural and hostile-file tests; the real
stories260K model in shared/peer-models (skipped when absent) checks the tensors against the
.bin's arrays, the SentencePiece model against a port of run.c's encode/decode, and a numpy
forward pass driven only by the converted tensors and metadata (as docs/format.md defines them)
against run.c's greedy output.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import numpy as np
import pytest
import sentencepiece
from conftest import SHARED

from pytransformer.convert import ConversionError, convert_llama2c
from pytransformer.convert._sentencepiece_vocab import PieceType, build_sentencepiece_model
from pytransformer.convert.llama2c import load_llama2c

STORIES = SHARED / "peer-models" / "llama2c-stories260K"
needs_stories = pytest.mark.skipif(not (STORIES / "stories260K.bin").is_file(),
                                   reason=f"llama2.c stories260K model not present ({STORIES})")

# dim, hidden_dim, n_layers, n_heads, n_kv_heads, seq_len of the tiny checkpoint.
TINY = dict(dim=8, hidden_dim=12, n_layers=2, n_heads=2, n_kv_heads=1, seq_len=16)
# Merged pieces then characters, scores descending, as SentencePiece BPE vocabularies are.
TINY_PIECES = [" abc", " ab", "ab", " a", " b", " ", "a", "b", "c", "é"]


# --- llama2.c's file layouts -------------------------------------------------------------------


def tiny_vocabulary() -> tuple[list[str], list[float]]:
    """(pieces as tokenizer.py writes them, scores)."""
    pieces = ["<unk>", "\n<s>\n", "\n</s>\n"] + [f"<0x{b:02X}>" for b in range(256)]
    scores = [0.0] * len(pieces) + [-float(i) for i in range(len(TINY_PIECES))]
    return pieces + TINY_PIECES, scores


def write_tokenizer(path: Path, pieces: list[str], scores: list[float]) -> Path:
    encoded = [piece.encode("utf-8") for piece in pieces]
    out = [struct.pack("<i", max(len(e) for e in encoded))]
    for data, score in zip(encoded, scores):
        out.append(struct.pack("<fi", score, len(data)) + data)
    path.write_bytes(b"".join(out))
    return path


def tiny_arrays(vocab_size: int, shared: bool, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    d, h, n, seq = TINY["dim"], TINY["hidden_dim"], TINY["n_layers"], TINY["seq_len"]
    head_size = d // TINY["n_heads"]
    kv = TINY["n_kv_heads"] * head_size

    def normal(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.5, shape).astype(np.float32)

    angles = np.outer(np.arange(seq), 10000.0 ** (-np.arange(0, head_size, 2) / head_size))
    arrays = {
        "token_embedding": normal(vocab_size, d), "rms_att": normal(n, d),
        "wq": normal(n, d, d), "wk": normal(n, kv, d), "wv": normal(n, kv, d),
        "wo": normal(n, d, d), "rms_ffn": normal(n, d), "w1": normal(n, h, d),
        "w2": normal(n, d, h), "w3": normal(n, h, d), "rms_final": normal(d),
        "freq_cis_real": np.cos(angles).astype(np.float32),
        "freq_cis_imag": np.sin(angles).astype(np.float32),
    }
    if not shared:
        arrays["wcls"] = normal(vocab_size, d)
    return arrays


def write_checkpoint(path: Path, arrays: dict[str, np.ndarray], shared: bool = True) -> Path:
    vocab_size = arrays["token_embedding"].shape[0]
    header = struct.pack("<7i", TINY["dim"], TINY["hidden_dim"], TINY["n_layers"],
                         TINY["n_heads"], TINY["n_kv_heads"],
                         vocab_size if shared else -vocab_size, TINY["seq_len"])
    path.write_bytes(header + b"".join(np.ascontiguousarray(a, "<f4").tobytes()
                                       for a in arrays.values()))
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Path, Path, dict[str, np.ndarray]]:
    """(checkpoint, tokenizer, arrays) of a tiny llama2.c model with a shared classifier."""
    pieces, scores = tiny_vocabulary()
    arrays = tiny_arrays(len(pieces), shared=True)
    return (write_checkpoint(tmp_path / "tiny.bin", arrays),
            write_tokenizer(tmp_path / "tok.bin", pieces, scores), arrays)


def doc_tensor_shapes(metadata: dict) -> dict[str, tuple[int, ...]]:
    """The tensor table of docs/format.md (llama, no qkv bias), from the metadata."""
    d, ffn, v = metadata["model.d_model"], metadata["model.decoder_ffn_dim"], \
        metadata["model.target_vocab_size"]
    hd = d // metadata["model.decoder_heads"]
    q, kv = metadata["model.decoder_heads"] * hd, metadata["model.kv_heads"] * hd
    shapes = {"dec.embed.weight": (v, d), "dec.final_norm.gamma": (d,),
              "dec.out_proj.weight": (v, d)}
    for i in range(metadata["model.decoder_layers"]):
        shapes.update({
            f"dec.{i}.attn_self_norm.gamma": (d,), f"dec.{i}.attn_self_q.weight": (q, d),
            f"dec.{i}.attn_self_k.weight": (kv, d), f"dec.{i}.attn_self_v.weight": (kv, d),
            f"dec.{i}.attn_self_out.weight": (d, q), f"dec.{i}.ffn_norm.gamma": (d,),
            f"dec.{i}.ffn_gate_up.weight": (2 * ffn, d), f"dec.{i}.ffn_down.weight": (d, ffn),
        })
    return shapes


def assert_tensors_match(tensors: dict[str, np.ndarray], arrays: dict[str, np.ndarray],
                         shared: bool) -> None:
    np.testing.assert_array_equal(tensors["dec.embed.weight"], arrays["token_embedding"])
    np.testing.assert_array_equal(tensors["dec.out_proj.weight"],
                                  arrays["token_embedding" if shared else "wcls"])
    np.testing.assert_array_equal(tensors["dec.final_norm.gamma"], arrays["rms_final"])
    for i in range(arrays["wq"].shape[0]):
        for ours, theirs in (("attn_self_norm.gamma", "rms_att"), ("attn_self_q.weight", "wq"),
                             ("attn_self_k.weight", "wk"), ("attn_self_v.weight", "wv"),
                             ("attn_self_out.weight", "wo"), ("ffn_norm.gamma", "rms_ffn"),
                             ("ffn_down.weight", "w2")):
            np.testing.assert_array_equal(tensors[f"dec.{i}.{ours}"], arrays[theirs][i])
        np.testing.assert_array_equal(tensors[f"dec.{i}.ffn_gate_up.weight"],
                                      np.concatenate([arrays["w1"][i], arrays["w3"][i]]))


# --- structure -------------------------------------------------------------------------------


def test_tiny_checkpoint_loads_with_the_documented_metadata_and_tensors(tiny) -> None:
    checkpoint, tokenizer, arrays = tiny
    metadata, tensors = load_llama2c(checkpoint, tokenizer)
    pieces, _ = tiny_vocabulary()
    assert metadata["general.architecture"] == "llama"
    assert metadata["general.name"] == "tiny"
    assert "general.license" not in metadata
    assert {key: metadata[key] for key in (
        "model.d_model", "model.decoder_layers", "model.decoder_heads", "model.kv_heads",
        "model.decoder_ffn_dim", "model.max_positions", "model.target_vocab_size",
        "model.rotary_dim", "generation.max_length")} == {
        "model.d_model": 8, "model.decoder_layers": 2, "model.decoder_heads": 2,
        "model.kv_heads": 1, "model.decoder_ffn_dim": 12, "model.max_positions": 16,
        "model.target_vocab_size": len(pieces), "model.rotary_dim": 4,
        "generation.max_length": 15}
    assert metadata["model.rotary_layout"] == "interleaved"
    assert metadata["model.rope_base"] == 10000.0
    assert metadata["model.layer_norm_epsilon"] == 1e-5
    assert metadata["tokens.stop_ids"] == [1]
    assert metadata["vocab.target"][:4] == ["<unk>", "<s>", "</s>", "<0x00>"]
    assert metadata["vocab.target"][259:] == [p.replace(" ", "▁") for p in TINY_PIECES]

    assert {name: t.shape for name, t in tensors.items()} == doc_tensor_shapes(metadata)
    assert all(t.dtype == np.float32 for t in tensors.values())
    assert tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]
    assert_tensors_match(tensors, arrays, shared=True)


def test_separate_classifier_comes_after_the_rope_tables(tmp_path: Path) -> None:
    pieces, scores = tiny_vocabulary()
    arrays = tiny_arrays(len(pieces), shared=False)
    checkpoint = write_checkpoint(tmp_path / "untied.bin", arrays, shared=False)
    write_tokenizer(tmp_path / f"tok{len(pieces)}.bin", pieces, scores)
    # The tokenizer is found beside the checkpoint by llama2.c's tok<vocab>.bin name.
    _, tensors = load_llama2c(checkpoint)
    assert tensors["dec.out_proj.weight"] is not tensors["dec.embed.weight"]
    assert_tensors_match(tensors, arrays, shared=False)


def test_license_beside_the_checkpoint(tiny) -> None:
    checkpoint, tokenizer, _ = tiny
    (checkpoint.parent / "LICENSE").write_text("MIT License\n\nCopyright (c) 2023 someone\n")
    metadata, _ = load_llama2c(checkpoint, tokenizer)
    assert metadata["general.license"] == "MIT"


def test_tokenizer_model_is_the_sentencepiece_model_of_the_vocabulary(tiny) -> None:
    checkpoint, tokenizer, _ = tiny
    metadata, _ = load_llama2c(checkpoint, tokenizer)
    model = metadata["tokenizer.target_model"]
    processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    # protobuf itself serializes what we wrote to the same bytes.
    assert processor.serialized_model_proto() == model
    vocab = metadata["vocab.target"]
    assert [processor.id_to_piece(i) for i in range(len(vocab))] == vocab
    assert (processor.unk_id(), processor.bos_id(), processor.eos_id(), processor.pad_id()) \
        == (0, 1, 2, -1)
    assert processor.is_unknown(0) and processor.is_control(1) and processor.is_control(2)
    assert all(processor.is_byte(i) for i in range(3, 259))
    assert not any(processor.is_byte(i) or processor.is_control(i) for i in range(259, 269))
    # BPE by score, a dummy prefix, spaces kept, byte fallback for what is not a piece.
    assert processor.encode("abc  ab\n", out_type=str) == \
        ["▁abc", "▁", "▁ab", "<0x0A>"]
    assert processor.decode(processor.encode("abc  ab\nxé")) == "abc  ab\nxé"


def test_builder_refuses_vocabularies_sentencepiece_cannot_hold() -> None:
    pieces = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + ["▁a"]
    scores = [0.0] * len(pieces)
    build_sentencepiece_model(pieces, scores, source="v")
    with pytest.raises(ConversionError, match=r"v: piece '▁a' appears at ids 259 and 260"):
        build_sentencepiece_model(pieces + ["▁a"], scores + [0.0], source="v")
    with pytest.raises(ConversionError, match=r"the vocabulary has 255"):
        build_sentencepiece_model(pieces[:3] + pieces[4:], scores[1:], source="v")
    with pytest.raises(ConversionError, match=r"score nan"):
        build_sentencepiece_model(pieces, scores[:-1] + [math.nan], source="v")
    with pytest.raises(ConversionError, match=r"bos id 300 is outside"):
        build_sentencepiece_model(pieces, scores, bos_id=300, source="v")
    types = [PieceType.NORMAL] * len(pieces)
    with pytest.raises(ConversionError, match=r"the unknown piece must be exactly id 0"):
        build_sentencepiece_model(pieces, scores, types, byte_fallback=False, source="v")


# --- hostile files ---------------------------------------------------------------------------


def _patch_header(path: Path, **values: int) -> None:
    names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"]
    data = bytearray(path.read_bytes())
    header = list(struct.unpack_from("<7i", data))
    for name, value in values.items():
        header[names.index(name)] = value
    struct.pack_into("<7i", data, 0, *header)
    path.write_bytes(bytes(data))


def test_truncated_checkpoint_says_expected_and_found(tiny) -> None:
    checkpoint, tokenizer, _ = tiny
    size = checkpoint.stat().st_size
    checkpoint.write_bytes(checkpoint.read_bytes()[:-4])
    with pytest.raises(ConversionError, match=rf"tiny.bin: {size - 4} bytes, expected {size} "
                                              r".*truncated"):
        load_llama2c(checkpoint, tokenizer)


def test_checkpoint_with_extra_bytes_is_refused(tiny) -> None:
    checkpoint, tokenizer, _ = tiny
    size = checkpoint.stat().st_size
    checkpoint.write_bytes(checkpoint.read_bytes() + b"\0" * 4)
    with pytest.raises(ConversionError, match=rf"{size + 4} bytes, expected {size} .*trailing"):
        load_llama2c(checkpoint, tokenizer)


@pytest.mark.parametrize(("values", "message"), [
    ({"dim": 0}, r"header dim is 0, outside 2\.\.65536"),
    ({"dim": -8}, r"header dim is -8"),
    ({"n_layers": 0}, r"header n_layers is 0"),
    ({"n_heads": 3}, r"n_heads 3 does not divide dim 8"),
    ({"n_kv_heads": 3, "n_heads": 4}, r"n_kv_heads 3 does not divide n_heads 4"),
    ({"n_heads": 8}, r"head size 1 .* is odd"),
    ({"vocab_size": 0}, r"header \|vocab_size\| is 0"),
    ({"vocab_size": -2**31}, r"header \|vocab_size\| is 2147483648"),
    ({"seq_len": 1}, r"header seq_len is 1"),
    ({"hidden_dim": 2**20}, r"bytes, expected \d+ "),
    ({"dim": 65536, "n_layers": 1024}, r"bytes, expected \d+ "),
    ({"vocab_size": -269}, r"expected \d+ .*separate classifier"),
    ({"dim": 0x616B3432}, r"version-1/2 llama2.c export"),
])
def test_bad_header_is_refused_before_anything_is_read(tiny, values, message) -> None:
    checkpoint, tokenizer, _ = tiny
    _patch_header(checkpoint, **values)
    with pytest.raises(ConversionError, match=rf"tiny.bin: .*{message}"):
        load_llama2c(checkpoint, tokenizer)


def test_missing_empty_and_directory_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match=r"absent.bin: no such file"):
        load_llama2c(tmp_path / "absent.bin", tmp_path / "tok.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(ConversionError, match=r"empty.bin: 0 bytes, shorter than the llama2.c "
                                              r"header"):
        load_llama2c(tmp_path / "empty.bin", tmp_path / "tok.bin")
    with pytest.raises(ConversionError, match=r"not a file"):
        load_llama2c(tmp_path, tmp_path / "tok.bin")


def test_no_tokenizer_beside_the_checkpoint(tiny) -> None:
    checkpoint, _, _ = tiny
    with pytest.raises(ConversionError, match=r"no tokenizer given, and neither tok269.bin nor "
                                              r"tokenizer.bin beside it"):
        load_llama2c(checkpoint)


def _tokenizer_with(path: Path, change) -> Path:
    """The tiny tokenizer with `change(data: bytearray, offsets)` applied; offsets[i] is where
    token i's record (score, length, bytes) starts."""
    pieces, scores = tiny_vocabulary()
    data = bytearray(write_tokenizer(path, pieces, scores).read_bytes())
    offsets, offset = [], 4
    for piece in pieces:
        offsets.append(offset)
        offset += 8 + len(piece.encode("utf-8"))
    change(data, offsets)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda d, o: struct.pack_into("<i", d, o[5] + 4, -1),
     r"token 5 has length -1, outside 1\.\.6 \(max_token_length\)"),
    (lambda d, o: struct.pack_into("<i", d, o[5] + 4, 0), r"token 5 has length 0"),
    (lambda d, o: struct.pack_into("<i", d, o[268] + 4, 6),
     r"token 268 \(6 bytes at byte \d+\) extends past the end of the file"),
    (lambda d, o: struct.pack_into("<i", d, 0, 2**31 - 1), r"max_token_length is 2147483647"),
    (lambda d, o: d.__delitem__(slice(o[200], None)), r"ends at token 200 of the model's 269"),
    (lambda d, o: d.extend(b"\0\0\0\0\1\0\0\0a"), r"9 bytes after the model's 269 tokens"),
    (lambda d, o: d.__setitem__(o[265] + 8, 0xC3), r"token 265 \(b'\\xc3'\) is not valid"),
    (lambda d, o: struct.pack_into("<f", d, o[260], math.inf), r"token 260 has score inf"),
    (lambda d, o: d.__setitem__(slice(o[1] + 8, o[1] + 13), b"\n<S>\n"),
     r"token 1 is '\\n<S>\\n'; llama2.c tokenizers have '<s>' there"),
    (lambda d, o: d.__setitem__(slice(o[263] + 8, o[263] + 10), b"ab"),
     r"piece 'ab' appears at ids 261 and 263"),
])
def test_hostile_tokenizer_is_refused(tiny, change, message) -> None:
    checkpoint, tokenizer, _ = tiny
    _tokenizer_with(tokenizer, change)
    with pytest.raises(ConversionError, match=rf"tok.bin: .*{message}"):
        load_llama2c(checkpoint, tokenizer)


def test_tokenizer_of_a_smaller_vocabulary(tiny) -> None:
    checkpoint, tokenizer, _ = tiny
    pieces, scores = tiny_vocabulary()
    write_tokenizer(tokenizer, pieces[:-1], scores[:-1])
    with pytest.raises(ConversionError, match=r"tok.bin: ends at token 268 of the model's 269"):
        load_llama2c(checkpoint, tokenizer)


def test_mutated_files_raise_conversion_errors_only(tiny) -> None:
    checkpoint, tokenizer, _ = tiny
    original_checkpoint, original_tokenizer = checkpoint.read_bytes(), tokenizer.read_bytes()
    rng = np.random.default_rng(7)
    for trial in range(60):
        target, original = ((checkpoint, original_checkpoint) if trial % 2
                            else (tokenizer, original_tokenizer))
        data = bytearray(original)
        if trial % 3 == 0:
            del data[int(rng.integers(0, len(data))):]
        else:  # bytes of the header, or of the first token records
            for _ in range(3):
                data[int(rng.integers(0, 48))] = int(rng.integers(0, 256))
        target.write_bytes(bytes(data))
        try:
            load_llama2c(checkpoint, tokenizer)
        except ConversionError:
            pass
        target.write_bytes(original)


# --- writing (needs the extension's llama support) ---------------------------------------------


def test_tiny_conversion_reads_back(tiny, tmp_path: Path) -> None:
    from pytransformer import _core
    from pytransformer.format import read_model

    checkpoint, tokenizer, arrays = tiny
    output = convert_llama2c(checkpoint, tmp_path / "tiny.ptm", tokenizer=tokenizer)
    metadata, tensors = load_llama2c(checkpoint, tokenizer)
    read_metadata, read_tensors = read_model(output)
    assert read_metadata == metadata
    assert read_tensors.keys() == tensors.keys()
    assert_tensors_match(read_tensors, arrays, shared=True)
    model_file = _core.ModelFile(str(output))
    assert model_file.tensor_offset("dec.out_proj.weight") == \
        model_file.tensor_offset("dec.embed.weight")


def test_f16_conversion(tiny, tmp_path: Path) -> None:
    from pytransformer.format import read_model

    checkpoint, tokenizer, arrays = tiny
    output = convert_llama2c(checkpoint, tmp_path / "tiny16.ptm", "f16", tokenizer=tokenizer)
    _, tensors = read_model(output)
    np.testing.assert_array_equal(tensors["dec.0.attn_self_q.weight"],
                                  arrays["wq"][0].astype(np.float16).astype(np.float32))


# --- the real stories260K model ----------------------------------------------------------------


def _stories_arrays() -> dict[str, np.ndarray]:
    """The arrays of stories260K.bin, read independently of the converter."""
    path = STORIES / "stories260K.bin"
    dim, hidden, layers, heads, kv_heads, vocab, seq = np.fromfile(path, "<i4", 7).tolist()
    head_size = dim // heads
    kv = kv_heads * head_size
    data = np.fromfile(path, "<f4", offset=28)
    shapes = [("token_embedding", (abs(vocab), dim)), ("rms_att", (layers, dim)),
              ("wq", (layers, dim, dim)), ("wk", (layers, kv, dim)), ("wv", (layers, kv, dim)),
              ("wo", (layers, dim, dim)), ("rms_ffn", (layers, dim)),
              ("w1", (layers, hidden, dim)), ("w2", (layers, dim, hidden)),
              ("w3", (layers, hidden, dim)), ("rms_final", (dim,)),
              ("freq_cis_real", (seq, head_size // 2)), ("freq_cis_imag", (seq, head_size // 2))]
    arrays, offset = {}, 0
    for name, shape in shapes:
        arrays[name] = data[offset:offset + math.prod(shape)].reshape(shape)
        offset += math.prod(shape)
    assert offset == data.size and vocab > 0
    return arrays


@pytest.fixture(scope="module")
def stories(tmp_path_factory: pytest.TempPathFactory):
    """(path of the converted stories260K, its metadata, its tensors as read back)."""
    from pytransformer.format import read_model

    output = convert_llama2c(STORIES / "stories260K.bin",
                             tmp_path_factory.mktemp("llama2c") / "stories260K.ptm",
                             tokenizer=STORIES / "tok512.bin")
    metadata, tensors = read_model(output)
    return output, metadata, tensors


def _greedy_text() -> str:
    # run.c prints a newline after the generated text.
    return (STORIES / "greedy_200.txt").read_text(encoding="utf-8").removesuffix("\n")


@needs_stories
def test_stories_conversion_reads_back_with_the_checkpoint_arrays(stories) -> None:
    _, metadata, tensors = stories
    arrays = _stories_arrays()
    assert metadata["general.name"] == "stories260K"
    assert metadata["general.license"] == "MIT"
    assert (metadata["model.d_model"], metadata["model.decoder_layers"],
            metadata["model.decoder_heads"], metadata["model.kv_heads"],
            metadata["model.decoder_ffn_dim"], metadata["model.target_vocab_size"],
            metadata["model.max_positions"], metadata["model.rotary_dim"]) == \
        (64, 5, 8, 4, 172, 512, 512, 8)
    assert {name: t.shape for name, t in tensors.items()} == doc_tensor_shapes(metadata)
    assert tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]
    assert_tensors_match(tensors, arrays, shared=True)
    # The unused RoPE tables sit where the header says: base 10000, pairs over the head.
    head_size = metadata["model.rotary_dim"]
    angles = np.outer(np.arange(512), 10000.0 ** (-np.arange(0, head_size, 2) / head_size))
    np.testing.assert_allclose(arrays["freq_cis_real"], np.cos(angles), atol=1e-5)
    np.testing.assert_allclose(arrays["freq_cis_imag"], np.sin(angles), atol=1e-5)


def _run_c_vocabulary() -> tuple[list[bytes], list[float]]:
    data = (STORIES / "tok512.bin").read_bytes()
    vocab, scores, offset = [], [], 4
    for _ in range(512):
        score, length = struct.unpack_from("<fi", data, offset)
        vocab.append(data[offset + 8:offset + 8 + length])
        scores.append(score)
        offset += 8 + length
    return vocab, scores


def _run_c_encode(text: str, vocab: list[bytes], scores: list[float]) -> list[int]:
    """run.c's encode(text, bos=0, eos=0)."""
    lookup = {piece: index for index, piece in enumerate(vocab)}
    tokens = [lookup[b" "]] if text else []
    for char in text:
        encoded = char.encode("utf-8")
        tokens += [lookup[encoded]] if encoded in lookup else [b + 3 for b in encoded]
    while True:
        best = (-1e10, -1, -1)
        for i in range(len(tokens) - 1):
            merged = lookup.get(vocab[tokens[i]] + vocab[tokens[i + 1]], -1)
            if merged != -1 and scores[merged] > best[0]:
                best = (scores[merged], merged, i)
        if best[2] == -1:
            return tokens
        tokens[best[2]:best[2] + 2] = [best[1]]


def _run_c_decode(tokens: list[int], vocab: list[bytes]) -> str:
    """run.c's decode(prev, token) over a sequence that starts with BOS."""
    out = []
    for prev, token in zip(tokens, tokens[1:]):
        piece = vocab[token]
        if prev == 1 and piece.startswith(b" "):
            piece = piece[1:]
        if len(piece) == 6 and piece.startswith(b"<0x") and piece.endswith(b">"):
            piece = bytes([int(piece[3:5], 16)])
        out.append(piece)
    return b"".join(out).decode("utf-8")


@needs_stories
def test_stories_tokenizer_splits_and_joins_as_run_c(stories) -> None:
    _, metadata, _ = stories
    processor = sentencepiece.SentencePieceProcessor(
        model_proto=metadata["tokenizer.target_model"])
    vocab, scores = _run_c_vocabulary()
    text = _greedy_text()
    for sample in [text, *text.splitlines(), "Tom  said: \u201cdon't!\u201d\n\u4f60\u597d 42"]:
        ids = processor.encode(sample)
        assert ids == _run_c_encode(sample, vocab, scores), sample
        assert processor.decode(ids) == sample
        assert _run_c_decode([1, *ids], vocab) == sample
        assert set(processor.encode(sample, out_type=str)) <= set(metadata["vocab.target"])


def _forward_greedy(metadata: dict, tensors: dict[str, np.ndarray], steps: int) -> list[int]:
    """Greedy generation after BOS by a numpy forward pass that reads only our tensor names and
    metadata, as docs/format.md defines them (llama: RMSNorm, GQA, interleaved RoPE, SwiGLU)."""
    d, heads = metadata["model.d_model"], metadata["model.decoder_heads"]
    kv_heads, ffn = metadata["model.kv_heads"], metadata["model.decoder_ffn_dim"]
    hd, rot, eps = d // heads, metadata["model.rotary_dim"], metadata["model.layer_norm_epsilon"]
    assert metadata["model.rotary_layout"] == "interleaved"
    inv_freq = metadata["model.rope_base"] ** (-np.arange(0, rot, 2) / rot)
    layers = metadata["model.decoder_layers"]
    stops = {metadata["tokens.eos_id"], *metadata["tokens.stop_ids"]}

    def rms_norm(x: np.ndarray, gamma: np.ndarray) -> np.ndarray:
        return (x / np.sqrt(np.mean(x * x) + eps) * gamma).astype(np.float32)

    def rope(x: np.ndarray, pos: int) -> np.ndarray:  # x: (heads, hd)
        x = x.copy()
        cos, sin = np.cos(pos * inv_freq), np.sin(pos * inv_freq)
        even, odd = x[:, 0:rot:2].copy(), x[:, 1:rot:2].copy()
        x[:, 0:rot:2], x[:, 1:rot:2] = even * cos - odd * sin, even * sin + odd * cos
        return x

    keys = [[] for _ in range(layers)]
    values = [[] for _ in range(layers)]
    token, generated = metadata["tokens.bos_id"], []
    for pos in range(steps):
        x = tensors["dec.embed.weight"][token].copy()
        for i in range(layers):
            w = {name[len(f"dec.{i}."):]: t for name, t in tensors.items()
                 if name.startswith(f"dec.{i}.")}
            h = rms_norm(x, w["attn_self_norm.gamma"])
            q = rope((w["attn_self_q.weight"] @ h).reshape(heads, hd), pos)
            keys[i].append(rope((w["attn_self_k.weight"] @ h).reshape(kv_heads, hd), pos))
            values[i].append((w["attn_self_v.weight"] @ h).reshape(kv_heads, hd))
            k, v = np.stack(keys[i]), np.stack(values[i])  # (pos+1, kv_heads, hd)
            group = heads // kv_heads
            out = np.empty((heads, hd), np.float32)
            for head in range(heads):
                scores = k[:, head // group] @ q[head] / np.sqrt(hd)
                weights = np.exp(scores - scores.max())
                out[head] = (weights / weights.sum()) @ v[:, head // group]
            x = x + w["attn_self_out.weight"] @ out.reshape(-1)
            h = rms_norm(x, w["ffn_norm.gamma"])
            gate_up = w["ffn_gate_up.weight"] @ h
            gate, up = gate_up[:ffn], gate_up[ffn:]
            x = x + w["ffn_down.weight"] @ (gate / (1 + np.exp(-gate)) * up)
        logits = tensors["dec.out_proj.weight"] @ rms_norm(x, tensors["dec.final_norm.gamma"])
        token = int(np.argmax(logits))
        if token in stops:
            break
        generated.append(token)
    return generated


@needs_stories
def test_stories_forward_from_the_converted_tensors_reproduces_run_c_greedy(stories) -> None:
    _, metadata, tensors = stories
    # run.c -t 0 -n 200: forward passes at positions 0..199, each printing the token it chose.
    generated = _forward_greedy(metadata, tensors, steps=200)
    processor = sentencepiece.SentencePieceProcessor(
        model_proto=metadata["tokenizer.target_model"])
    assert processor.decode(generated) == _greedy_text()


@needs_stories
def test_stories_greedy_generation_in_the_core_reproduces_run_c(stories) -> None:
    """The C++ core on the converted file: 200 greedy tokens from BOS (run.c -t 0 -n 200), the
    prompt pass and the cached steps, decode to greedy_200.txt exactly."""
    from pytransformer import LanguageModel

    model = LanguageModel(stories[0], threads=1)
    completion = model.complete([model.tokenizer.bos_id], max_new_tokens=200)
    assert len(completion.tokens) == 200 and not completion.finished
    assert completion.text == _greedy_text()

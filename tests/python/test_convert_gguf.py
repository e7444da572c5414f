"""The GGUF converter (pytransformer.convert.gguf_llama) against transformers' own GGUF loading:

- the real SmolLM2-135M-Instruct Q4_1 file (shared/peer-models): teacher-forced logits of
  chat-templated prompts, greedy continuations of 20 chat prompts token for token, and the
  tokenizer rebuilt from `tokenizer.ggml.*` (ids of varied text and chat markup, decoding back);
- small files written here with the `gguf` package (random weights, a tiny byte-level or
  SentencePiece vocabulary), for the rotary layout of each architecture (llama: interleaved,
  qwen2: half-split, decided by what transformers makes of the same file), biases, untied
  output projections, quantised tensors and the SentencePiece path;
- what the format cannot express, and broken files, refused with a ConversionError that says why.
"""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from conftest import SHARED

gguf = pytest.importorskip("gguf", reason="the test files are written with the gguf package "
                           "(pip install gguf)")
pytest.importorskip("tokenizers", reason="the converter builds byte-level BPE tokenizers with "
                    "the tokenizers package (pip install tokenizers)")

from tokenizers import Tokenizer  # noqa: E402

from pytransformer import _core  # noqa: E402
from pytransformer.convert._common import ConversionError  # noqa: E402
from pytransformer.convert.gguf_llama import convert_gguf, load_gguf  # noqa: E402
from pytransformer.format import write_model  # noqa: E402

SMOLLM2 = SHARED / "peer-models" / "smollm2-135m-instruct-gguf" / "SmolLM2-135M-Instruct.Q4_1.gguf"
VT = gguf.GGUFValueType
QT = gguf.GGMLQuantizationType


def _reference_packages() -> Any:
    """torch and transformers, with what transformers needs to read GGUF; skips without them."""
    torch = pytest.importorskip("torch", reason="the reference is transformers on torch")
    transformers = pytest.importorskip("transformers", reason="the reference is transformers' "
                                       "GGUF loading (pip install transformers)")
    pytest.importorskip("accelerate", reason="transformers loads GGUF files only with "
                        "accelerate installed (pip install accelerate)")
    torch.set_num_threads(1)
    return torch, transformers


def _load_transformers(path: Path) -> Any:
    """transformers' model of the GGUF file `path`, dequantised to float32."""
    torch, transformers = _reference_packages()
    options: dict[str, Any] = {}
    try:  # transformers 5 keeps GGUF blocks quantised unless told otherwise
        from transformers import GgufConfig

        options["quantization_config"] = GgufConfig(dequantize=True)
    except ImportError:  # transformers 4 always dequantises
        pass
    # transformers 5 renamed torch_dtype to dtype.
    dtype_key = "dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype"
    options[dtype_key] = torch.float32
    model = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name,
                                                              **options)
    return model.eval()


def _transformers_logits(model: Any, ids: list[int]) -> np.ndarray:
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].numpy()


def _our_logits(model: Any, ids: list[int]) -> np.ndarray:
    return np.asarray(model.teacher_forced_logits([[ids[0]]], [ids])[0])


# ---------------------------------------------------------------------------------------------
# small GGUF files


def _byte_alphabet() -> list[str]:
    """GPT-2's byte-level alphabet: byte b -> the character that spells it in the vocabulary."""
    printable = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
                 + list(range(ord("®"), ord("ÿ") + 1)))
    chars = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return [chars[b] for b in range(256)]


SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
MERGES = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), ("Ġ", "a"), ("e", "r"), ("o", "n"),
          ("Ġ", "w"), ("r", "e"), ("Ġ", "s"), ("Ġa", "n"), ("Ġan", "d"), ("1", "2"),
          # merges across the places where the pre-tokenizers' regexes differ
          ("'", "s"), ("'", "R"), ("'R", "E"), ("Ġ", "1"), ("Ċ", "Ċ"), ("Ġ", "Ġ")]
# "Ġhats" no merge makes: only a whole-word lookup (llama3's ignore_merges) finds it.
TOKENS = SPECIALS + _byte_alphabet() + [a + b for a, b in MERGES] + ["Ġhats", "<think>"]
TOKEN_TYPES = [3] * len(SPECIALS) + [1] * (256 + len(MERGES) + 1) + [4]
TINY = {"d": 32, "heads": 4, "kv_heads": 2, "layers": 2, "ffn": 40, "context": 128}


def _tiny_tensors(arch: str, vocab: int, seed: int) -> dict[str, np.ndarray]:
    """Random weights, in numpy order, large enough that attention is sharp (so the rotary
    layout changes the logits a lot)."""
    rng = np.random.default_rng(seed)
    d, ffn = TINY["d"], TINY["ffn"]
    hd = d // TINY["heads"]

    def normal(shape: tuple[int, ...], std: float) -> np.ndarray:
        return rng.normal(0.0, std, shape).astype(np.float32)

    tensors = {"token_embd.weight": normal((vocab, d), 1.0),
               "output_norm.weight": 1 + normal((d,), 0.1)}
    if arch == "qwen2":
        tensors["output.weight"] = normal((vocab, d), 1 / math.sqrt(d))
    for i in range(TINY["layers"]):
        p = f"blk.{i}."
        tensors.update({
            p + "attn_norm.weight": 1 + normal((d,), 0.1),
            p + "attn_q.weight": normal((TINY["heads"] * hd, d), 3 / math.sqrt(d)),
            p + "attn_k.weight": normal((TINY["kv_heads"] * hd, d), 3 / math.sqrt(d)),
            p + "attn_v.weight": normal((TINY["kv_heads"] * hd, d), 1 / math.sqrt(d)),
            p + "attn_output.weight": normal((d, TINY["heads"] * hd), 1 / math.sqrt(d)),
            p + "ffn_norm.weight": 1 + normal((d,), 0.1),
            p + "ffn_gate.weight": normal((ffn, d), 1 / math.sqrt(d)),
            p + "ffn_up.weight": normal((ffn, d), 1 / math.sqrt(d)),
            p + "ffn_down.weight": normal((d, ffn), 1 / math.sqrt(ffn)),
        })
        if arch == "qwen2":
            for name, rows in (("q", TINY["heads"]), ("k", TINY["kv_heads"]),
                               ("v", TINY["kv_heads"])):
                tensors[p + f"attn_{name}.bias"] = normal((rows * hd,), 0.5)
    return tensors


def _tiny_metadata(arch: str, tokenizer: dict[str, Any]) -> dict[str, Any]:
    return {
        "general.architecture": arch,
        "general.name": f"tiny {arch}",
        f"{arch}.context_length": TINY["context"],
        f"{arch}.embedding_length": TINY["d"],
        f"{arch}.block_count": TINY["layers"],
        f"{arch}.feed_forward_length": TINY["ffn"],
        f"{arch}.attention.head_count": TINY["heads"],
        f"{arch}.attention.head_count_kv": TINY["kv_heads"],
        f"{arch}.rope.freq_base": 10000.0 if arch == "llama" else 1000000.0,
        f"{arch}.attention.layer_norm_rms_epsilon": 1e-5 if arch == "llama" else 1e-6,
        **tokenizer,
    }


def _gpt2_tokenizer() -> dict[str, Any]:
    return {
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.pre": "smollm",
        "tokenizer.ggml.tokens": TOKENS,
        "tokenizer.ggml.token_type": np.array(TOKEN_TYPES, dtype=np.int32),
        "tokenizer.ggml.merges": [f"{a} {b}" for a, b in MERGES],
        "tokenizer.ggml.bos_token_id": 1,
        "tokenizer.ggml.eos_token_id": 0,
        "tokenizer.ggml.padding_token_id": 0,
        "tokenizer.chat_template": "{% for m in messages %}<|im_start|>{{ m['content'] }}"
                                   "<|im_end|>{% endfor %}",
    }


def _value_type(value: Any) -> tuple[Any, Any, Any]:
    """(value, GGUF value type, array item type) for add_key_value."""
    if isinstance(value, bool):
        return value, VT.BOOL, None
    if isinstance(value, int):
        return value, VT.UINT32 if value >= 0 else VT.INT32, None
    if isinstance(value, float):
        return value, VT.FLOAT32, None
    if isinstance(value, str):
        return value, VT.STRING, None
    if isinstance(value, np.ndarray):
        item = {np.dtype(np.int32): VT.INT32, np.dtype(np.float32): VT.FLOAT32,
                np.dtype(np.uint32): VT.UINT32}[value.dtype]
        return value.tolist(), VT.ARRAY, item
    if isinstance(value, list):
        return value, VT.ARRAY, VT.STRING
    raise TypeError(value)


def write_gguf(path: Path, arch: str = "llama", *, metadata: dict[str, Any] | None = None,
               tensors: dict[str, Any] | None = None, tokenizer: dict[str, Any] | None = None,
               seed: int = 0) -> Path:
    """A small GGUF file: the tiny model of `arch` with random weights and the tiny byte-level
    vocabulary, `metadata` and `tensors` entries replacing (None: removing) the defaults. A
    tensor given as (uint8 blocks, GGML type) is written as those raw blocks."""
    keys = _tiny_metadata(arch, _gpt2_tokenizer() if tokenizer is None else tokenizer)
    for key, value in (metadata or {}).items():
        if value is None:
            keys.pop(key, None)
        else:
            keys[key] = value
    vocab = len(keys["tokenizer.ggml.tokens"])
    arrays: dict[str, Any] = _tiny_tensors(arch, vocab, seed)
    for name, value in (tensors or {}).items():
        if value is None:
            arrays.pop(name, None)
        else:
            arrays[name] = value
    writer = gguf.GGUFWriter(str(path), keys.pop("general.architecture"))
    for key, value in keys.items():
        writer.add_key_value(key, *_value_type(value))
    for name, value in arrays.items():
        if isinstance(value, tuple):
            writer.add_tensor(name, value[0], raw_dtype=value[1])
        else:
            writer.add_tensor(name, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two small files: "llama" (tied output) and "qwen2" (Q/K/V biases, own output)."""
    root = tmp_path_factory.mktemp("gguf")
    return {arch: write_gguf(root / f"{arch}.gguf", arch) for arch in ("llama", "qwen2")}


PROMPT = [1, 260, 270, 271, 75, 86, 80, 2, 1, 263, 45, 88, 262, 259, 3, 5, 7, 265, 266, 268]


def test_a_gguf_file_is_a_model_once_converted_into_the_cache(tiny, tmp_path, monkeypatch):
    """LanguageModel and the CLI's -m take a GGUF file: converted once into the cache, named
    by the file's size and time so a changed file converts again."""
    from pytransformer import LanguageModel
    from pytransformer.model_files import converted_gguf

    monkeypatch.setenv("PYTRANSFORMER_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "model.gguf"
    source.write_bytes(tiny["llama"].read_bytes())
    path, converted = converted_gguf(source)
    assert converted and path.parent == tmp_path / "cache" / "gguf"
    assert converted_gguf(source) == (path, False)
    model = LanguageModel(source, threads=1)
    assert model.path == path
    # The precision is part of the name: each is converted once, beside the others.
    halves, converted = converted_gguf(source, "f16")
    assert converted and halves.name.endswith("-f16.ptm") and path.name.endswith("-gguf.ptm")
    assert halves.parent == path.parent and halves != path
    assert LanguageModel(source, threads=1, gguf_precision="f16").path == halves
    assert converted_gguf(source, "f16") == (halves, False)
    with pytest.raises(ValueError, match="precision must be one of f32, f16"):
        converted_gguf(source, "float32")
    source.write_bytes(tiny["qwen2"].read_bytes())
    assert converted_gguf(source)[1]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_small_file_logits_match_transformers(tiny, arch: str, tmp_path: Path) -> None:
    """Whatever transformers makes of the file (it un-permutes llama's Q/K rows, not qwen2's),
    our model computes the same logits; with the other rotary layout it would not."""
    reference = _transformers_logits(_load_transformers(tiny[arch]), PROMPT)
    metadata, tensors = load_gguf(tiny[arch])
    assert metadata["model.rotary_layout"] == ("interleaved" if arch == "llama" else "half_split")
    assert metadata["model.qkv_bias"] == (arch == "qwen2")
    assert (tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]) == (arch == "llama")

    path = convert_gguf(tiny[arch], tmp_path / "model.ptm")
    ours = _our_logits(_core.LanguageModel(str(path), 1), PROMPT)
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)

    metadata["model.rotary_layout"] = ("half_split" if arch == "llama" else "interleaved")
    write_model(tmp_path / "swapped.ptm", metadata, tensors)
    swapped = _our_logits(_core.LanguageModel(str(tmp_path / "swapped.ptm"), 1), PROMPT)
    assert np.abs(swapped - reference).max() > 0.1


def test_small_file_tensors(tiny) -> None:
    metadata, tensors = load_gguf(tiny["qwen2"])
    source = _tiny_tensors("qwen2", len(TOKENS), seed=0)
    np.testing.assert_array_equal(tensors["dec.1.ffn_gate_up.weight"], np.concatenate(
        [source["blk.1.ffn_gate.weight"], source["blk.1.ffn_up.weight"]]))
    np.testing.assert_array_equal(tensors["dec.0.attn_self_k.bias"], source["blk.0.attn_k.bias"])
    np.testing.assert_array_equal(tensors["dec.out_proj.weight"], source["output.weight"])
    assert all(value.dtype == np.float32 for value in tensors.values())
    assert metadata["model.rope_base"] == 1e6 and metadata["model.rotary_dim"] == 8
    assert metadata["model.max_positions"] == TINY["context"]


def test_quantised_tensors_are_dequantised(tmp_path: Path) -> None:
    source = _tiny_tensors("llama", len(TOKENS), seed=0)
    quantised = {name: (gguf.quants.quantize(source[name], kind), kind) for name, kind in (
        ("blk.0.ffn_up.weight", QT.Q8_0), ("blk.1.attn_q.weight", QT.Q8_0),
        ("token_embd.weight", QT.F16))}
    path = write_gguf(tmp_path / "q.gguf", tensors=quantised)
    _, tensors = load_gguf(path)
    for (name, (blocks, kind)), ours in zip(quantised.items(), (
            "dec.0.ffn_gate_up.weight", "dec.1.attn_self_q.weight", "dec.embed.weight")):
        expected = gguf.quants.dequantize(blocks, kind)
        value = tensors[ours][-expected.shape[0]:] if name.endswith("ffn_up.weight") \
            else tensors[ours]
        np.testing.assert_array_equal(value, expected, err_msg=name)


def test_quantize_option_writes_f16(tiny, tmp_path: Path) -> None:
    ours = _our_logits(_core.LanguageModel(str(convert_gguf(tiny["llama"], tmp_path / "a.ptm")),
                                           1), PROMPT)
    f16 = _our_logits(_core.LanguageModel(str(convert_gguf(
        tiny["llama"], tmp_path / "b.ptm", quantize="f16")), 1), PROMPT)
    assert (tmp_path / "b.ptm").stat().st_size < (tmp_path / "a.ptm").stat().st_size
    # Attention this sharp amplifies f16 rounding; the point is that the option reaches the writer.
    assert 1e-4 < np.abs(f16 - ours).max() < 0.25


# GGUF types of a small file's tensors for the "gguf" precision: blocks of both types (a tied
# Q8_0 embedding; gate and up both Q4_1 in layer 0, of different types in layer 1), a type we
# dequantise (Q4_0), F16, and F32 matrices (ffn_down has 40 columns: no block type fits).
BLOCK_FILE_TYPES = {"token_embd.weight": QT.Q8_0, "blk.0.attn_q.weight": QT.Q8_0,
                    "blk.0.attn_output.weight": QT.Q4_1, "blk.0.ffn_gate.weight": QT.Q4_1,
                    "blk.0.ffn_up.weight": QT.Q4_1, "blk.1.ffn_gate.weight": QT.Q8_0,
                    "blk.1.ffn_up.weight": QT.Q4_1, "blk.1.attn_k.weight": QT.Q4_0,
                    "blk.1.attn_v.weight": QT.F16}


@pytest.fixture(scope="module")
def block_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = _tiny_tensors("llama", len(TOKENS), seed=0)
    blocks = {name: (gguf.quants.quantize(source[name], kind), kind)
              for name, kind in BLOCK_FILE_TYPES.items()}
    return write_gguf(tmp_path_factory.mktemp("blocks") / "blocks.gguf", tensors=blocks)


def _gguf_bytes(path: Path, name: str) -> np.ndarray:
    from pytransformer.gguf import read_gguf

    return np.array(read_gguf(path).tensors[name].raw_rows())


def test_gguf_precision_keeps_the_files_blocks(block_file: Path, tmp_path: Path) -> None:
    """quantize="gguf": every Q8_0 / Q4_1 matrix is stored with the GGUF file's bytes (gate and
    up of one type: their rows of bytes, concatenated; the tied embedding once); the other
    matrices f16, vectors f32; the model computes what the same weights give in float."""
    from pytransformer.format import BlockMatrix

    path = convert_gguf(block_file, tmp_path / "blocks.ptm", quantize="gguf")
    model_file = _core.ModelFile(str(path))
    kept = {"dec.embed.weight": ("q8_0", ["token_embd.weight"]),
            "dec.out_proj.weight": ("q8_0", ["token_embd.weight"]),
            "dec.0.attn_self_q.weight": ("q8_0", ["blk.0.attn_q.weight"]),
            "dec.0.attn_self_out.weight": ("q4_1", ["blk.0.attn_output.weight"]),
            "dec.0.ffn_gate_up.weight": ("q4_1", ["blk.0.ffn_gate.weight",
                                                  "blk.0.ffn_up.weight"])}
    for name in model_file.tensor_names():
        dtype, shape = model_file.tensor_info(name)
        if name in kept:
            assert dtype == kept[name][0], name
            expected = np.concatenate([_gguf_bytes(block_file, gguf_name)
                                       for gguf_name in kept[name][1]])
            np.testing.assert_array_equal(model_file.tensor(name, dequantize=False), expected,
                                          err_msg=name)
        else:
            assert dtype == ("f16" if len(shape) == 2 else "f32"), name
    assert (model_file.tensor_offset("dec.out_proj.weight")
            == model_file.tensor_offset("dec.embed.weight"))

    metadata, tensors = load_gguf(block_file, keep_blocks=True)
    assert tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]
    assert {name for name, value in tensors.items() if isinstance(value, BlockMatrix)} == set(kept)
    _, floats = load_gguf(block_file)
    for name in kept:  # the same values as the float conversion's, bit for bit
        np.testing.assert_array_equal(tensors[name].dequantize().view(np.uint32),
                                      floats[name].view(np.uint32), err_msg=name)

    # The float32 file of the same weights (the f16 ones rounded alike): logits within what
    # the block kernels' order of operations changes (measured 5.5e-5, logits up to 25).
    same = {name: value.dequantize() if isinstance(value, BlockMatrix) else
            value.astype(np.float16).astype(np.float32) if value.ndim == 2 else value
            for name, value in tensors.items()}
    same["dec.out_proj.weight"] = same["dec.embed.weight"]
    write_model(tmp_path / "float.ptm", metadata, same)
    ours = _our_logits(_core.LanguageModel(str(path), 1), PROMPT)
    reference = _our_logits(_core.LanguageModel(str(tmp_path / "float.ptm"), 1), PROMPT)
    np.testing.assert_allclose(ours, reference, atol=5e-4, rtol=0)


@pytest.mark.parametrize("dtype", ["q8_0", "q4_1"])
def test_block_precisions_requantise(block_file: Path, tmp_path: Path, dtype: str) -> None:
    """quantize="q8_0" / "q4_1": every tensor dequantised, then each matrix with 32k columns
    quantised as gguf.quants.quantize does; ffn_down (40 columns) f16."""
    path = convert_gguf(block_file, tmp_path / f"{dtype}.ptm", quantize=dtype)
    model_file = _core.ModelFile(str(path))
    _, floats = load_gguf(block_file)
    for name, value in floats.items():
        dtype_stored = model_file.tensor_info(name)[0]
        if value.ndim == 1:
            assert dtype_stored == "f32"
        elif value.shape[1] % 32:
            assert dtype_stored == "f16", name
        else:
            assert dtype_stored == dtype, name
            np.testing.assert_array_equal(model_file.tensor(name, dequantize=False),
                                          gguf.quants.quantize(value, getattr(QT, dtype.upper())),
                                          err_msg=name)


def test_unknown_precision_is_refused_before_reading(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="quantize must be one of None, 'f16'.*not 'q5_0'"):
        convert_gguf(tmp_path / "missing.gguf", tmp_path / "out.ptm", quantize="q5_0")


def test_gguf_precision_through_the_cli(block_file: Path, tmp_path: Path) -> None:
    """`pytransformer convert FILE.gguf --quantize gguf` (and its summary); refused for a
    source that is not a GGUF file."""
    import json

    from typer.testing import CliRunner

    from pytransformer.cli.main import app

    runner = CliRunner()
    output = tmp_path / "cli.ptm"
    result = runner.invoke(app, ["convert", str(block_file), str(output), "--quantize", "gguf",
                                 "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["converted_from"] == "gguf"
    assert summary["stored_as"].startswith("the GGUF file's Q8_0 and Q4_1 matrices unchanged")
    assert _core.ModelFile(str(output)).tensor_info("dec.0.ffn_gate_up.weight")[0] == "q4_1"

    not_gguf = tmp_path / "model.bin"
    not_gguf.write_bytes(b"\0" * 64)
    result = runner.invoke(app, ["convert", str(not_gguf), str(tmp_path / "x.ptm"),
                                 "--quantize", "gguf"])
    assert result.exit_code == 1
    assert "--quantize gguf keeps a GGUF file's Q8_0 and Q4_1 blocks" in result.stderr
    assert "is a llama2c model, not a GGUF file" in result.stderr
    assert not (tmp_path / "x.ptm").exists()


def test_small_file_tokenizer_metadata(tiny) -> None:
    metadata, _ = load_gguf(tiny["llama"])
    assert metadata["tokenizer.type"] == "huggingface"
    assert metadata["vocab.target"] == TOKENS
    assert metadata["tokens.bos_id"] == 1 and metadata["tokens.eos_id"] == 0
    assert metadata["tokens.pad_id"] == 0 and "tokens.unk_id" not in metadata
    assert metadata["tokens.stop_ids"] == [2]  # <|im_end|>
    assert metadata["tokenizer.add_bos"] is False
    assert metadata["tokenizer.chat_template"].startswith("{% for m in messages %}")

    tokenizer = Tokenizer.from_str(metadata["tokenizer.target_model"].decode("utf-8"))
    text = "<|im_start|>the 123 and<think>\n<|im_end|>"
    ids = tokenizer.encode(text).ids
    # Control and user-defined tokens whole; digits one by one (smollm: no "12"); merges.
    assert [TOKENS[i] for i in ids] == ["<|im_start|>", "t", "he", "Ġ", "1", "2", "3", "Ġand",
                                        "<think>", "Ċ", "<|im_end|>"]
    assert tokenizer.decode(ids, skip_special_tokens=False) == text
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the 123 and<think>\n"


SPLIT_TEXTS = ["the cat's 12345 hat", "they'RE here; we'll see\n\n  done  ", "x=1+2*3 // 42\r\n",
               "naïve 東京 the thethe", "<|im_start|>and 12<think>\t\tend"]


@pytest.mark.parametrize("pre", ["gpt-2", "llama-bpe", "qwen2"])
def test_pre_tokenizers_split_as_transformers(tmp_path: Path, pre: str) -> None:
    """The split regexes against transformers' GGUF tokenizer, which uses the Hugging Face
    originals for these names. Where transformers departs from llama.cpp it is not compared:
    "smollm" (transformers leaves digits joined; llama.cpp and SmolLM's own tokenizer.json split
    them) and llama3's whole-word lookup before merges (llama.cpp's ignore_merges, and Llama 3's
    tokenizer.json; transformers' GGUF tokenizer merges)."""
    _, transformers = _reference_packages()
    path = write_gguf(tmp_path / "t.gguf", metadata={"tokenizer.ggml.pre": pre})
    ours = Tokenizer.from_str(load_gguf(path)[0]["tokenizer.target_model"].decode("utf-8"))
    theirs = transformers.AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    for text in SPLIT_TEXTS:
        assert ours.encode(text).ids == list(theirs.encode(text, add_special_tokens=False)), text
    whole = [TOKENS[i] for i in ours.encode("a hats").ids]
    assert whole == (["a", "Ġhats"] if pre == "llama-bpe" else ["a", "Ġ", "h", "a", "t", "s"])


def test_sentencepiece_vocabulary(tmp_path: Path) -> None:
    """A "llama" (SentencePiece) vocabulary: the model rebuilt from pieces, scores and types
    splits text as the SentencePiece model those came from (llama.cpp's converter copies them
    from tokenizer.model)."""
    import io

    sentencepiece = pytest.importorskip("sentencepiece")
    text = ["The quick brown fox jumps over the lazy dog.", "Tokenizers split text into pieces.",
            "Numbers like 12345 and 3.14 stay digits.", "A tiny vocabulary, trained here."] * 20
    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(text), model_writer=model, vocab_size=320, model_type="bpe",
        byte_fallback=True, split_digits=True, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, user_defined_symbols=["<tool>"],
        minloglevel=2)
    trained = sentencepiece.SentencePieceProcessor(model_proto=model.getvalue())
    size = trained.get_piece_size()

    def piece_type(i: int) -> int:
        if trained.is_unknown(i):
            return 2
        if trained.is_control(i):
            return 3
        if trained.is_byte(i):
            return 6
        return 4 if trained.id_to_piece(i) == "<tool>" else 1

    tokenizer = {
        "tokenizer.ggml.model": "llama",
        "tokenizer.ggml.tokens": [trained.id_to_piece(i) for i in range(size)],
        "tokenizer.ggml.scores": np.array([trained.get_score(i) for i in range(size)],
                                          dtype=np.float32),
        "tokenizer.ggml.token_type": np.array([piece_type(i) for i in range(size)],
                                              dtype=np.int32),
        "tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2,
        "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.padding_token_id": 0,
    }
    metadata, _ = load_gguf(write_gguf(tmp_path / "spm.gguf", tokenizer=tokenizer))
    assert metadata["tokenizer.type"] == "sentencepiece"
    assert metadata["tokenizer.add_bos"] is True  # llama.cpp's default for SentencePiece
    assert metadata["tokens.unk_id"] == 0 and metadata["tokens.pad_id"] == 0
    ours = sentencepiece.SentencePieceProcessor(model_proto=metadata["tokenizer.target_model"])
    for sample in ["The lazy fox.", "  two  spaces", "12345 digits", "über naïve 東京 🙂",
                   "<tool> inside", "pieces\nnew line"]:
        assert ours.encode(sample) == trained.encode(sample), sample
        assert ours.decode(ours.encode(sample)) == sample


# ---------------------------------------------------------------------------------------------
# refusals and broken files


def _raw(kind: Any, rows: int, columns: int) -> tuple[np.ndarray, Any]:
    block_elements, block_bytes = gguf.GGML_QUANT_SIZES[kind]
    return np.zeros((rows, columns // block_elements * block_bytes), dtype=np.uint8), kind


REFUSALS = [
    ({"general.architecture": "gemma"}, {}, "general.architecture is 'gemma'"),
    ({"llama.rope.scaling.type": "yarn", "llama.rope.scaling.factor": 4.0}, {},
     "llama.rope.scaling.type is 'yarn'"),
    ({"llama.rope.scaling.type": "linear", "llama.rope.scaling.factor": 2.0}, {},
     "rope scaling is not supported"),
    ({}, {"rope_freqs.weight": np.ones(4, np.float32)}, "rope_freqs.weight"),
    ({"llama.expert_count": 8, "llama.expert_used_count": 2}, {}, "mixture-of-experts"),
    ({"llama.attention.sliding_window": 64}, {},
     "llama.attention.sliding_window is not supported"),
    ({"llama.attention.key_length": 16}, {}, "llama.attention.key_length 16 differs"),
    ({"llama.attention.head_count": 3}, {}, "does not divide llama.embedding_length 32"),
    ({"llama.block_count": None}, {}, "llama.block_count is missing"),
    ({"llama.attention.layer_norm_rms_epsilon": 2.0}, {}, "must be in (0, 1]"),
    ({"llama.attention.head_count_kv": np.array([2, 1], np.int32)}, {},
     "different values per layer"),
    ({"tokenizer.ggml.pre": "deepseek-llm"}, {},
     "tokenizer.ggml.pre 'deepseek-llm' is not supported"),
    ({"tokenizer.ggml.model": "t5"}, {}, "tokenizer.ggml.model is 't5'"),
    ({"tokenizer.ggml.eos_token_id": 100000}, {},
     f"tokenizer.ggml.eos_token_id must be a token id below {len(TOKENS)}"),
    ({"tokenizer.ggml.eos_token_id": None}, {}, "tokenizer.ggml.eos_token_id is missing"),
    ({"tokenizer.ggml.add_eos_token": True}, {}, "add_eos_token is true"),
    ({"tokenizer.ggml.merges": ["Ġ t", "x"]}, {}, "tokenizer.ggml.merges[1] is 'x'"),
    ({"tokenizer.ggml.merges": ["Ġ t", "zz q"]}, {}, "do not fit the vocabulary"),
    ({"tokenizer.ggml.tokens": TOKENS[:-1] + ["!"]}, {},
     f"has '!' at ids {TOKENS.index('!')} and {len(TOKENS) - 1}"),
    ({"tokenizer.ggml.model": "llama"}, {}, f"tokenizer.ggml.scores must be {len(TOKENS)} floats"),
    ({"llama.vocab_size": 300}, {}, f"tensor 'token_embd.weight' has shape [{len(TOKENS)}, 32]"),
    ({}, {"blk.1.ffn_up.weight": None}, "the file has no tensor 'blk.1.ffn_up.weight'"),
    ({}, {"blk.0.attn_k.weight": np.zeros((8, 32), np.float32)},
     "tensor 'blk.0.attn_k.weight' has shape [8, 32] (numpy order), expected [16, 32]"),
    ({}, {"blk.0.attn_output.bias": np.ones(32, np.float32)}, "attention output bias"),
    ({}, {"blk.0.ffn_gate_exps.weight": np.zeros((2, 40, 32), np.float32)},
     "unexpected tensors for a llama model (an unsupported variant?): blk.0.ffn_gate_exps"),
    ({}, {"blk.0.attn_norm.weight": np.array([1.0] * 31 + [np.inf], np.float32)},
     "tensor 'blk.0.attn_norm.weight' (F32) holds NaN or infinite values"),
    ({}, {"blk.1.attn_output.weight": _raw(QT.Q5_0, 32, 32)},
     "tensor 'blk.1.attn_output.weight' has type Q5_0, which cannot be dequantised"),
]


@pytest.mark.parametrize("changes,tensors,message", REFUSALS,
                         ids=[message.split(" ")[0] + f"-{i}"
                              for i, (_, _, message) in enumerate(REFUSALS)])
def test_refusals(tmp_path: Path, changes: dict[str, Any], tensors: dict[str, Any],
                  message: str) -> None:
    path = write_gguf(tmp_path / "bad.gguf", metadata=changes, tensors=tensors)
    with pytest.raises(ConversionError) as error:
        load_gguf(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_a_zero_attention_output_bias_is_accepted(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "ok.gguf",
                      tensors={"blk.0.attn_output.bias": np.zeros(32, np.float32)})
    assert load_gguf(path)[0]["model.qkv_bias"] is False


def test_broken_files(tiny, tmp_path: Path) -> None:
    data = tiny["llama"].read_bytes()
    cases = {
        "truncated.gguf": (data[:len(data) // 2], "runs past the end of the file"),
        "header.gguf": (data[:200], "metadata count 19 cannot fit"),
        "tokens.gguf": (data[:3000], "truncated: length of string in array 'tokenizer.ggml"),
        "magic.gguf": (b"GGUX" + data[4:], "not a GGUF file"),
        "version.gguf": (data[:4] + (7).to_bytes(4, "little") + data[8:],
                         "unsupported GGUF version 7"),
        "empty.gguf": (b"", "truncated"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ConversionError) as error:
            convert_gguf(tmp_path / name, tmp_path / "out.ptm")
        assert message in str(error.value) and name in str(error.value), name
    with pytest.raises(ConversionError, match="no such file"):
        convert_gguf(tmp_path / "missing.gguf", tmp_path / "out.ptm")
    assert not (tmp_path / "out.ptm").exists()


def test_mutated_headers_raise_only_conversion_errors(tiny, tmp_path: Path) -> None:
    """Random bytes changed in the header, metadata and tensor directory: the file converts or
    raises ConversionError, nothing else (the reader itself is fuzzed in test_gguf.py)."""
    import random

    from pytransformer.gguf import read_gguf

    data = tiny["llama"].read_bytes()
    header_end = read_gguf(tiny["llama"]).data_offset
    rng = random.Random(7)
    path = tmp_path / "mutated.gguf"
    refused = 0
    for _ in range(200):
        mutated = bytearray(data)
        for _ in range(rng.choice((1, 2, 4))):
            mutated[rng.randrange(header_end)] = rng.randrange(256)
        path.write_bytes(bytes(mutated))
        try:
            load_gguf(path)
        except ConversionError:
            refused += 1
    assert refused > 100


# ---------------------------------------------------------------------------------------------
# the real SmolLM2-135M-Instruct file

QUESTIONS = [
    "What is the capital of France?", "Write a haiku about autumn.",
    "Explain recursion in one sentence.", "How many legs does a spider have?",
    "Give me a Python function that reverses a string.", "What is 17 times 23?",
    "Translate 'good morning' into Spanish.", "Name three primary colors.",
    "Why is the sky blue?", "Summarize the plot of Romeo and Juliet.",
    "What does HTTP stand for?", "Suggest a name for a pet goldfish.",
    "How do I boil an egg?", "What is the boiling point of water in Fahrenheit?",
    "List two benefits of exercise.", "Who wrote 'Pride and Prejudice'?",
    "What is a prime number?", "Tell me a short joke.", "How far is the Moon from Earth?",
    "What's the difference between a list and a tuple in Python?",
]

TEXTS = [
    "Hello, world!", "The quick brown fox jumps over the lazy dog.", "  leading spaces",
    "trailing spaces   ", "tabs\tand\nnewlines\n\n\nthree", "It's, we'll, they've, I'd, she's",
    "CamelCaseIdentifier and snake_case_name", "def f(x):\n    return x ** 2  # square\n",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }", '{"key": [1, 2, 3], "nested": {"a": null}}',
    "12345 678 9 0.5 3.14159 -42 1e10 2024-01-01", "$1,000,000.00 and 50% off!!!",
    "naïve café résumé über straße", "Привет, как дела?", "日本語のテキストと中文文本",
    "한국어 문장입니다.", "مرحبا بالعالم", "emoji 🙂👍🏽 and ✨ sparkles", "math: ∑ x² ≤ ∞ ≠ π",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
    "<|endoftext|>after the end", "text<|im_end|>glued<|im_start|>", "<repo_name>pytransformer",
    "URL: https://example.com/path?q=1&r=2#frag", "email@example.org", "a" * 50,
    "\u200b zero width \u00a0 no-break", "mixed\r\nline\rendings", "    indented code block",
    "Ünïcödé ÇÀPS", "1+1=2; 2*3=6; 10/2=5", "'quoted' \"double\" `backtick`",
    "HTML <div class=\"x\">&amp;</div>", "trailing newline\n", " ", "",
]


@pytest.fixture(scope="module")
def smollm(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The real file converted once (float32), and our model of it."""
    if not SMOLLM2.is_file():
        pytest.skip(f"{SMOLLM2} not present")
    metadata, tensors = load_gguf(SMOLLM2)
    tied = tensors["dec.out_proj.weight"] is tensors["dec.embed.weight"]
    path = tmp_path_factory.mktemp("smollm2") / "smollm2.ptm"
    write_model(path, metadata, tensors)
    del tensors
    tokenizer = Tokenizer.from_str(metadata["tokenizer.target_model"].decode("utf-8"))
    return SimpleNamespace(metadata=metadata, tied=tied, tokenizer=tokenizer,
                           model=_core.LanguageModel(str(path), 1))


@pytest.fixture(scope="module")
def reference() -> SimpleNamespace:
    """transformers' model and tokenizer of the real file (loaded once: ~25 s here)."""
    if not SMOLLM2.is_file():
        pytest.skip(f"{SMOLLM2} not present")
    _, transformers = _reference_packages()
    tokenizer = transformers.AutoTokenizer.from_pretrained(SMOLLM2.parent, gguf_file=SMOLLM2.name)
    return SimpleNamespace(model=_load_transformers(SMOLLM2), tokenizer=tokenizer)


def _chat(reference: SimpleNamespace, messages: list[dict[str, str]]) -> str:
    return reference.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                   tokenize=False)


def test_smollm2_metadata(smollm) -> None:
    metadata = smollm.metadata
    assert metadata["model.rotary_layout"] == "interleaved"
    assert (metadata["model.d_model"], metadata["model.decoder_layers"],
            metadata["model.decoder_heads"], metadata["model.kv_heads"],
            metadata["model.decoder_ffn_dim"]) == (576, 30, 9, 3, 1536)
    assert metadata["model.rope_base"] == 100000.0 and metadata["model.rotary_dim"] == 64
    assert metadata["model.target_vocab_size"] == len(metadata["vocab.target"]) == 49152
    assert metadata["model.max_positions"] == 8192 and metadata["model.qkv_bias"] is False
    assert (metadata["tokens.bos_id"], metadata["tokens.eos_id"], metadata["tokens.unk_id"],
            metadata["tokens.pad_id"]) == (1, 2, 0, 2)
    assert "tokens.stop_ids" not in metadata  # <|im_end|> is eos itself
    assert metadata["tokenizer.add_bos"] is False
    assert "<|im_start|>" in metadata["tokenizer.chat_template"]
    assert smollm.tied


def test_smollm2_logits_match_transformers(smollm, reference) -> None:
    """Teacher-forced logits of chat prompts within 2e-4 (logits reach |38|; each engine's
    float32 logits lie ~1e-4 from a float64 evaluation of the same weights: measured 1.2e-4
    for ours, 0.9e-4 for transformers', so 1e-4 between the two would be noise-bound)."""
    prompts = [
        _chat(reference, [{"role": "user", "content": "What is the capital of France?"}]),
        _chat(reference, [{"role": "system", "content": "You answer in one word."},
                          {"role": "user", "content": "Name a color of the rainbow."},
                          {"role": "assistant", "content": "Blue."},
                          {"role": "user", "content": "And a fruit that is yellow, please?"}]),
        "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    ]
    worst = 0.0
    for text in prompts:
        ids = smollm.tokenizer.encode(text).ids
        difference = np.abs(_our_logits(smollm.model, ids)
                            - _transformers_logits(reference.model, ids)).max()
        worst = max(worst, float(difference))
    print(f"max |logit difference| against transformers: {worst:.3g}")
    assert worst < 2e-4


def test_smollm2_greedy_matches_transformers(smollm, reference) -> None:
    """Greedy continuations of 20 chat prompts, 24 new tokens, token for token. transformers'
    greedy search picks the argmax of its logits for the prompt and the tokens so far, so
    checking each of our tokens against transformers' argmax at that position of one
    teacher-forced pass (and eos after a shorter continuation) is its generate(), run at a
    fraction of the cost (20 transformers generate() calls take over a minute here)."""
    eos = smollm.metadata["tokens.eos_id"]
    # A short system message in place of the template's default one keeps prompts short.
    prompts = [smollm.tokenizer.encode(_chat(reference, [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": question}])).ids for question in QUESTIONS]
    results = _core.generate(smollm.model, prompts,
                             _core.SearchOptions(smollm.model, max_length=24))
    agree, margins = 0, []
    for prompt, hypotheses in zip(prompts, results):
        tokens = list(hypotheses[0][0])
        logits = _transformers_logits(reference.model, prompt + tokens)[len(prompt) - 1:]
        expected = [int(i) for i in logits.argmax(axis=-1)]
        top2 = np.sort(logits, axis=-1)[:, -2:]
        margins.append(float((top2[:, 1] - top2[:, 0]).min()))
        ended = len(tokens) == 24 or expected[len(tokens)] == eos
        agree += tokens == expected[:len(tokens)] and ended
    print(f"greedy agreement {agree}/{len(prompts)}; smallest top-1 margin {min(margins):.3g}")
    assert agree == len(prompts)


def test_smollm2_tokenizer_matches_transformers(smollm, reference) -> None:
    texts = TEXTS + [_chat(reference, [{"role": "user", "content": q}]) for q in QUESTIONS[:4]]
    agree = 0
    for text in texts:
        ours = smollm.tokenizer.encode(text).ids
        theirs = reference.tokenizer.encode(text, add_special_tokens=False)
        agree += ours == list(theirs)
        assert smollm.tokenizer.decode(ours, skip_special_tokens=False) == text, text
    print(f"tokenizer agreement {agree}/{len(texts)}")
    assert agree == len(texts)


def test_smollm2_gguf_precision_keeps_every_block(smollm, tmp_path: Path) -> None:
    """quantize="gguf" on the real file: every Q8_0 / Q4_1 tensor's bytes are the file's (the
    tied Q8_0 embedding stored once; gate and up rows of bytes in ffn_gate_up), so the file is
    about the GGUF's size; its logits are the float32 conversion's (the same weights: only the
    kernels' order of operations differs; measured 1.5e-4, logits reach |38|)."""
    from pytransformer.convert.gguf_llama import _LAYER_NAMES
    from pytransformer.gguf import read_gguf

    path = convert_gguf(SMOLLM2, tmp_path / "smollm2-gguf.ptm", quantize="gguf")
    source = read_gguf(SMOLLM2)
    ours = {"dec.embed.weight": ["token_embd.weight"],
            "dec.out_proj.weight": ["output.weight" if "output.weight" in source.tensors
                                    else "token_embd.weight"]}
    roles = {"q": "attn_self_q", "k": "attn_self_k", "v": "attn_self_v", "out": "attn_self_out",
             "down": "ffn_down"}
    for layer in range(smollm.metadata["model.decoder_layers"]):
        for role, name in roles.items():
            ours[f"dec.{layer}.{name}.weight"] = [_LAYER_NAMES[role].format(i=layer)]
        ours[f"dec.{layer}.ffn_gate_up.weight"] = [_LAYER_NAMES["gate"].format(i=layer),
                                                   _LAYER_NAMES["up"].format(i=layer)]
    model_file = _core.ModelFile(str(path))
    covered = set()
    for name, gguf_names in ours.items():
        types = {source.tensors[gguf_name].type for gguf_name in gguf_names}
        if len(types) == 1 and types <= {"Q8_0", "Q4_1"}:
            assert model_file.tensor_info(name)[0] == types.pop().lower(), name
            expected = np.concatenate([source.tensors[gguf_name].raw_rows()
                                       for gguf_name in gguf_names])
            np.testing.assert_array_equal(model_file.tensor(name, dequantize=False), expected,
                                          err_msg=name)
            covered.update(gguf_names)
    blocks = {name for name, tensor in source.tensors.items() if tensor.type in ("Q8_0", "Q4_1")}
    assert covered == blocks and len(blocks) == 211  # 210 Q4_1 matrices, the Q8_0 embedding
    assert (model_file.tensor_offset("dec.out_proj.weight")
            == model_file.tensor_offset("dec.embed.weight"))
    assert path.stat().st_size < 1.01 * SMOLLM2.stat().st_size
    assert model_file.verify() == len(model_file.tensor_names())

    model = _core.LanguageModel(str(path), 1)
    worst = 0.0
    chat = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
            "<|im_start|>assistant\n")
    for text in (chat, "def fibonacci(n):\n    if n < 2:\n        return n\n    return"):
        ids = smollm.tokenizer.encode(text).ids
        worst = max(worst, float(np.abs(_our_logits(model, ids)
                                        - _our_logits(smollm.model, ids)).max()))
    print(f"max |logit difference| gguf blocks vs float32: {worst:.3g}")
    assert worst < 1e-3

"""Converter of Marian's own models (a `.npz` or `.bin` file, or a Marian model directory)
into a pytransformer file.

A Marian model directory is what Marian's users ship: the model file (`*.npz`: OPUS-MT and
Tatoeba-Challenge releases; `*.bin`: Bergamot / Firefox Translations), its vocabularies
(`vocab.*.spm`, `srcvocab.*.spm` + `trgvocab.*.spm`, or a YAML/JSON vocabulary such as
`opus.spm32k-spm32k.vocab.yml` with `source.spm` / `target.spm` to split text), and a decoder
config (`decoder.yml` or `config*.yml`: `models`, `vocabs`, `beam-size`, `normalize`, ...).
Given a model file, its directory is searched the same way.

What Marian computes (src/models/transformer.h, src/layers/generic.h,
src/graph/node_initializers.cpp, src/translator/beam_search.cpp) and how it is carried over
(docs/format.md):
- embeddings scaled by sqrt(dim-emb), plus sinusoidal positions from position 0, sin | cos
  halves with tensor2tensor frequencies (`exp(-i·ln(10000)/(dim/2 - 1))`: not the frequencies
  of Hugging Face's MarianMTModel, which uses the paper's);
- LayerNorm epsilon 1e-6 (Hugging Face's port uses 1e-5); post-norm (`transformer-postprocess:
  dan`) or pre-norm (`transformer-preprocess: n`, `transformer-postprocess: da`,
  `transformer-postprocess-top: n`), optionally a LayerNorm after the embeddings
  (`transformer-postprocess-emb: dn`); relu or swish feed-forward networks; biases on every
  linear map; tied (`tied-embeddings-all`, `-src`, `tied-embeddings`) or separate embeddings and
  output layer, with the output bias `decoder_ff_logit_out_b`;
- Marian's decoder starts from a zero vector, not a token: the target vocabulary gets one more
  entry, `<pad>` (as Hugging Face's conversion adds it), with a zero embedding and output row
  and an output bias of -1e9, the decoder start, padding and a suppressed id;
- Marian suppresses the unknown word when translating unless `allow-unk`; sources end with
  `</s>` (the vocabulary's end id);
- decoding defaults from the decoder config, searched with the `marian` convention (Marian's
  beam search: the beam narrows as hypotheses finish; docs/decoding.md): `beam-size`,
  `normalize` (the length penalty: a finished hypothesis' score over its length, EOS included,
  to that power), `word-penalty` (subtracted per token before that) and `max-length-factor`
  (Marian limits a batch to that factor times its widest source, EOS included; here each
  sentence by its own source, as when Marian translates it alone; never more than 256
  tokens); no forced EOS.

SSRU decoders (`transformer-decoder-autoreg: rnn`, `dec-cell: ssru`: Bergamot / Firefox
Translations) become `model.decoder_autoregression = ssru`. intgemm8 matrices (Bergamot's
`*.intgemm.alphas.bin`, `gemm-precision: int8shiftAlphaAll`) stay int8: their integers, one
scale 1 / multiplier for every row, and the fixed input step 1 / `*_QuantMultA` (the output
layer's `none_QuantMultA`) as `.input_scale` (docs/format.md); our int8 product then computes
Marian's integer sums exactly (its uint8 shift and bias correction only re-express them).

Not supported yet, refused with a ConversionError that names what is missing: other RNN
decoders, average-attention decoders, Marian's sigmoid-approximated gelu, factored
vocabularies, ensembles, and the rarer options named in `_unsupported`.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytransformer.convert._common import ConversionError, converter_name
from pytransformer.format.quantize import Int8Matrix
from pytransformer.convert.marian_files import (DECODER_OPTIONS, MarianModelFile, is_marian_bin,
                                                parse_yaml, read_marian_model, typed_options)

LAYER_NORM_EPSILON = 1e-6  # marian::layerNorm(x, prefix) in src/layers/generic.h
# Marian's sinusoidal positions have no limit; ours need one (Marian's translator crops or skips
# sources longer than its --max-length, 1000 by default).
MAX_POSITIONS = 1024
MAX_NEW_TOKENS = 256
START_TOKEN = "<pad>"
_IMPOSSIBLE_LOGIT = -1e9
_ACTIVATIONS = {"relu": "relu", "swish": "swish"}
_LANGUAGE_TOKEN = re.compile(r"^>>.+<<$")
_MODEL_SUFFIXES = (".npz", ".bin")


def convert_marian_native(model_path: str | Path, output_path: str | Path,
                          quantize: str | None = None, *,
                          decoder_config: str | Path | None = None) -> Path:
    """Converts the Marian model `model_path` (a `.npz` / `.bin` file, or a Marian model
    directory) into the pytransformer file `output_path`.

    decoder_config: the decoder config (`decoder.yml`, `config*.yml`) to take the model,
    vocabularies and decoding defaults from; default: found beside the model.
    quantize: None keeps the weights as the model stores them (float32; an intgemm8 matrix as
    int8 with its multipliers: Marian's own integers, scales and fixed activation steps);
    other values are passed to pytransformer.format.write_model (e.g. "int8", "f16") for the
    float matrices, and intgemm8 matrices are then dequantised first.
    Returns the output path. Raises ConversionError (a ValueError) naming the file at fault.
    """
    from pytransformer.format import write_model

    metadata, tensors = load_marian_native(model_path, decoder_config=decoder_config,
                                           dequantize=quantize is not None)
    output_path = Path(output_path)
    write_model(output_path, metadata, tensors, quantize=quantize)
    return output_path


def load_marian_native(model_path: str | Path, *, decoder_config: str | Path | None = None,
                       dequantize: bool = False,
                       ) -> tuple[dict[str, Any], dict[str, np.ndarray | Int8Matrix]]:
    """The metadata and tensors (our names; float32, intgemm8 matrices as Int8Matrix unless
    `dequantize`) of a Marian model."""
    sources = find_marian_sources(model_path, decoder_config)
    model = read_marian_model(sources.model)
    missing = _unsupported(model)
    if missing:
        raise ConversionError(f"{model.path}: this Marian model cannot be converted yet: "
                              + "; ".join(missing))
    options = _DecoderOptions.read(sources.decoder_config)
    builder = _ModelBuilder(model, dequantize)
    tensors = builder.tensors()
    source_vocab = _read_vocabulary(sources.vocabs[0], sources.directory, "source")
    target_vocab = _read_vocabulary(sources.vocabs[1], sources.directory, "target")
    metadata = builder.metadata()
    metadata.update(_vocabulary_metadata(source_vocab, target_vocab, builder))
    metadata.update(options.generation(metadata))
    metadata.update(options.shortlist(sources, metadata))
    metadata.update({
        "general.architecture": "transformer-seq2seq",
        "general.name": (sources.directory.resolve().name if Path(model_path).is_dir()
                         else model.path.stem),
        "general.source": str(model.path.resolve()),
        "general.converter": converter_name("marian_native"),
    })
    return metadata, tensors


# ---------------------------------------------------------------------------------------------
# what a directory holds


@dataclass(frozen=True)
class MarianSources:
    """The files of a Marian model: the model, its two vocabularies (source, target) and the
    decoder config they were named by (None when found by their names)."""

    directory: Path
    model: Path
    vocabs: tuple[Path, Path]
    decoder_config: Path | None


def is_marian_model_dir(directory: str | Path) -> bool:
    """Whether `directory` looks like a Marian model directory: a Marian `.npz` / `.bin`
    model file and a vocabulary (`*.spm`, `*.vocab.yml`) or a decoder config."""
    directory = Path(directory)
    if not directory.is_dir():
        return False
    has_vocab = any(directory.glob("*.spm")) or any(directory.glob("*vocab.yml")) \
        or any(directory.glob("*vocab.json")) or _decoder_configs(directory)
    return bool(has_vocab) and bool(_model_files(directory))


def is_marian_model_file(path: str | Path) -> bool:
    """Whether `path` is a Marian `.npz` (a zip named .npz) or a Marian binary model."""
    path = Path(path)
    if path.suffix == ".npz":
        try:
            with open(path, "rb") as file:
                return file.read(4) == b"PK\x03\x04"
        except OSError:
            return False
    return is_marian_bin(path)


def find_marian_sources(model_path: str | Path,
                        decoder_config: str | Path | None = None) -> MarianSources:
    """Finds the model file, vocabularies and decoder config of a Marian model (see the module
    docstring). ConversionError naming what is missing or ambiguous."""
    model_path = Path(model_path)
    if not model_path.exists():
        raise ConversionError(f"{model_path}: no such file or directory")
    directory = model_path if model_path.is_dir() else model_path.parent
    model = None if model_path.is_dir() else model_path
    config_path = Path(decoder_config) if decoder_config is not None else \
        _choose_decoder_config(directory, model)
    config = _read_decoder_yaml(config_path) if config_path is not None else {}
    config_dir = config_path.parent if config_path is not None else directory

    if model is None:
        listed = config.get("models", [])
        if len(listed) > 1:
            raise ConversionError(f"{config_path}: an ensemble of {len(listed)} models; only "
                                  "single models can be converted")
        if listed:
            model = _resolve(listed[0], config_dir, directory, config_path)
        else:
            model = _only_model_file(directory)

    listed_vocabs = config.get("vocabs", [])
    if listed_vocabs:
        if len(listed_vocabs) != 2:
            raise ConversionError(f"{config_path}: vocabs lists {len(listed_vocabs)} "
                                  "vocabularies; a translation model has two (source, target)")
        vocabs = tuple(_resolve(name, config_dir, directory, config_path)
                       for name in listed_vocabs)
    else:
        vocabs = _vocabularies_by_name(directory)
    return MarianSources(directory, model, vocabs, config_path)  # type: ignore[arg-type]


def _decoder_configs(directory: Path) -> list[Path]:
    names = ["decoder.yml", "decoder.yaml"]
    found = [directory / name for name in names if (directory / name).is_file()]
    found += sorted(path for pattern in ("config*.yml", "config*.yaml")
                    for path in directory.glob(pattern) if path.is_file())
    return found


def _choose_decoder_config(directory: Path, model: Path | None) -> Path | None:
    candidates = _decoder_configs(directory)
    if len(candidates) <= 1:
        return candidates[0] if candidates else None
    if model is not None:
        naming = [path for path in candidates
                  if model.name in [Path(m).name for m in _models_of(path)]]
        if naming:
            return naming[0]
    distinct = {tuple(_models_of(path)) for path in candidates}
    if len(distinct) == 1:
        return candidates[0]
    raise ConversionError(f"{directory}: several decoder configs name different models "
                          f"({', '.join(path.name for path in candidates)}): give the model file, "
                          "or the config with decoder_config")


def _models_of(config_path: Path) -> list[str]:
    models = _read_decoder_yaml(config_path).get("models", [])
    return models if isinstance(models, list) else [models]


def _read_decoder_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConversionError(f"{path}: cannot read: {error}") from None
    return typed_options(parse_yaml(text, str(path)), DECODER_OPTIONS, str(path))


def _resolve(name: str, config_dir: Path, directory: Path, config_path: Path | None) -> Path:
    """A path named by a decoder config: relative to the config (Marian's relative-paths),
    else to the model directory, else as given."""
    for candidate in (config_dir / name, directory / Path(name).name, Path(name)):
        if candidate.is_file():
            return candidate
    raise ConversionError(f"{config_path}: names {name}, which does not exist (looked in "
                          f"{config_dir})")


def _model_files(directory: Path) -> list[Path]:
    return sorted(path for path in directory.iterdir()
                  if path.suffix in _MODEL_SUFFIXES and path.is_file()
                  and is_marian_model_file(path))


def _only_model_file(directory: Path) -> Path:
    found = _model_files(directory)
    if len(found) > 1:
        named = [path for path in found if path.name.startswith("model")]
        found = named if named else found
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConversionError(f"{directory}: no Marian model file (.npz, or .bin in Marian's "
                              "binary format)")
    raise ConversionError(f"{directory}: several Marian model files "
                          f"({', '.join(path.name for path in found)}): give one of them")


def _vocabularies_by_name(directory: Path) -> tuple[Path, Path]:
    def one(pattern: str, exclude: tuple[str, ...] = ()) -> list[Path]:
        return sorted(path for path in directory.glob(pattern)
                      if path.is_file() and path.name not in exclude)

    source, target = one("srcvocab*.spm"), one("trgvocab*.spm")
    if len(source) == 1 and len(target) == 1:
        return source[0], target[0]
    shared = one("*.spm", ("source.spm", "target.spm"))
    if len(shared) == 1:
        return shared[0], shared[0]
    source, target = one("*src.vocab.yml"), one("*trg.vocab.yml")
    if len(source) == 1 and len(target) == 1:
        return source[0], target[0]
    shared = one("*vocab.yml") + one("*vocab.json")
    if len(shared) == 1:
        return shared[0], shared[0]
    if (directory / "source.spm").is_file() and (directory / "target.spm").is_file():
        return directory / "source.spm", directory / "target.spm"
    raise ConversionError(f"{directory}: no decoder config names the vocabularies, and no single "
                          "vocabulary was found (vocab.*.spm, srcvocab.*.spm + trgvocab.*.spm, "
                          "*.vocab.yml)")


# ---------------------------------------------------------------------------------------------
# model options -> model.*, weights


def _unsupported(model: MarianModelFile) -> list[str]:
    """What the model needs that the conversion (or our core) does not offer, in words."""
    config, tensors = model.config, model.tensors
    missing = []
    if config["type"] != "transformer":
        missing.append(f"model type {config['type']!r} (only 'transformer' is supported)")
        return missing
    autoreg = config["transformer-decoder-autoreg"]
    if autoreg == "rnn":
        cell = config["dec-cell"]
        if cell != "ssru":
            missing.append(f"an RNN decoder (transformer-decoder-autoreg: rnn, dec-cell: {cell}; "
                           "only ssru)")
    elif autoreg != "self-attention":
        missing.append(f"transformer-decoder-autoreg: {autoreg} (only self-attention)")
    quantized = sorted(name for name, item in tensors.items()
                       if item.quantized and not name.endswith("_QuantMultA"))
    kinds = sorted({tensors[name].type for name in quantized} - {"intgemm8"})
    if kinds:
        missing.append(f"quantised matrices of type {', '.join(kinds)} (only intgemm8)")
    activation = config["transformer-ffn-activation"]
    if activation == "gelu":
        missing.append("transformer-ffn-activation: gelu (Marian's gelu is x·sigmoid(1.702·x), "
                       "which the core does not have)")
    elif activation not in _ACTIVATIONS:
        missing.append(f"transformer-ffn-activation: {activation}")
    if config["transformer-ffn-depth"] != 2 \
            or config["transformer-decoder-ffn-depth"] not in (0, 2):
        missing.append("feed-forward networks of depth other than 2 (transformer-ffn-depth)")
    try:
        _norm_placement(config)
    except ValueError as error:
        missing.append(str(error))
    for key, what in (("transformer-no-projection", "attention without output projection"),
                      ("transformer-pool", "pooled encoder states"),
                      ("transformer-rnn-projection", "a projection after the decoder's RNN"),
                      ("right-left", "a right-to-left model"),
                      ("ulr", "universal language representation embeddings"),
                      ("transformer-disable-position-embeddings", "no position embeddings")):
        if config[key]:
            missing.append(f"{key}: true ({what})")
    if config["transformer-attention-mask"] != "default":
        missing.append(f"transformer-attention-mask: {config['transformer-attention-mask']}")
    if config["lemma-dim-emb"] or any(name.startswith("factor") for name in tensors):
        missing.append("factored vocabularies")
    if "Wpos" in tensors:
        missing.append("trained position embeddings (Wpos)")
    return missing


def _norm_placement(config: dict[str, Any]) -> tuple[bool, bool]:
    """(pre_norm, embedding_norm) from the pre/post-processing strings ('d' is dropout, inert
    when translating); ValueError naming the unsupported combination."""
    def ops(key: str) -> str:
        return config[key].replace("d", "")

    pre, post, top, emb = (ops("transformer-preprocess"), ops("transformer-postprocess"),
                           ops("transformer-postprocess-top"), ops("transformer-postprocess-emb"))
    if emb not in ("", "n"):
        raise ValueError(f"transformer-postprocess-emb: {config['transformer-postprocess-emb']}")
    if (pre, post, top) == ("", "an", ""):
        return False, emb == "n"
    if (pre, post, top) == ("n", "a", "n"):
        return True, emb == "n"
    raise ValueError("layer normalisation other than post-norm (transformer-postprocess: dan) "
                     "or pre-norm (transformer-preprocess: n, transformer-postprocess: da, "
                     "transformer-postprocess-top: n): preprocess "
                     f"{config['transformer-preprocess']!r}, postprocess "
                     f"{config['transformer-postprocess']!r}, postprocess-top "
                     f"{config['transformer-postprocess-top']!r}")


# The sub-layers of a layer, in order: (Marian's scope in `{stack}_l{n}_{scope}`, ours in
# `{enc|dec}.{i}.{scope}`, the _ModelBuilder method that maps it). Decoders by
# transformer-decoder-autoreg: self-attention, or rnn (SSRU, _unsupported refuses other cells).
_ENCODER_SUBLAYERS = (("self", "attn_self", "attention"), ("ffn", "ffn", "feed_forward"))
_DECODER_SUBLAYERS = {
    "self-attention": (("self", "attn_self", "attention"), ("context", "attn_cross", "attention"),
                       ("ffn", "ffn", "feed_forward")),
    "rnn": (("rnn", "ssru", "ssru"), ("context", "attn_cross", "attention"),
            ("ffn", "ffn", "feed_forward")),
}


class _ModelBuilder:
    """Maps Marian items to our tensors, checking each one's shape and values."""

    def __init__(self, model: MarianModelFile, dequantize: bool = False) -> None:
        self.model = model
        self.dequantize = dequantize  # intgemm8 matrices as float32 instead of Int8Matrix
        self.config = model.config
        self.used: set[str] = set()
        self.d = self.config["dim-emb"]
        self.pre_norm, self.embedding_norm = _norm_placement(self.config)
        self.ffn = {"encoder": self.config["transformer-dim-ffn"],
                    "decoder": self.config["transformer-decoder-dim-ffn"]
                    or self.config["transformer-dim-ffn"]}
        self.tied_source = bool(self.config["tied-embeddings-all"]
                                or self.config["tied-embeddings-src"])
        # Embedding rows as Marian has them (ours: one more target row, see tensors()).
        self.marian_vocab_sizes: dict[str, int] = {}

    def take(self, name: str, shape: tuple[int | None, ...]) -> np.ndarray:
        """The float32 values of item `name` in Marian's shape, which must match `shape`
        (None: any size)."""
        item = self.model.tensors.get(name)
        if item is None:
            raise ConversionError(f"{self.model.path}: no item '{name}' (needed by this model's "
                                  "configuration)")
        if len(item.shape) != len(shape) or any(
                want is not None and have != want for have, want in zip(item.shape, shape)):
            expected = "[" + ", ".join("*" if dim is None else str(dim) for dim in shape) + "]"
            raise ConversionError(f"{self.model.path}: item '{name}' has shape {list(item.shape)},"
                                  f" expected {expected}")
        values = item.float32()
        if not np.isfinite(values).all():
            raise ConversionError(f"{self.model.path}: item '{name}' holds NaN or infinite "
                                  "values")
        self.used.add(name)
        return values

    def linear(self, name: str, inputs: int, outputs: int) -> np.ndarray | Int8Matrix:
        """Marian's W [in, out] as our weight [out, in]: float32, or for an intgemm8 matrix
        (kept as it is stored unless the conversion dequantises) an Int8Matrix of its integers
        with every row scaled by 1 / its multiplier and, where the model has `{name}_QuantMultA`,
        the fixed input step 1 / that multiplier (Marian's int8shiftAlphaAll)."""
        item = self.model.tensors.get(name)
        if item is None or not item.quantized or self.dequantize:
            return np.ascontiguousarray(self.take(name, (inputs, outputs)).T)
        self.take(name, (inputs, outputs))  # checks presence, shape and values
        return self.int8(item, np.ascontiguousarray(item.integers_transposed()), name)

    def int8(self, item, integers: np.ndarray, name: str) -> Int8Matrix:
        """An Int8Matrix of `integers` ([out, in], int8) with item's scale and name's
        activation multiplier (`{name}_QuantMultA`, else `none_QuantMultA` for the output
        layer's `Wemb`; none: per-row input quantisation)."""
        scales = np.full(integers.shape[0], item.dequantization_scale(), np.float32)
        return Int8Matrix(integers.astype(np.int8, copy=False), scales,
                          self.input_step(name + "_QuantMultA"))

    def input_step(self, name: str) -> float | None:
        """1 / the activation multiplier item `name` (an intgemm8 [1, 1] for `Wemb_QuantMultA`,
        float32 otherwise), or None without one."""
        item = self.model.tensors.get(name)
        if item is None:
            return None
        multiplier = float(item.float32().reshape(-1)[0])
        if not (np.isfinite(multiplier) and multiplier > 0):
            raise ConversionError(f"{self.model.path}: item '{name}' is not a positive "
                                  f"multiplier ({multiplier})")
        self.used.add(name)
        return float(np.float32(1.0) / np.float32(multiplier))

    def embedding(self, name: str, rows: int | None, output: bool) -> np.ndarray | Int8Matrix:
        """An embedding [vocab, d] (Marian stores `*Wemb` untransposed): float32, or an
        intgemm8 one as an Int8Matrix (its lookups give Marian's values, integer x 1 /
        multiplier, exactly); `output`: it is also the output projection, whose inputs Marian
        quantises with `none_QuantMultA`."""
        item = self.model.tensors.get(name)
        if item is None or not item.quantized or self.dequantize:
            return self.take(name, (rows, self.d))
        self.take(name, (rows, self.d))
        scales = np.full(item.shape[0], item.dequantization_scale(), np.float32)
        return Int8Matrix(np.ascontiguousarray(item.integers()).astype(np.int8, copy=False),
                          scales, self.input_step("none_QuantMultA") if output else None)

    def ssru(self, theirs: str, ours: str, tensors: dict[str, Any]) -> None:
        """Marian's SSRU cell (`_W`, `_Wf`, `_bf`; the post-norm is `{theirs}_ffn_ln_*`) as
        our one [2d, d] product of candidate and forget gate (docs/format.md)."""
        d = self.d
        candidate = self.linear(f"{theirs}_W", d, d)
        forget = self.linear(f"{theirs}_Wf", d, d)
        if isinstance(candidate, Int8Matrix) != isinstance(forget, Int8Matrix):
            raise ConversionError(f"{self.model.path}: '{theirs}_W' and '{theirs}_Wf' are not "
                                  "both int8 or both float")
        if isinstance(candidate, Int8Matrix):
            if candidate.input_scale != forget.input_scale:
                raise ConversionError(
                    f"{self.model.path}: '{theirs}_W' and '{theirs}_Wf' quantise their common "
                    "input with different multipliers, which one product cannot")
            tensors[f"{ours}.weight"] = Int8Matrix(
                np.concatenate([candidate.values, forget.values]),
                np.concatenate([candidate.row_scales, forget.row_scales]), candidate.input_scale)
        else:
            tensors[f"{ours}.weight"] = np.concatenate([candidate, forget])
        tensors[f"{ours}.bias"] = np.concatenate([np.zeros(d, np.float32),
                                                  self.vector(f"{theirs}_bf", d)])
        self.layer_norm(f"{theirs}_ffn", f"{ours}_norm", tensors)

    def vector(self, name: str, size: int) -> np.ndarray:
        return self.take(name, (1, size)).reshape(size)

    def norm(self, prefix: str, suffix: str = "") -> dict[str, np.ndarray]:
        """Marian's LayerNorm `{prefix}_ln_scale{suffix}`, `{prefix}_ln_bias{suffix}`."""
        return {"gamma": self.vector(f"{prefix}_ln_scale{suffix}", self.d),
                "beta": self.vector(f"{prefix}_ln_bias{suffix}", self.d)}

    def attention(self, theirs: str, ours: str, tensors: dict[str, np.ndarray]) -> None:
        d = self.d
        for part, our_part in (("q", "q"), ("k", "k"), ("v", "v"), ("o", "out")):
            tensors[f"{ours}_{our_part}.weight"] = self.linear(f"{theirs}_W{part}", d, d)
            tensors[f"{ours}_{our_part}.bias"] = self.vector(f"{theirs}_b{part}", d)
        self.layer_norm(f"{theirs}_Wo", f"{ours}_norm", tensors)

    def feed_forward(self, theirs: str, ours: str, tensors: dict[str, np.ndarray]) -> None:
        ffn = self.ffn[theirs.split("_", 1)[0]]  # the encoder's or the decoder's
        tensors[f"{ours}_up.weight"] = self.linear(f"{theirs}_W1", self.d, ffn)
        tensors[f"{ours}_up.bias"] = self.vector(f"{theirs}_b1", ffn)
        tensors[f"{ours}_down.weight"] = self.linear(f"{theirs}_W2", ffn, self.d)
        tensors[f"{ours}_down.bias"] = self.vector(f"{theirs}_b2", self.d)
        self.layer_norm(f"{theirs}_ffn", f"{ours}_norm", tensors)

    def layer_norm(self, theirs: str, ours: str, tensors: dict[str, np.ndarray]) -> None:
        # Pre-norm normalises a sub-layer's input (`..._ln_*_pre`), post-norm its output.
        for key, value in self.norm(theirs, "_pre" if self.pre_norm else "").items():
            tensors[f"{ours}.{key}"] = value

    def stack(self, stack: str, scope: str, layers: int, sublayers: tuple,
              tensors: dict[str, np.ndarray]) -> None:
        tied = self.config["transformer-tied-layers"] if stack == "decoder" else []
        if tied and len(tied) != layers:
            raise ConversionError(f"{self.model.path}: transformer-tied-layers lists {len(tied)} "
                                  f"layers, the decoder has {layers}")
        built: dict[int, dict[str, np.ndarray]] = {}
        for index in range(layers):
            number = tied[index] if tied else index + 1  # Marian counts layers from 1
            if number not in built:  # tied layers share one set of arrays
                layer: dict[str, np.ndarray] = {}
                for theirs, ours, method in sublayers:
                    getattr(self, method)(f"{stack}_l{number}_{theirs}", ours, layer)
                built[number] = layer
            for name, value in built[number].items():
                tensors[f"{scope}.{index}.{name}"] = value
        if self.pre_norm:
            for key, value in self.norm(f"{stack}_top").items():
                tensors[f"{scope}.final_norm.{key}"] = value
        if self.embedding_norm:
            for key, value in self.norm(f"{stack}_emb", "_pre").items():
                tensors[f"{scope}.embed_norm.{key}"] = value

    def tensors(self) -> dict[str, np.ndarray]:
        config = self.config
        tensors: dict[str, np.ndarray] = {}
        self.stack("encoder", "enc", config["enc-depth"], _ENCODER_SUBLAYERS, tensors)
        self.stack("decoder", "dec", config["dec-depth"],
                   _DECODER_SUBLAYERS[config["transformer-decoder-autoreg"]], tensors)

        tied_source = self.tied_source
        tied_output = config["tied-embeddings-all"] or config["tied-embeddings"]
        dim_vocabs = config["dim-vocabs"] or [0]  # 0: any size
        source = self.embedding("Wemb" if tied_source else "encoder_Wemb",
                                dim_vocabs[0] or None, output=tied_output and tied_source)
        target = source if tied_source else self.embedding(
            "decoder_Wemb", dim_vocabs[-1] or None, output=tied_output)
        vocab = target.shape[0]
        output = None if tied_output else self.linear("decoder_ff_logit_out_W", self.d, vocab)
        bias = (np.zeros(vocab, np.float32) if config["output-omit-bias"]
                else self.vector("decoder_ff_logit_out_b", vocab))
        if isinstance(output, Int8Matrix) and output.input_scale is None:
            output = Int8Matrix(output.values, output.row_scales,
                                self.input_step("none_QuantMultA"))
        # Wemb_QuantMultA (quantised itself, as items named Wemb are) repeats the output layer's
        # none_QuantMultA in the models seen; the output layer takes none_QuantMultA.
        if "Wemb_QuantMultA" in self.model.tensors:
            self.used.add("Wemb_QuantMultA")

        # Marian's first decoder input is a zero vector: one more target entry with a zero
        # embedding, a zero output row and a logit that never wins (docs: the module docstring).
        target = _with_zero_row(target)
        source = target if tied_source else source
        output = target if tied_output else _with_zero_row(output)
        tensors["enc.embed.weight"] = source
        tensors["dec.embed.weight"] = target
        tensors["dec.out_proj.weight"] = output
        tensors["dec.out_proj.bias"] = np.concatenate([bias, np.float32([_IMPOSSIBLE_LOGIT])])
        self.marian_vocab_sizes = {"source": source.shape[0] - (1 if tied_source else 0),
                                   "target": vocab}

        if self.dequantize:  # float products have no use for Marian's activation multipliers
            self.used.update(name for name in self.model.tensors if name.endswith("_QuantMultA"))
        unused = sorted(set(self.model.tensors) - self.used)
        if unused:
            raise ConversionError(f"{self.model.path}: items this configuration does not use "
                                  f"(an unsupported variant?): {', '.join(unused[:8])}")
        return tensors

    def metadata(self) -> dict[str, Any]:
        config = self.config
        heads = config["transformer-heads"]
        return {
            "model.d_model": self.d,
            "model.encoder_layers": config["enc-depth"],
            "model.decoder_layers": config["dec-depth"],
            "model.encoder_heads": heads,
            "model.decoder_heads": heads,
            "model.encoder_ffn_dim": self.ffn["encoder"],
            "model.decoder_ffn_dim": self.ffn["decoder"],
            "model.activation": _ACTIVATIONS[config["transformer-ffn-activation"]],
            "model.pre_norm": self.pre_norm,
            "model.layer_norm_epsilon": LAYER_NORM_EPSILON,
            "model.scale_embedding": True,
            "model.embedding_norm": self.embedding_norm,
            "model.position_layout": "halves",
            "model.position_frequencies": "tensor2tensor",
            "model.position_offset": 0,
            "model.max_positions": MAX_POSITIONS,
            "model.source_vocab_size": self.marian_vocab_sizes["source"] + int(self.tied_source),
            "model.target_vocab_size": self.marian_vocab_sizes["target"] + 1,
            "model.linear_bias": True,
            "model.output_bias": True,
            **({"model.decoder_autoregression": "ssru"}
               if config["transformer-decoder-autoreg"] == "rnn" else {}),
        }


def _with_zero_row(matrix: np.ndarray | Int8Matrix) -> np.ndarray | Int8Matrix:
    """The matrix with a row of zeros appended (an Int8Matrix keeps its input scale; the new
    row's scale repeats the last one)."""
    if isinstance(matrix, Int8Matrix):
        return Int8Matrix(np.concatenate([matrix.values, np.zeros((1, matrix.shape[1]), np.int8)]),
                          np.concatenate([matrix.row_scales, matrix.row_scales[-1:]]),
                          matrix.input_scale)
    return np.concatenate([matrix, np.zeros((1, matrix.shape[1]), np.float32)])


# ---------------------------------------------------------------------------------------------
# vocabularies -> vocab.*, tokenizer.*, tokens.*


@dataclass(frozen=True)
class _Vocabulary:
    path: Path
    pieces: list[str]  # id -> piece ("" for ids the file does not name)
    eos_id: int
    unk_id: int
    sentencepiece: bytes | None  # the model that splits text into these pieces


def _read_vocabulary(path: Path, directory: Path, side: str) -> _Vocabulary:
    if path.suffix == ".spm":
        return _sentencepiece_vocabulary(path)
    if path.suffix in (".yml", ".yaml", ".json"):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise ConversionError(f"{path}: cannot read: {error}") from None
        mapping = parse_yaml(text, str(path))
        ids: dict[str, int] = {}
        for piece, value in mapping.items():
            if not isinstance(piece, str) or not isinstance(value, str) or not value.isdigit():
                raise ConversionError(f"{path}: entry {piece!r}: {value!r} is not a piece "
                                      "mapped to an id")
            ids[piece] = int(value)
        pieces = [""] * (max(ids.values()) + 1 if ids else 0)
        for piece, index in ids.items():
            pieces[index] = piece
    else:  # Marian's plain-text vocabulary: one piece per line
        try:
            pieces = path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise ConversionError(f"{path}: cannot read: {error}") from None
    spm_path = directory / f"{side}.spm"
    spm = spm_path.read_bytes() if spm_path.is_file() else None
    return _Vocabulary(path, pieces, _required_id(pieces, "</s>", path),
                       _required_id(pieces, "<unk>", path), spm)


def _required_id(pieces: list[str], piece: str, path: Path) -> int:
    try:
        return pieces.index(piece)
    except ValueError:
        raise ConversionError(f"{path}: the vocabulary has no {piece!r} (Marian requires it)"
                              ) from None


def _sentencepiece_vocabulary(path: Path) -> _Vocabulary:
    import sentencepiece

    try:
        blob = path.read_bytes()
        processor = sentencepiece.SentencePieceProcessor()
        processor.LoadFromSerializedProto(blob)
    except (OSError, RuntimeError) as error:
        raise ConversionError(f"{path}: not a SentencePiece model: {error}") from None
    if processor.eos_id() < 0 or processor.unk_id() < 0:
        raise ConversionError(f"{path}: the SentencePiece model has no end or unknown piece "
                              "(Marian needs both)")
    pieces = [processor.id_to_piece(i) for i in range(processor.get_piece_size())]
    return _Vocabulary(path, pieces, processor.eos_id(), processor.unk_id(), blob)


def _vocabulary_metadata(source: _Vocabulary, target: _Vocabulary,
                         builder: _ModelBuilder) -> dict[str, Any]:
    sizes = builder.marian_vocab_sizes
    source_pieces = _fit(source, sizes["source"])
    target_pieces = _fit(target, sizes["target"]) + [START_TOKEN]
    if builder.tied_source:
        source_pieces.append(START_TOKEN)  # the shared table has the start row too
    start_id = len(target_pieces) - 1
    metadata: dict[str, Any] = {
        "vocab.source": source_pieces,
        "vocab.target": target_pieces,
        "tokenizer.add_source_eos": True,  # Marian appends </s> to every source
        "tokens.source_eos_id": source.eos_id,
        "tokens.unk_id": target.unk_id,
        "tokens.source_unk_id": source.unk_id,
        "tokens.eos_id": target.eos_id,
        "tokens.pad_id": start_id,
        "tokens.decoder_start_id": start_id,
    }
    if source.sentencepiece is not None and target.sentencepiece is not None:
        metadata.update({"tokenizer.type": "sentencepiece",
                         "tokenizer.source_model": source.sentencepiece,
                         "tokenizer.target_model": target.sentencepiece})
    else:
        missing = source.path if source.sentencepiece is None else target.path
        warnings.warn(f"{missing}: no SentencePiece model splits text into this vocabulary's "
                      "pieces (source.spm / target.spm): the model takes pieces separated by "
                      "spaces (tokenizer.type none)", stacklevel=3)
        metadata["tokenizer.type"] = "none"
    languages = [piece for piece in source_pieces if _LANGUAGE_TOKEN.match(piece)]
    if languages:
        metadata["tokenizer.target_languages"] = languages
    return metadata


def _fit(vocabulary: _Vocabulary, rows: int) -> list[str]:
    """The vocabulary's pieces for embedding rows 0..rows-1 (Marian reads dim-vocabs entries;
    rows the vocabulary does not name get an empty piece, which is never produced)."""
    if len(vocabulary.pieces) > rows:
        raise ConversionError(f"{vocabulary.path}: {len(vocabulary.pieces)} pieces, more than the "
                              f"model's {rows} embedding rows")
    return vocabulary.pieces + [""] * (rows - len(vocabulary.pieces))


# ---------------------------------------------------------------------------------------------
# decoder config -> generation.*


@dataclass(frozen=True)
class _DecoderOptions:
    options: dict[str, Any]
    source: str

    @classmethod
    def read(cls, path: Path | None) -> "_DecoderOptions":
        if path is None:  # marian-decoder's defaults
            return cls(typed_options({}, DECODER_OPTIONS, "defaults"), "Marian's defaults")
        return cls(_read_decoder_yaml(path), str(path))

    def shortlist(self, sources: MarianSources, metadata: dict[str, Any]) -> dict[str, Any]:
        """The `shortlist.*` metadata of the config's binary lexical shortlist (its first entry;
        Marian's text shortlists are refused), or none."""
        entries = self.options["shortlist"]
        if not entries:
            return {}
        config_dir = Path(self.source).parent if sources.decoder_config else sources.directory
        path = _resolve(entries[0], config_dir, sources.directory, sources.decoder_config)
        if not path.is_file():
            raise ConversionError(f"{self.source}: the shortlist {entries[0]} is missing")
        from pytransformer.convert.marian_shortlist import read_shortlist

        shortlist = read_shortlist(path, target_vocab_size=metadata["model.target_vocab_size"])
        if shortlist.source_vocab_size > metadata["model.source_vocab_size"]:
            raise ConversionError(f"{path}: a shortlist for {shortlist.source_vocab_size} source "
                                  f"ids, the model has {metadata['model.source_vocab_size']}")
        return shortlist.metadata()

    def generation(self, metadata: dict[str, Any]) -> dict[str, Any]:
        options = self.options
        if options["beam-size"] < 1:
            raise ConversionError(f"{self.source}: beam-size {options['beam-size']}")
        if options["max-length-factor"] <= 0:
            raise ConversionError(f"{self.source}: max-length-factor "
                                  f"{options['max-length-factor']} (must be > 0)")
        suppressed = [metadata["tokens.decoder_start_id"]]
        if not options["allow-unk"]:
            suppressed.append(metadata["tokens.unk_id"])
        return {
            "generation.beam_size": int(options["beam-size"]),
            "generation.max_length": min(MAX_NEW_TOKENS, MAX_POSITIONS),
            "generation.length_penalty": float(options["normalize"]),
            "generation.suppressed_ids": sorted(set(suppressed)),
            "generation.forced_eos": False,
            # Marian suppresses words in the log-probabilities without renormalising them.
            "generation.renormalize_logits": False,
            "generation.search_convention": "marian",
            "generation.max_length_factor": float(options["max-length-factor"]),
            "generation.word_penalty": float(options["word-penalty"]),
        }


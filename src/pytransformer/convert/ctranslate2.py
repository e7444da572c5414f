"""Converter of CTranslate2 model directories into a pytransformer file (no ctranslate2 import).

A CTranslate2 directory holds model.bin, the vocabularies (shared_vocabulary.{json,txt} or
source_vocabulary.* + target_vocabulary.*: a JSON list or one token per line) and, since
CTranslate2 2.x, config.json (special tokens, layer_norm_epsilon, source bos/eos). An
argos-translate package is also accepted: a directory whose model/ subdirectory is such a model
directory and which holds sentencepiece.model beside it.

model.bin (written by ctranslate2/specs/model_spec.py, read by src/models/model.cc):
    u32 binary version (1..6)
    version >= 2: string spec name, u32 spec revision
    u32 variable count, then per variable:
        string name, u8 rank, u32 dims[rank],
        version >= 4: u8 type id (0 f32, 1 i8, 2 i16, 3 i32, 4 f16, 5 bf16), u32 byte size
        version <  4: u8 item size (4 f32, 2 i16, 1 i8), u32 element count
        the data
    version >= 3: u32 alias count, then (string alias, string variable name) pairs
where a string is a u16 length (counting a final NUL) and that many bytes. Scalars (rank 0) are
the model's attributes (num_heads, pre_norm, activation...); spec revisions below 5 keep them at
the root instead of under encoder/ and decoder/, and TransformerBase / TransformerBig files of
revision < 3 store no num_heads (8 and 16).

What CTranslate2 computes for a Transformer spec, carried into our metadata:
- embeddings times sqrt(d_model) unless `scale_embeddings` (or the older
  `embeddings/multiply_by_sqrt_depth`) says otherwise;
- sinusoidal positions generated when no `position_encodings/encodings` is stored: sin half then
  cos half (`halves`), frequencies 10000^(-i/(d/2-1)) (`tensor2tensor`), the first token at
  position 1 (`model.position_offset` 1). A stored table is accepted when it is such a
  sinusoidal table (e.g. `paper` frequencies from position 0, as CTranslate2's Transformers
  converter stores for Marian); learned tables are not supported;
- pre-norm (default) with a final LayerNorm per stack, or post-norm; LayerNorm epsilon from
  config.json, else 1e-5;
- fused projections split: self-attention linear_0 = [q; k; v], cross-attention linear_0 = q,
  linear_1 = [k; v]; the last linear of each attention is the output projection;
- int8 / int16 weights are dequantized (CTranslate2 stores w = q / scale), float16 and bfloat16
  widened: the file holds float32 unless `quantize` is given;
- `decoder/start_from_zero_embedding` (Marian models converted by CTranslate2): the decoder
  starts from a zero vector. We append one target token whose embedding is zero, make it the
  decoder start, suppress it and give it an output bias of -1e9 so its probability is exactly 0:
  outputs are unchanged.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pytransformer.convert._common import ConversionError, converter_name, read_json

SUPPORTED_BINARY_VERSION = 6
# CTranslate2's Activation enum -> model.activation.
_ACTIVATIONS = {0: "relu", 1: "gelu_tanh", 2: "swish", 3: "gelu"}
# CTranslate2's DataType enum (binary version >= 4).
_TYPE_IDS = {0: np.dtype("<f4"), 1: np.dtype("i1"), 2: np.dtype("<i2"), 3: np.dtype("<i4"),
             4: np.dtype("<f2"), 5: np.dtype("<u2")}
_ITEM_SIZES = {4: np.dtype("<f4"), 2: np.dtype("<i2"), 1: np.dtype("i1")}
_GLOBAL_INT16_SCALE = 1000.0  # ops::Quantize::global_int16_scale, for old int16 files
_DEFAULT_HEADS = {"": 8, "TransformerBase": 8, "TransformerBig": 16}
_TRANSFORMER_SPECS = {"", "TransformerBase", "TransformerBig", "TransformerSpec"}
# CTranslate2's translate_batch defaults.
_DEFAULT_BEAM_SIZE = 2
_DEFAULT_MAX_DECODING_LENGTH = 256
# Generated sinusoidal positions have no limit in CTranslate2; ours need one.
_GENERATED_MAX_POSITIONS = 1024
_ZERO_START_TOKEN = "<ct2_zero_start>"
_IMPOSSIBLE_LOGIT = -1e9


@dataclass
class _Variable:
    value: np.ndarray  # as stored: float32/float16/bf16 (uint16)/int8/int16/int32


def convert_ctranslate2(model_dir: str | Path, output_path: str | Path,
                        quantize: str | None = None) -> Path:
    """Converts the CTranslate2 model (or argos-translate package) in `model_dir` into the
    pytransformer file `output_path`.

    quantize: None keeps float32 weights; "f16", "bf16", "int8", "int8_all", "q8_0" or "q4_1"
    are passed to pytransformer.format.write_model. Returns the output path. Raises ConversionError
    (a ValueError) naming the file at fault or the unsupported feature.
    """
    from pytransformer.format import write_model

    metadata, tensors = load_ctranslate2(model_dir)
    output_path = Path(output_path)
    write_model(output_path, metadata, tensors, quantize=quantize)
    return output_path


def load_ctranslate2(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and tensors (our names, float32) of the CTranslate2 model in `model_dir`."""
    package_dir = Path(model_dir)
    model_dir = package_dir
    if not (model_dir / "model.bin").exists() and (model_dir / "model" / "model.bin").exists():
        model_dir = model_dir / "model"  # argos-translate package layout
    binary_path = model_dir / "model.bin"
    if not binary_path.exists():
        raise ConversionError(f"{package_dir}: no model.bin (nor model/model.bin)")

    spec, revision, variables = read_model_bin(binary_path)
    if spec not in _TRANSFORMER_SPECS:
        raise ConversionError(f"{binary_path}: spec {spec!r} is not an encoder-decoder "
                              "Transformer (supported: TransformerSpec, TransformerBase, "
                              "TransformerBig)")
    config_path = model_dir / "config.json"
    config = read_json(config_path) if config_path.exists() else {}
    if not isinstance(config, dict):
        raise ConversionError(f"{config_path}: expected a JSON object")
    return _Builder(binary_path, spec, revision, variables, config, model_dir,
                    package_dir).build()


def read_model_bin(path: Path) -> tuple[str, int, dict[str, _Variable]]:
    """(spec name, spec revision, variables by name with aliases resolved) of a model.bin."""
    data = path.read_bytes()
    reader = _Reader(data, path)
    version = reader.unpack("<I")
    if not 1 <= version <= SUPPORTED_BINARY_VERSION:
        raise ConversionError(f"{path}: binary version {version} is not supported "
                              f"(1..{SUPPORTED_BINARY_VERSION})")
    spec, revision = ("", 1)
    if version >= 2:
        spec = reader.string()
        revision = reader.unpack("<I")
    variables: dict[str, _Variable] = {}
    for _ in range(reader.unpack("<I")):
        name = reader.string()
        rank = reader.unpack("<B")
        shape = [reader.unpack("<I") for _ in range(rank)]
        if version >= 4:
            type_id = reader.unpack("<B")
            if type_id not in _TYPE_IDS:
                raise ConversionError(f"{path}: variable '{name}' has unknown type {type_id}")
            dtype = _TYPE_IDS[type_id]
            size = reader.unpack("<I")
        else:
            item_size = reader.unpack("<B")
            if item_size not in _ITEM_SIZES:
                raise ConversionError(f"{path}: variable '{name}' has unknown item size "
                                      f"{item_size}")
            dtype = _ITEM_SIZES[item_size]
            size = reader.unpack("<I") * item_size
        count = math.prod(shape)
        if size != count * dtype.itemsize:
            raise ConversionError(f"{path}: variable '{name}' holds {size} bytes, expected "
                                  f"{count * dtype.itemsize} for shape {shape}")
        raw = reader.take(size)
        variables[name] = _Variable(np.frombuffer(raw, dtype=dtype).reshape(shape))
    if version >= 3:
        for _ in range(reader.unpack("<I")):
            alias, target = reader.string(), reader.string()
            if target in variables:
                variables[alias] = variables[target]
            if target + "_scale" in variables:
                variables[alias + "_scale"] = variables[target + "_scale"]
    if revision == 1 and version >= 1 and any(":0" in name for name in variables):
        raise ConversionError(f"{path}: spec revision 1 (OpenNMT-tf variable names) is not "
                              "supported")
    return spec, revision, variables


class _Reader:
    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.offset = data, path, 0

    def take(self, size: int) -> bytes:
        if self.offset + size > len(self.data):
            raise ConversionError(f"{self.path}: truncated at byte {self.offset} "
                                  f"(needs {size} more bytes)")
        chunk = self.data[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def unpack(self, fmt: str) -> int:
        (value,) = struct.unpack(fmt, self.take(struct.calcsize(fmt)))
        return value

    def string(self) -> str:
        raw = self.take(self.unpack("<H"))
        try:
            return raw.split(b"\0", 1)[0].decode("utf-8")
        except UnicodeDecodeError:
            raise ConversionError(f"{self.path}: a name is not UTF-8") from None


class _Builder:
    """Maps the variables of one Transformer spec onto our metadata and tensor names."""

    def __init__(self, binary_path: Path, spec: str, revision: int,
                 variables: dict[str, _Variable], config: dict[str, Any], model_dir: Path,
                 package_dir: Path) -> None:
        self.path = binary_path
        self.spec = spec
        self.revision = revision
        self.variables = variables
        self.config = config
        self.model_dir = model_dir
        self.package_dir = package_dir
        self.used: set[str] = set()

    # -- attributes ---------------------------------------------------------------------------

    def attribute(self, scope: str, name: str, default: Any) -> Any:
        """A scalar attribute: scope/name, or the root name in spec revisions < 5."""
        for key in (f"{scope}/{name}", name):
            if key in self.variables and self.variables[key].value.ndim == 0:
                self.used.add(key)
                return self.variables[key].value.item()
        return default

    def check_absent(self, *names: str) -> None:
        """Raises if a variable or a true flag of a feature we do not support is present."""
        for name in names:
            variable = self.variables.get(name)
            if variable is None:
                continue
            if variable.value.ndim == 0 and not variable.value.item():
                self.used.add(name)  # a disabled feature flag
                continue
            raise ConversionError(f"{self.path}: '{name}' is not supported "
                                      "(a Transformer variant pytransformer cannot run)")

    # -- tensors ------------------------------------------------------------------------------

    def matrix(self, name: str) -> np.ndarray:
        """A weight as float32, dequantized with its `_scale` when stored as int8/int16."""
        if name not in self.variables:
            raise ConversionError(f"{self.path}: variable '{name}' is missing")
        self.used.add(name)
        value = self.variables[name].value
        if value.dtype in (np.int8, np.int16):
            scale_name = name + "_scale"
            if scale_name in self.variables:
                self.used.add(scale_name)
                scale = self.float(scale_name)
            elif value.dtype == np.int16:
                scale = np.float32(_GLOBAL_INT16_SCALE)
            else:
                raise ConversionError(f"{self.path}: int8 variable '{name}' has no scale")
            scale = np.asarray(scale, dtype=np.float32)
            if scale.ndim == 1:
                scale = scale[:, None]
            return value.astype(np.float32) / scale
        return self.float(name)

    def float(self, name: str) -> np.ndarray:
        if name not in self.variables:
            raise ConversionError(f"{self.path}: variable '{name}' is missing")
        self.used.add(name)
        value = self.variables[name].value
        if value.dtype == np.dtype("<u2"):  # bfloat16: the upper half of a float32
            return (value.astype(np.uint32) << 16).view(np.float32)
        if value.dtype.kind != "f":
            raise ConversionError(f"{self.path}: variable '{name}' is {value.dtype}, "
                                  "expected floating point")
        return value.astype(np.float32)

    # -- the model ----------------------------------------------------------------------------

    def build(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        encoder_layers = self.count_layers("encoder")
        decoder_layers = self.count_layers("decoder")
        if encoder_layers == 0 or decoder_layers == 0:
            raise ConversionError(f"{self.path}: no encoder or decoder layers found")
        self.check_absent("encoder/embeddings_1/weight", "decoder/project_in/weight",
                          "decoder/project_out/weight",
                          "encoder/layer_0/self_attention/relative_position_keys",
                          "encoder/layer_0/self_attention/relative_attention_bias",
                          "encoder/layer_0/ffn/linear_0_noact/weight",
                          "decoder/layer_0/ffn/linear_0_noact/weight",
                          "decoder/scale_outputs", "decoder/alibi",
                          "decoder/alibi_use_positive_positions", "decoder/scale_alibi",
                          "encoder/multi_query_attention", "decoder/multi_query_attention")
        for name in self.variables:
            if name.endswith("queries_scale") or "rotary" in name or "q_norm" in name:
                raise ConversionError(f"{self.path}: '{name}' is not supported")

        default_heads = _DEFAULT_HEADS.get(self.spec, 8)
        heads = {stack: int(self.attribute(stack, "num_heads", default_heads))
                 for stack in ("encoder", "decoder")}
        pre_norm = {stack: bool(self.attribute(stack, "pre_norm", True))
                    for stack in ("encoder", "decoder")}
        activation = {stack: int(self.attribute(stack, "activation", 0))
                      for stack in ("encoder", "decoder")}
        if pre_norm["encoder"] != pre_norm["decoder"] or \
                activation["encoder"] != activation["decoder"]:
            raise ConversionError(f"{self.path}: encoder and decoder differ in pre_norm or "
                                  "activation: not supported")
        if activation["encoder"] not in _ACTIVATIONS:
            raise ConversionError(f"{self.path}: activation {activation['encoder']} is not "
                                  f"supported (supported: relu, gelu_tanh, swish, gelu)")
        for stack in ("encoder", "decoder"):
            if pre_norm[stack] and f"{stack}/layer_norm/gamma" not in self.variables:
                raise ConversionError(f"{self.path}: a pre-norm {stack} without a final "
                                      "LayerNorm is not supported")
            if not pre_norm[stack] and f"{stack}/layer_norm/gamma" in self.variables:
                raise ConversionError(f"{self.path}: a post-norm {stack} with a final "
                                      "LayerNorm is not supported")
        embedding_norm = "encoder/layernorm_embedding/gamma" in self.variables
        if embedding_norm != ("decoder/layernorm_embedding/gamma" in self.variables):
            raise ConversionError(f"{self.path}: an embedding LayerNorm in only one stack is "
                                  "not supported")
        for attribute in ("alignment_layer", "alignment_heads", "embeddings_merge"):
            self.attribute("encoder", attribute, None)
            self.attribute("decoder", attribute, None)

        source_embed = self.matrix(self.embedding_name("encoder"))
        target_embed = self.matrix(self.embedding_name("decoder"))
        d_model = source_embed.shape[1]
        if heads["encoder"] <= 0 or d_model % heads["encoder"] or \
                heads["decoder"] <= 0 or d_model % heads["decoder"]:
            raise ConversionError(f"{self.path}: {heads} heads do not divide d_model {d_model}")
        scale = self.embedding_scale("encoder", d_model)
        if scale != self.embedding_scale("decoder", d_model):
            raise ConversionError(f"{self.path}: encoder and decoder scale their embeddings "
                                  "differently: not supported")
        positions = self.positions(d_model)

        tensors: dict[str, np.ndarray] = {}
        ffn_dims = {}
        for stack, scope, layers in (("encoder", "enc", encoder_layers),
                                     ("decoder", "dec", decoder_layers)):
            for layer in range(layers):
                self.layer(stack, scope, layer, d_model, tensors)
            ffn_dims[stack] = tensors[f"{scope}.0.ffn_up.weight"].shape[0]
            if pre_norm[stack]:
                self.norm(f"{stack}/layer_norm", f"{scope}.final_norm", tensors)
            if embedding_norm:
                self.norm(f"{stack}/layernorm_embedding", f"{scope}.embed_norm", tensors)

        out_proj = self.matrix("decoder/projection/weight")
        out_bias = (self.float("decoder/projection/bias")
                    if "decoder/projection/bias" in self.variables else None)
        source_vocab, target_vocab = self.vocabularies(source_embed.shape[0],
                                                       target_embed.shape[0])
        tokens = self.special_tokens(source_vocab, target_vocab)
        zero_start = bool(self.attribute("decoder", "start_from_zero_embedding", False))
        suppressed: list[int] = []
        if zero_start:
            target_vocab = target_vocab + [_ZERO_START_TOKEN]
            target_embed = np.concatenate([target_embed, np.zeros((1, d_model), np.float32)])
            out_proj = np.concatenate([out_proj, np.zeros((1, d_model), np.float32)])
            if out_bias is None:
                out_bias = np.zeros(out_proj.shape[0] - 1, np.float32)
            out_bias = np.concatenate([out_bias, np.float32([_IMPOSSIBLE_LOGIT])])
            tokens["tokens.decoder_start_id"] = len(target_vocab) - 1
            suppressed.append(len(target_vocab) - 1)
        tied = out_proj is target_embed or np.array_equal(out_proj, target_embed)
        tensors["enc.embed.weight"] = source_embed
        tensors["dec.embed.weight"] = target_embed
        tensors["dec.out_proj.weight"] = target_embed if tied else out_proj
        if out_bias is not None:
            tensors["dec.out_proj.bias"] = out_bias

        unknown = sorted(name for name in set(self.variables) - self.used
                         if not name.endswith(("_scale", "_compensation")))
        if unknown:
            raise ConversionError(f"{self.path}: unsupported variables: "
                                  f"{', '.join(unknown[:8])}")

        epsilon = self.config.get("layer_norm_epsilon")
        metadata: dict[str, Any] = {
            "general.architecture": "transformer-seq2seq",
            "general.name": self.package_dir.resolve().name,
            "general.source": str(self.package_dir.resolve()),
            "general.converter": converter_name("ctranslate2"),
            "model.d_model": d_model,
            "model.encoder_layers": encoder_layers,
            "model.decoder_layers": decoder_layers,
            "model.encoder_heads": heads["encoder"],
            "model.decoder_heads": heads["decoder"],
            "model.encoder_ffn_dim": ffn_dims["encoder"],
            "model.decoder_ffn_dim": ffn_dims["decoder"],
            "model.activation": _ACTIVATIONS[activation["encoder"]],
            "model.pre_norm": pre_norm["encoder"],
            "model.layer_norm_epsilon": float(epsilon) if epsilon is not None else 1e-5,
            "model.scale_embedding": scale,
            "model.embedding_norm": embedding_norm,
            **positions,
            "model.source_vocab_size": len(source_vocab),
            "model.target_vocab_size": len(target_vocab),
            "model.linear_bias": True,
            "model.output_bias": out_bias is not None,
            "vocab.source": source_vocab,
            "vocab.target": target_vocab,
            **tokens,
            **self.tokenizer(),
            "generation.beam_size": _DEFAULT_BEAM_SIZE,
            "generation.max_length": min(_DEFAULT_MAX_DECODING_LENGTH,
                                         positions["model.max_positions"]),
            "generation.length_penalty": 1.0,
            "generation.suppressed_ids": suppressed,
            "generation.forced_eos": False,
            "generation.search_convention": "ctranslate2",
        }
        return metadata, tensors

    def count_layers(self, stack: str) -> int:
        count = 0
        while any(name.startswith(f"{stack}/layer_{count}/") for name in self.variables):
            count += 1
        return count

    def embedding_name(self, stack: str) -> str:
        for name in (f"{stack}/embeddings/weight", f"{stack}/embeddings_0/weight"):
            if name in self.variables:
                return name
        raise ConversionError(f"{self.path}: no {stack} embeddings")

    def embedding_scale(self, stack: str, d_model: int) -> bool:
        for name in (f"{stack}/scale_embeddings", f"{stack}/embeddings/multiply_by_sqrt_depth",
                     f"{stack}/embeddings_0/multiply_by_sqrt_depth"):
            if name in self.variables:
                self.used.add(name)
                value = self.variables[name].value
                if value.dtype == np.int8:
                    return bool(value.item())
                scale = float(value.astype(np.float32).item())
                if scale == 1.0:
                    return False
                if math.isclose(scale, math.sqrt(d_model), rel_tol=1e-6):
                    return True
                raise ConversionError(f"{self.path}: embedding scale {scale} is neither 1 nor "
                                      f"sqrt(d_model): not supported")
        return True

    def positions(self, d_model: int) -> dict[str, Any]:
        tables = {stack: f"{stack}/position_encodings/encodings"
                  for stack in ("encoder", "decoder")}
        stored = {stack: name for stack, name in tables.items() if name in self.variables}
        if not stored:
            return {"model.position_layout": "halves",
                    "model.position_frequencies": "tensor2tensor",
                    "model.position_offset": 1,
                    "model.max_positions": _GENERATED_MAX_POSITIONS}
        if len(stored) != 2:
            raise ConversionError(f"{self.path}: only one stack stores position encodings")
        encoder_table = self.float(stored["encoder"])
        decoder_table = self.float(stored["decoder"])
        if not np.array_equal(encoder_table, decoder_table):
            raise ConversionError(f"{self.path}: encoder and decoder position tables differ")
        tolerance = 1e-3 if self.variables[stored["encoder"]].value.dtype != np.float32 \
            else 1e-5
        for layout in ("halves", "interleaved"):
            for frequencies in ("paper", "tensor2tensor"):
                for offset in (0, 1, 2):
                    expected = sinusoidal_table(encoder_table.shape[0], d_model, layout,
                                                frequencies, offset)
                    if np.allclose(encoder_table, expected, atol=tolerance, rtol=0):
                        return {"model.position_layout": layout,
                                "model.position_frequencies": frequencies,
                                "model.position_offset": offset,
                                "model.max_positions": int(encoder_table.shape[0])}
        raise ConversionError(f"{self.path}: the stored position table is not sinusoidal "
                              "(learned position embeddings are not supported)")

    def fused_linear(self, theirs: str, ours: str, parts: str, d_model: int,
                     tensors: dict[str, np.ndarray]) -> None:
        """CTranslate2 stores the projections named by `parts` ("qkv" or "kv") as one
        [len(parts) * d_model, d_model] linear map: split it into ours_q, ours_k, ..."""
        weight = self.matrix(f"{theirs}/weight")
        bias = self.bias(f"{theirs}/bias", len(parts) * d_model)
        if weight.shape != (len(parts) * d_model, d_model):
            raise ConversionError(f"{self.path}: {theirs}/weight has shape "
                                  f"{list(weight.shape)}, expected [{len(parts) * d_model}, "
                                  f"{d_model}]")
        for index, part in enumerate(parts):
            rows = slice(index * d_model, (index + 1) * d_model)
            tensors[f"{ours}_{part}.weight"] = weight[rows]
            tensors[f"{ours}_{part}.bias"] = bias[rows]

    def layer(self, stack: str, scope: str, layer: int, d_model: int,
              tensors: dict[str, np.ndarray]) -> None:
        prefix = f"{stack}/layer_{layer}"
        ours = f"{scope}.{layer}"
        self_attention = f"{prefix}/self_attention"
        self.fused_linear(f"{self_attention}/linear_0", f"{ours}.attn_self", "qkv", d_model,
                          tensors)
        self.linear(f"{self_attention}/linear_1", f"{ours}.attn_self_out", d_model, tensors)
        self.norm(f"{self_attention}/layer_norm", f"{ours}.attn_self_norm", tensors)

        if stack == "decoder":
            cross = f"{prefix}/attention"
            self.linear(f"{cross}/linear_0", f"{ours}.attn_cross_q", d_model, tensors)
            self.fused_linear(f"{cross}/linear_1", f"{ours}.attn_cross", "kv", d_model, tensors)
            self.linear(f"{cross}/linear_2", f"{ours}.attn_cross_out", d_model, tensors)
            self.norm(f"{cross}/layer_norm", f"{ours}.attn_cross_norm", tensors)

        ffn = f"{prefix}/ffn"
        up = self.matrix(f"{ffn}/linear_0/weight")
        tensors[f"{ours}.ffn_up.weight"] = up
        tensors[f"{ours}.ffn_up.bias"] = self.bias(f"{ffn}/linear_0/bias", up.shape[0])
        self.linear(f"{ffn}/linear_1", f"{ours}.ffn_down", d_model, tensors)
        self.norm(f"{ffn}/layer_norm", f"{ours}.ffn_norm", tensors)

    def linear(self, theirs: str, ours: str, rows: int, tensors: dict[str, np.ndarray]) -> None:
        tensors[f"{ours}.weight"] = self.matrix(f"{theirs}/weight")
        tensors[f"{ours}.bias"] = self.bias(f"{theirs}/bias", rows)

    def bias(self, name: str, size: int) -> np.ndarray:
        """The bias, or zeros when the spec has none (our file always holds linear biases)."""
        if name in self.variables:
            return self.float(name)
        return np.zeros(size, np.float32)

    def norm(self, theirs: str, ours: str, tensors: dict[str, np.ndarray]) -> None:
        if f"{theirs}/beta" not in self.variables:
            raise ConversionError(f"{self.path}: '{theirs}' has no beta (RMSNorm is not "
                                  "supported)")
        tensors[f"{ours}.gamma"] = self.float(f"{theirs}/gamma")
        tensors[f"{ours}.beta"] = self.float(f"{theirs}/beta")

    # -- vocabularies and tokenizer -----------------------------------------------------------

    def vocabularies(self, source_size: int, target_size: int) -> tuple[list[str], list[str]]:
        unk = str(self.config.get("unk_token", "<unk>"))
        shared = self.vocabulary_file("shared_vocabulary")
        if shared is not None:
            source = target = read_vocabulary(shared)
        else:
            source_path = self.vocabulary_file("source_vocabulary")
            target_path = self.vocabulary_file("target_vocabulary")
            if source_path is None or target_path is None:
                raise ConversionError(f"{self.model_dir}: no shared_vocabulary.* nor "
                                      "source_vocabulary.* + target_vocabulary.*")
            source, target = read_vocabulary(source_path), read_vocabulary(target_path)
        # CTranslate2 appends the unknown token to a vocabulary that lacks it.
        source = source if unk in source else source + [unk]
        target = target if unk in target else target + [unk]
        for side, vocab, size in (("source", source, source_size),
                                  ("target", target, target_size)):
            if len(vocab) != size:
                raise ConversionError(f"{self.model_dir}: the {side} vocabulary has "
                                      f"{len(vocab)} tokens but the embeddings {size} rows")
        return source, target

    def vocabulary_file(self, stem: str) -> Path | None:
        for extension in ("json", "txt"):
            path = self.model_dir / f"{stem}.{extension}"
            if path.exists():
                return path
        return None

    def special_tokens(self, source: list[str], target: list[str]) -> dict[str, int]:
        config = self.config
        if config.get("add_source_bos") or self.attribute("", "with_source_bos", False):
            raise ConversionError(f"{self.model_dir}: add_source_bos is not supported")
        add_source_eos = bool(config.get("add_source_eos")) or \
            bool(self.attribute("", "with_source_eos", False))
        unk = str(config.get("unk_token", "<unk>"))
        bos = str(config.get("bos_token", "<s>"))
        eos = str(config.get("eos_token", "</s>"))
        start = config.get("decoder_start_token", bos)
        if start is None:
            raise ConversionError(f"{self.model_dir}: models without a decoder start token "
                                  "(decoder_start_token null) are not supported")
        for token, vocab, side in ((eos, target, "target"), (str(start), target, "target"),
                                   (eos, source, "source")):
            if token not in vocab and (side == "target" or add_source_eos):
                raise ConversionError(f"{self.model_dir}: {token!r} is not in the {side} "
                                      "vocabulary")
        pad = "<blank>" if "<blank>" in target else "<pad>"
        return {
            "tokens.pad_id": target.index(pad) if pad in target else target.index(eos),
            "tokens.eos_id": target.index(eos),
            "tokens.unk_id": target.index(unk),
            "tokens.source_unk_id": source.index(unk),
            "tokens.decoder_start_id": target.index(str(start)),
            "tokens.source_eos_id": source.index(eos) if eos in source else 0,
            "tokenizer.add_source_eos": add_source_eos,
        }

    def tokenizer(self) -> dict[str, Any]:
        """SentencePiece models beside the model (source.spm + target.spm, or one
        sentencepiece.model as argos-translate packages have), else tokenizer.type none."""
        for directory in dict.fromkeys((self.model_dir, self.package_dir)):
            if (directory / "source.spm").exists() and (directory / "target.spm").exists():
                return {"tokenizer.type": "sentencepiece",
                        "tokenizer.source_model": (directory / "source.spm").read_bytes(),
                        "tokenizer.target_model": (directory / "target.spm").read_bytes()}
            if (directory / "sentencepiece.model").exists():
                blob = (directory / "sentencepiece.model").read_bytes()
                return {"tokenizer.type": "sentencepiece", "tokenizer.source_model": blob,
                        "tokenizer.target_model": blob}
        return {"tokenizer.type": "none"}


def read_vocabulary(path: Path) -> list[str]:
    """Tokens of a CTranslate2 vocabulary file: a JSON list, or one token per line (a final
    carriage return is dropped only when every line has one, as CTranslate2 does)."""
    if path.suffix == ".json":
        tokens = read_json(path)
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise ConversionError(f"{path}: expected a JSON list of strings")
        return tokens
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConversionError(f"{path}: not UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if lines and all(line.endswith("\r") for line in lines):
        lines = [line[:-1] for line in lines]
    return lines


def sinusoidal_table(rows: int, d_model: int, layout: str, frequencies: str,
                     offset: int) -> np.ndarray:
    """The sinusoidal position table docs/format.md defines, [rows, d_model] float32."""
    half = d_model // 2
    index = np.arange(half, dtype=np.float64)
    if frequencies == "paper":
        inverse = np.power(10000.0, -2.0 * index / d_model)
    else:
        inverse = np.exp(-index * math.log(10000.0) / max(half - 1, 1))
    angles = (np.arange(rows, dtype=np.float64) + offset)[:, None] * inverse[None, :]
    table = np.empty((rows, d_model), np.float64)
    if layout == "halves":
        table[:, :half], table[:, half:] = np.sin(angles), np.cos(angles)
    else:
        table[:, 0::2], table[:, 1::2] = np.sin(angles), np.cos(angles)
    return table.astype(np.float32)

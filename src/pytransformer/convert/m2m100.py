"""Converter of Hugging Face M2M100 and NLLB-200 model directories into a pytransformer file.

The directory is what `M2M100ForConditionalGeneration.save_pretrained` writes (config.json with
model_type `m2m_100`, model.safetensors or its shards, generation_config.json) plus the
tokenizer's files, in one of two layouts:
- M2M100 (`M2M100Tokenizer`): sentencepiece.bpe.model, vocab.json (piece -> id) and
  tokenizer_config.json (`language_codes`: "m2m100" or "wmt21");
- NLLB-200 (`NllbTokenizer`): sentencepiece.bpe.model, and tokenizer.json or a
  tokenizer_config.json whose `added_tokens_decoder` gives the language codes' ids.
Weights are read with numpy from safetensors only: a directory with just pytorch_model.bin is
refused (reading it needs torch).

Everything that changes the outputs of transformers' M2M100ForConditionalGeneration and its
tokenizers is carried into the metadata (docs/format.md):
- architecture: pre-norm layers with a final LayerNorm after each stack, LayerNorm epsilon 1e-5
  (nn.LayerNorm's default), biases on every linear map and none on the output projection,
  `scale_embedding`, the activation, and the sinusoidal positions of
  M2M100SinusoidalPositionalEmbedding: `halves` layout (sines then cosines), `tensor2tensor`
  frequencies (`exp(-i * log(10000) / (d/2 - 1))`), the first token at position
  `pad_token_id + 1`. transformers grows its table past `max_position_embeddings`; our limit is
  `max_position_embeddings` tokens per side;
- weights: the embeddings and the output projection are tied as transformers 5 loads them (see
  marian.py's `_embeddings`);
- tokens: ids as the tokenizers build them. M2M100: pieces through vocab.json, the codes
  `__xx__` at `len(vocab.json) + i` for the i-th language of its list; NLLB: SentencePiece ids
  shifted by fairseq's offset (`<s> <pad> </s> <unk>` = 0..3, piece i >= 3 at i + 1), the codes
  (`eng_Latn`, ...) at the ids tokenizer.json gives them. The source is
  `[source code] pieces [eos]` (NLLB's `legacy_behaviour`: `pieces [eos] [source code]`), the
  decoder starts with `decoder_start_token_id` (eos) and the target code is forced as the first
  target token (transformers' `forced_bos_token_id`);
- generation defaults: as for Marian (marian.py), with the length limit counting the tokens
  after the forced target code: `max_new_tokens - 1`, else `max_length - 2`.

M2M100 checkpoints record `early_stopping=True` for beam search, which our search does not
implement (docs/decoding.md): the converter warns that it is ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from pytransformer.convert._common import ConversionError, converter_name, read_json
from pytransformer.convert.marian import (_ACTIVATIONS, _LAYER_NORM_PARAMS, _config_id,
                                          _config_int, _embeddings, _generation_metadata,
                                          _layer_tensors, _read_bytes, _read_optional_json,
                                          _read_required_json, _read_safetensors_checkpoint,
                                          _special_token, _strip_prefix, _take)

# transformers' M2M100Tokenizer language lists (FAIRSEQ_LANGUAGE_CODES): the i-th code's token
# `__xx__` has id len(vocab.json) + i.
M2M100_LANGUAGES = {
    "m2m100": ["af", "am", "ar", "ast", "az", "ba", "be", "bg", "bn", "br", "bs", "ca", "ceb",
               "cs", "cy", "da", "de", "el", "en", "es", "et", "fa", "ff", "fi", "fr", "fy",
               "ga", "gd", "gl", "gu", "ha", "he", "hi", "hr", "ht", "hu", "hy", "id", "ig",
               "ilo", "is", "it", "ja", "jv", "ka", "kk", "km", "kn", "ko", "lb", "lg", "ln",
               "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "my", "ne", "nl", "no",
               "ns", "oc", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sd", "si", "sk", "sl",
               "so", "sq", "sr", "ss", "su", "sv", "sw", "ta", "th", "tl", "tn", "tr", "uk",
               "ur", "uz", "vi", "wo", "xh", "yi", "yo", "zh", "zu"],
    "wmt21": ["en", "ha", "is", "ja", "cs", "ru", "zh", "de"],
}
# NLLB-200's codes: ISO 639-3 language, underscore, ISO 15924 script (`zho_Hans`).
_NLLB_CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
# fairseq's dictionary puts these first; NllbTokenizer maps SentencePiece piece i >= 3 to i + 1.
_FAIRSEQ_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>"]
_MODEL_TYPES = ("m2m_100", "m2m100")
_SENTENCEPIECE_FILE = "sentencepiece.bpe.model"


def convert_m2m100(model_dir: str | Path, output_path: str | Path,
                   quantize: str | None = None) -> Path:
    """Converts the M2M100 or NLLB-200 model in `model_dir` into the pytransformer file
    `output_path`.

    quantize: None keeps float32 weights; other values are passed to
    pytransformer.format.write_model (e.g. "int8", "f16").
    Returns the output path. Raises ConversionError (a ValueError) naming the file at fault.
    """
    from pytransformer.format import write_model

    metadata, tensors = load_m2m100(model_dir)
    output_path = Path(output_path)
    write_model(output_path, metadata, tensors, quantize=quantize)
    return output_path


def load_m2m100(model_dir: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The metadata and tensors (our names, float32) of the model in `model_dir`."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ConversionError(f"{model_dir}: not a directory")
    config = _read_required_json(model_dir / "config.json")
    if not isinstance(config, dict):
        raise ConversionError(f"{model_dir / 'config.json'}: expected a JSON object")
    model_type = config.get("model_type")
    if model_type not in _MODEL_TYPES:
        raise ConversionError(f"{model_dir / 'config.json'}: model_type is {model_type!r}, "
                              "expected 'm2m_100' (M2M100, NLLB-200)")
    generation_config = _read_optional_json(model_dir / "generation_config.json")
    if not generation_config:
        # Older checkpoints keep the generation settings in config.json.
        generation_config = config

    metadata = _model_metadata(config, model_dir)
    metadata.update(_vocabulary_metadata(config, metadata["model.source_vocab_size"], model_dir))
    metadata.update(_generation(generation_config, config, metadata))
    metadata.update({
        "general.architecture": "transformer-seq2seq",
        "general.name": model_dir.resolve().name,
        "general.source": str(config.get("_name_or_path") or model_dir.resolve()),
        "general.converter": converter_name("m2m100"),
    })
    tensors = _tensors(_read_state_dict(model_dir), config, metadata, model_dir)
    return metadata, tensors


# ---------------------------------------------------------------------------------------------
# config.json -> model.*


def _model_metadata(config: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    activation_name = config.get("activation_function", "relu")
    if activation_name not in _ACTIVATIONS:
        raise ConversionError(f"{path}: activation_function {activation_name!r} is not supported "
                              f"(supported: {', '.join(_ACTIVATIONS)})")
    d_model = _config_int(config, "d_model", path, 1024)
    if d_model % 2 or d_model < 4:
        # transformers pads an odd width with a zero column; our positions pair sines and
        # cosines (docs/format.md).
        raise ConversionError(f"{path}: d_model {d_model} is not supported (sinusoidal "
                              "positions need an even d_model of at least 4)")
    vocab_size = _config_int(config, "vocab_size", path, 128112)
    pad_id = _config_id(config, "pad_token_id", 1, vocab_size, model_dir)
    return {
        "model.d_model": d_model,
        "model.encoder_layers": _config_int(config, "encoder_layers", path, 12),
        "model.decoder_layers": _config_int(config, "decoder_layers", path, 12),
        "model.encoder_heads": _config_int(config, "encoder_attention_heads", path, 16),
        "model.decoder_heads": _config_int(config, "decoder_attention_heads", path, 16),
        "model.encoder_ffn_dim": _config_int(config, "encoder_ffn_dim", path, 4096),
        "model.decoder_ffn_dim": _config_int(config, "decoder_ffn_dim", path, 4096),
        "model.activation": _ACTIVATIONS[activation_name],
        "model.pre_norm": True,
        "model.layer_norm_epsilon": 1e-5,
        "model.scale_embedding": bool(config.get("scale_embedding", True)),
        "model.embedding_norm": False,
        "model.position_layout": "halves",
        "model.position_frequencies": "tensor2tensor",
        # create_position_ids_from_input_ids numbers tokens from padding_idx + 1.
        "model.position_offset": pad_id + 1,
        "model.max_positions": _config_int(config, "max_position_embeddings", path, 1024),
        "model.source_vocab_size": vocab_size,
        "model.target_vocab_size": vocab_size,
        "model.linear_bias": True,
        "model.output_bias": False,
    }


# ---------------------------------------------------------------------------------------------
# SentencePiece model, vocabularies, language codes -> vocab.*, tokenizer.*, tokens.*


def _vocabulary_metadata(config: dict[str, Any], vocab_size: int,
                         model_dir: Path) -> dict[str, Any]:
    tokenizer_config = _read_optional_json(model_dir / "tokenizer_config.json")
    style = _tokenizer_style(tokenizer_config, model_dir)
    if not (model_dir / _SENTENCEPIECE_FILE).is_file():
        raise ConversionError(
            f"{model_dir / _SENTENCEPIECE_FILE}: missing (the tokenizer's SentencePiece model; "
            "transformers 5 saves an NllbTokenizer without it: copy it from the original "
            "model, e.g. facebook/nllb-200-distilled-600M)")
    spm = _read_bytes(model_dir / _SENTENCEPIECE_FILE)
    if style == "m2m100":
        encoder, codes = _m2m100_vocabulary(tokenizer_config, model_dir)
    else:
        encoder, codes = _nllb_vocabulary(spm, tokenizer_config, model_dir)
    vocab = _vocab_list(encoder, vocab_size, model_dir, style)

    def token_id(key: str, default: str) -> int:
        token = _special_token(tokenizer_config, key, default)
        if token not in encoder:
            raise ConversionError(f"{model_dir}: the tokenizer's {key} {token!r} is not in its "
                                  "vocabulary")
        return encoder[token]

    unk_id = token_id("unk_token", "<unk>")
    eos_id = _config_id(config, "eos_token_id", 2, vocab_size, model_dir)
    if token_id("eos_token", "</s>") != eos_id:
        raise ConversionError(f"{model_dir}: the tokenizer's eos token has id "
                              f"{token_id('eos_token', '</s>')}, config.json's eos_token_id is "
                              f"{eos_id}")
    legacy = bool(tokenizer_config.get("legacy_behaviour", False)) and style == "nllb"
    metadata: dict[str, Any] = {
        "vocab.source": vocab,
        "vocab.target": vocab,
        "tokenizer.type": "sentencepiece",
        "tokenizer.source_model": spm,
        "tokenizer.target_model": spm,
        # Both tokenizers end the source with eos (then NLLB's legacy order adds the code).
        "tokenizer.add_source_eos": True,
        "tokenizer.language_codes": codes,
        "tokens.source_eos_id": eos_id,
        "tokens.unk_id": unk_id,
        "tokens.source_unk_id": unk_id,
        "tokens.pad_id": _config_id(config, "pad_token_id", 1, vocab_size, model_dir),
        "tokens.eos_id": eos_id,
        "tokens.decoder_start_id": _config_id(config, "decoder_start_token_id", 2, vocab_size,
                                              model_dir),
    }
    if legacy:
        metadata["tokenizer.source_language_last"] = True
    return metadata


def _tokenizer_style(tokenizer_config: dict[str, Any], model_dir: Path) -> str:
    """'m2m100' or 'nllb', from tokenizer_config.json's tokenizer_class, else from the files."""
    name = str(tokenizer_config.get("tokenizer_class") or "")
    if name.startswith("M2M100"):
        return "m2m100"
    if name.startswith("Nllb"):
        return "nllb"
    if name:
        raise ConversionError(f"{model_dir / 'tokenizer_config.json'}: tokenizer_class {name!r} "
                              "is not supported (M2M100Tokenizer or NllbTokenizer)")
    if (model_dir / "vocab.json").is_file():
        return "m2m100"
    if (model_dir / "tokenizer.json").is_file():
        return "nllb"
    raise ConversionError(f"{model_dir}: no tokenizer: expected vocab.json (M2M100) or "
                          f"tokenizer.json (NLLB) beside {_SENTENCEPIECE_FILE}")


def _m2m100_vocabulary(tokenizer_config: dict[str, Any], model_dir: Path
                       ) -> tuple[dict[str, int], list[str]]:
    """M2M100Tokenizer's ids: vocab.json, then `__xx__` for each code of its language list."""
    path = model_dir / "vocab.json"
    encoder = _read_required_json(path)
    if not isinstance(encoder, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool)
            for k, v in encoder.items()):
        raise ConversionError(f"{path}: expected a JSON object mapping pieces to integer ids")
    list_name = tokenizer_config.get("language_codes", "m2m100")
    if list_name not in M2M100_LANGUAGES:
        raise ConversionError(f"{model_dir / 'tokenizer_config.json'}: language_codes "
                              f"{list_name!r} is not one of {', '.join(M2M100_LANGUAGES)}")
    encoder = dict(encoder)
    size = len(encoder)
    codes = [f"__{code}__" for code in M2M100_LANGUAGES[list_name]]
    for index, code in enumerate(codes):
        encoder[code] = size + index
    return encoder, codes


def _nllb_vocabulary(spm: bytes, tokenizer_config: dict[str, Any], model_dir: Path
                     ) -> tuple[dict[str, int], list[str]]:
    """NllbTokenizer's ids: fairseq's offset over the SentencePiece pieces, and the added
    tokens (language codes, <mask>) where tokenizer.json or tokenizer_config.json put them."""
    import sentencepiece

    processor = sentencepiece.SentencePieceProcessor()
    try:
        processor.LoadFromSerializedProto(spm)
    except (RuntimeError, OSError) as error:
        raise ConversionError(f"{model_dir / _SENTENCEPIECE_FILE}: not a SentencePiece model: "
                              f"{error}") from None
    encoder = {piece: index for index, piece in enumerate(_FAIRSEQ_SPECIALS)}
    for index in range(3, processor.get_piece_size()):
        encoder.setdefault(processor.id_to_piece(index), index + 1)

    added: dict[str, int] = {}
    tokenizer_json = model_dir / "tokenizer.json"
    if tokenizer_json.is_file():
        document = read_json(tokenizer_json)
        vocab = (document.get("model") or {}).get("vocab") if isinstance(document, dict) else None
        if isinstance(vocab, dict):
            for piece, index in vocab.items():
                if encoder.get(piece) != index:
                    raise ConversionError(
                        f"{tokenizer_json}: piece {piece!r} has id {index}, not "
                        f"{encoder.get(piece)} as {_SENTENCEPIECE_FILE} with fairseq's offset "
                        "gives it: the two files do not belong together")
        for token in document.get("added_tokens") or [] if isinstance(document, dict) else []:
            if isinstance(token, dict) and isinstance(token.get("content"), str):
                added[token["content"]] = int(token["id"])
    for index, token in (tokenizer_config.get("added_tokens_decoder") or {}).items():
        content = token.get("content") if isinstance(token, dict) else None
        if isinstance(content, str):
            added.setdefault(content, int(index))
    for piece, index in added.items():
        if encoder.get(piece, index) != index:
            raise ConversionError(f"{model_dir}: added token {piece!r} has id {index}, but "
                                  f"{_SENTENCEPIECE_FILE} gives it {encoder[piece]}")
        encoder[piece] = index

    named = tokenizer_config.get("extra_special_tokens") or \
        tokenizer_config.get("additional_special_tokens")
    if isinstance(named, list) and named:
        names = [token.get("content") if isinstance(token, dict) else token for token in named]
        codes = [name for name in names if isinstance(name, str) and name in added]
    else:
        codes = sorted((piece for piece in added if _NLLB_CODE.match(piece)), key=added.get)
    if not codes:
        raise ConversionError(f"{model_dir}: no language codes (eng_Latn, ...) among the "
                              "tokenizer's added tokens: expected them in tokenizer.json "
                              "(added_tokens) or tokenizer_config.json (added_tokens_decoder)")
    return encoder, codes


def _vocab_list(encoder: dict[str, int], size: int, model_dir: Path, style: str) -> list[str]:
    """id -> piece for ids 0..size-1. Ids no token names (M2M100's `madeupword`s, the padding
    of NLLB's embeddings) get an empty piece, which the tokenizer never produces."""
    pieces = [""] * size
    for piece, index in encoder.items():
        if not 0 <= index < size:
            raise ConversionError(f"{model_dir}: the {style} tokenizer gives {piece!r} id "
                                  f"{index}, outside the model's vocabulary of {size} "
                                  "(config.json vocab_size)")
        pieces[index] = piece
    return pieces


# ---------------------------------------------------------------------------------------------
# generation_config.json -> generation.*


def _generation(generation: dict[str, Any], config: dict[str, Any],
                metadata: dict[str, Any]) -> dict[str, Any]:
    # The target language is chosen per request and forced as a target prefix: a
    # forced_bos_token_id recorded in the checkpoint is that, not a setting to warn about.
    recorded = {key: value for key, value in generation.items() if key != "forced_bos_token_id"}
    defaults = _generation_metadata(recorded, config, metadata)
    # transformers counts the forced language code as a generated token; our max_length counts
    # the tokens after the prefix, which must fit max_positions with it.
    max_length = min(defaults["generation.max_length"] - 1, metadata["model.max_positions"] - 1)
    defaults["generation.max_length"] = max(1, max_length)
    return defaults


# ---------------------------------------------------------------------------------------------
# weights


def _read_state_dict(model_dir: Path) -> dict[str, np.ndarray]:
    state = _read_safetensors_checkpoint(model_dir)
    if state is not None:
        return state
    if (model_dir / "pytorch_model.bin").is_file():
        raise ConversionError(
            f"{model_dir}: only pytorch_model.bin, which needs torch to read; save the model "
            "as safetensors first (M2M100ForConditionalGeneration.from_pretrained(DIR)"
            ".save_pretrained(DIR, safe_serialization=True))")
    raise ConversionError(f"{model_dir}: no model.safetensors")


def _tensors(state: dict[str, np.ndarray], config: dict[str, Any], metadata: dict[str, Any],
             model_dir: Path) -> dict[str, np.ndarray]:
    # An M2M100Model (no lm_head) names tensors without the "model." prefix.
    state = {_strip_prefix(name): value for name, value in state.items()}
    used: set[str] = set()
    tensors = _layer_tensors(state, metadata, model_dir, used)
    for stack, scope in (("encoder", "enc"), ("decoder", "dec")):
        for param in ("weight", "bias"):
            tensors[f"{scope}.final_norm.{_LAYER_NORM_PARAMS[param]}"] = _take(
                state, f"model.{stack}.layer_norm.{param}", model_dir, used)

    # M2M100 always shares the encoder and decoder embeddings (model.shared).
    enc_embed, dec_embed, out_proj = _embeddings(
        state, {**config, "share_encoder_decoder_embeddings": True}, model_dir, used)
    tensors["enc.embed.weight"] = enc_embed
    tensors["dec.embed.weight"] = dec_embed
    tensors["dec.out_proj.weight"] = out_proj

    # Sinusoidal tables are recomputed from the metadata, as transformers does.
    used.update(name for name in state if name.endswith(("embed_positions.weight",
                                                         "embed_positions.weights")))
    unknown = sorted(set(state) - used)
    if unknown:
        raise ConversionError(f"{model_dir}: unexpected tensors for an M2M100 model "
                              f"(an unsupported variant?): {', '.join(unknown[:8])}")
    return tensors

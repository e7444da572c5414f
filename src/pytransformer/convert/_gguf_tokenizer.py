"""The tokenizer a GGUF file describes in its `tokenizer.ggml.*` metadata, rebuilt in a form this
package runs: a Hugging Face `tokenizers` Tokenizer for byte-level BPE vocabularies
(`tokenizer.ggml.model` = "gpt2"), a SentencePiece model (_sentencepiece_vocab.py) for
SentencePiece ones ("llama").

Byte-level BPE ("gpt2"): `tokens` (id -> token: normal tokens in the byte-level alphabet, added
tokens as their plain text), `merges` ("left right", best first), `token_type` and `pre`, the
name llama.cpp gives the pre-tokenizer (its llama-vocab.cpp maps each name to a list of regular
expressions applied in turn, every match and every gap between matches becoming a piece: what
`tokenizers`' Split with the "isolated" behaviour does). The table below gives, per name, those
expressions; where llama.cpp's are its own adaptations of a Hugging Face tokenizer.json regex
(llama3, qwen2: case-insensitive groups spelled out, the GPT-2 regex's trailing `\\s+` left to
its hand-written splitter) the tokenizer.json original is used. Names not in the table are
refused. Tokens typed CONTROL (3) are added as special tokens and USER_DEFINED (4) as plain
added tokens: both are matched whole in the text before it is split, as llama.cpp does, and
control tokens are dropped when ids are decoded with `skip_special_tokens`. Every token keeps
its GGUF id; two tokens with the same text are refused (llama.cpp refuses them too). There is no
Unicode normalisation, as in llama.cpp (Qwen2's own tokenizer.json applies NFC, so text not in
NFC may split differently from it), and decoding does not clean up spaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytransformer.convert._common import ConversionError

# GGUF token types (llama.cpp's llama_token_type, SentencePiece's piece types).
TOKEN_NORMAL, TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED, TOKEN_BYTE = (
    1, 2, 3, 4, 5, 6)

_GPT2_SPLIT = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


@dataclass(frozen=True)
class PreTokenizer:
    """How llama.cpp splits text for one `tokenizer.ggml.pre`: the regexes in order, whether a
    word found whole in the vocabulary skips the merges, and whether BOS is added by default."""

    splits: tuple[str, ...]
    ignore_merges: bool = False
    add_bos: bool = False


_GPT2 = PreTokenizer((_GPT2_SPLIT,))
_DIGITS_GPT2 = PreTokenizer((r"\p{N}", _GPT2_SPLIT))
_LLAMA3 = PreTokenizer((_LLAMA3_SPLIT,), ignore_merges=True, add_bos=True)
_QWEN2 = PreTokenizer((_QWEN2_SPLIT,))

PRE_TOKENIZERS: dict[str, PreTokenizer] = {
    # llama.cpp's fallback for a missing or unknown name (it warns that quality suffers).
    "default": PreTokenizer((r"[\p{P}\$\+<=>\^~\|]+", _GPT2_SPLIT, r"\p{N}+", r"[0-9][0-9][0-9]")),
    **dict.fromkeys(("gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
                     "jina-v2-de", "a.x-4.0", "mellum", "exaone4", "mpt", "olmo", "jais",
                     "trillion"), _GPT2),
    **dict.fromkeys(("smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
                     "minerva-7b"), _DIGITS_GPT2),
    **dict.fromkeys(("llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                     "midm-2.0", "lfm2", "dbrx", "smaug-bpe"), _LLAMA3),
    **dict.fromkeys(("qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2"), _QWEN2),
    "falcon": PreTokenizer((r"[\p{P}\$\+<=>\^~\|`]+", _GPT2_SPLIT, r"[0-9][0-9][0-9]")),
}

# Tokens that end a turn in the chat formats llama.cpp knows (its end-of-generation list, less
# <|endoftext|> and the like, which end a document rather than a turn).
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>")


# ---------------------------------------------------------------------------------------------
# metadata -> tokenizer


def tokenizer_metadata(gguf: Mapping[str, Any], vocab_size: int, source: str) -> dict[str, Any]:
    """Our `vocab.target`, `tokenizer.*` and `tokens.*` keys (docs/format.md, "Decoder-only
    language models") for the GGUF metadata `gguf`, whose model has `vocab_size` embedding rows.
    Raises ConversionError naming `source` (the file) and the key at fault."""
    kind = gguf.get("tokenizer.ggml.model")
    tokens = token_list(gguf, source)
    if len(tokens) > vocab_size:
        raise ConversionError(f"{source}: tokenizer.ggml.tokens has {len(tokens)} tokens, more "
                              f"than the model's vocabulary of {vocab_size}")
    types = token_types(gguf, len(tokens), source)
    ids = special_ids(gguf, len(tokens), source)
    if kind == "llama":  # llama.cpp's defaults for a SentencePiece vocabulary
        for name, default in (("unk", 0), ("bos", 1), ("eos", 2)):
            if ids[name] is None and default < len(tokens):
                ids[name] = default

    if kind == "gpt2":
        pre = pre_tokenizer(gguf, source)
        tokenizer = byte_level_tokenizer(gguf, source)
        result: dict[str, Any] = {
            "tokenizer.type": "huggingface",
            "tokenizer.target_model": tokenizer.to_str().encode("utf-8"),
            "tokenizer.add_bos": gguf_flag(gguf, "tokenizer.ggml.add_bos_token", pre.add_bos,
                                       source),
        }
    elif kind == "llama":
        result = {
            "tokenizer.type": "sentencepiece",
            "tokenizer.target_model": sentencepiece_model(gguf, tokens, types, ids, source),
            "tokenizer.add_bos": gguf_flag(gguf, "tokenizer.ggml.add_bos_token", True, source),
        }
    else:
        raise ConversionError(f"{source}: tokenizer.ggml.model is {kind!r}; supported: 'gpt2' "
                              "(byte-level BPE) and 'llama' (SentencePiece)")
    if gguf_flag(gguf, "tokenizer.ggml.add_eos_token", False, source):
        raise ConversionError(f"{source}: tokenizer.ggml.add_eos_token is true: prompts that end "
                              "with EOS are not supported")

    if ids["eos"] is None:
        raise ConversionError(f"{source}: tokenizer.ggml.eos_token_id is missing")
    result["tokens.eos_id"] = ids["eos"]
    result["tokens.bos_id"] = ids["bos"] if ids["bos"] is not None else ids["eos"]
    if ids["unk"] is not None:
        result["tokens.unk_id"] = ids["unk"]
    if ids["pad"] is not None:
        result["tokens.pad_id"] = ids["pad"]
    stop_ids = end_of_turn_ids(tokens, types, ids)
    if stop_ids:
        result["tokens.stop_ids"] = stop_ids

    result["vocab.target"] = tokens + [f"<unused{index}>"
                                       for index in range(len(tokens), vocab_size)]
    template = gguf.get("tokenizer.chat_template")
    if template is not None:
        if not isinstance(template, str) or _has_surrogates(template):
            raise ConversionError(f"{source}: tokenizer.chat_template must be a UTF-8 string")
        result["tokenizer.chat_template"] = template
    return result


def byte_level_tokenizer(gguf: Mapping[str, Any], source: str) -> Any:
    """The `tokenizers.Tokenizer` of a "gpt2" (byte-level BPE) GGUF vocabulary."""
    try:
        from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    except ImportError:
        raise ConversionError(f"{source}: building its tokenizer needs the tokenizers package "
                              "(pip install tokenizers)") from None
    tokens = token_list(gguf, source)
    types = token_types(gguf, len(tokens), source)
    pre = pre_tokenizer(gguf, source)
    merges = _merges(gguf, source)

    vocab: dict[str, int] = {}
    for index, token in enumerate(tokens):
        if token in vocab:
            raise ConversionError(f"{source}: tokenizer.ggml.tokens has {token!r} at ids "
                                  f"{vocab[token]} and {index}")
        vocab[token] = index
    # ignore_merges (tokenizers >= 0.19) only where the pre-tokenizer needs it.
    options = {"ignore_merges": True} if pre.ignore_merges else {}
    try:
        bpe = models.BPE(vocab=vocab, merges=merges, **options)
    except TypeError:
        raise ConversionError(f"{source}: tokenizer.ggml.pre {gguf.get('tokenizer.ggml.pre')!r} "
                              "needs tokenizers >= 0.19 (BPE ignore_merges)") from None
    except Exception as error:  # tokenizers raises plain Exception
        raise ConversionError(f"{source}: tokenizer.ggml.merges do not fit the vocabulary: "
                              f"{error}") from None
    tokenizer = Tokenizer(bpe)
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(Regex(split), behavior="isolated") for split in pre.splits]
        + [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    # Ids come from the vocabulary, which holds every added token's text.
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False)
                                  for token, kind in zip(tokens, types)
                                  if kind == TOKEN_CONTROL])
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False)
                          for token, kind in zip(tokens, types) if kind == TOKEN_USER_DEFINED])
    if tokenizer.get_vocab_size(with_added_tokens=True) != len(tokens):
        raise ConversionError(f"{source}: the tokenizer built from tokenizer.ggml.tokens has "
                              f"{tokenizer.get_vocab_size(with_added_tokens=True)} tokens, not "
                              f"{len(tokens)}")
    return tokenizer


def sentencepiece_model(gguf: Mapping[str, Any], tokens: list[str], types: list[int],
                        ids: Mapping[str, int | None], source: str) -> bytes:
    """The serialized SentencePiece model of a "llama" (SentencePiece) GGUF vocabulary."""
    from pytransformer.convert._sentencepiece_vocab import build_sentencepiece_model

    if not gguf_flag(gguf, "tokenizer.ggml.add_space_prefix", True, source):
        raise ConversionError(f"{source}: tokenizer.ggml.add_space_prefix is false: SentencePiece "
                              "vocabularies without the dummy prefix are not supported")
    scores = gguf.get("tokenizer.ggml.scores")
    if not isinstance(scores, np.ndarray) or scores.dtype.kind != "f" \
            or scores.shape != (len(tokens),):
        raise ConversionError(f"{source}: tokenizer.ggml.scores must be {len(tokens)} floats "
                              "(one per token) for a SentencePiece vocabulary")
    unk, bos, eos = ids["unk"], ids["bos"], ids["eos"]
    if unk is None or bos is None or eos is None:
        raise ConversionError(f"{source}: a SentencePiece vocabulary needs unknown, bos and eos "
                              "tokens (tokenizer.ggml.unknown_token_id, bos_token_id, "
                              "eos_token_id)")
    # Padding is only a SentencePiece piece of its own when it is a distinct control token
    # (GGUF files often point it at unk or eos).
    pad = ids["pad"]
    if pad is None or pad in (unk, bos, eos) or types[pad] != TOKEN_CONTROL:
        pad = -1
    pieces_types = [TOKEN_NORMAL if kind == 0 else kind for kind in types]
    try:
        return build_sentencepiece_model(
            tokens, [float(score) for score in scores], pieces_types, unk_id=unk, bos_id=bos,
            eos_id=eos, pad_id=pad, byte_fallback=TOKEN_BYTE in pieces_types, source=source)
    except ImportError:
        raise ConversionError(f"{source}: building its tokenizer needs the sentencepiece "
                              "package (pip install sentencepiece)") from None


# ---------------------------------------------------------------------------------------------
# metadata fields


def token_list(gguf: Mapping[str, Any], source: str) -> list[str]:
    """tokenizer.ggml.tokens, an empty token named as llama.cpp names it ([EMPTY_{id}])."""
    tokens = gguf.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) for t in tokens):
        raise ConversionError(f"{source}: tokenizer.ggml.tokens must be a non-empty list of "
                              "strings")
    result = []
    for index, token in enumerate(tokens):
        if _has_surrogates(token):
            raise ConversionError(f"{source}: tokenizer.ggml.tokens[{index}] is not valid UTF-8")
        result.append(token or f"[EMPTY_{index}]")
    return result


def token_types(gguf: Mapping[str, Any], count: int, source: str) -> list[int]:
    """tokenizer.ggml.token_type (all NORMAL where the file has none)."""
    types = gguf.get("tokenizer.ggml.token_type")
    if types is None:
        return [TOKEN_NORMAL] * count
    if not isinstance(types, np.ndarray) or types.dtype.kind not in "iu" \
            or types.shape != (count,):
        raise ConversionError(f"{source}: tokenizer.ggml.token_type must be {count} integers "
                              "(one per token)")
    if count and (types.min() < 0 or types.max() > TOKEN_BYTE):
        raise ConversionError(f"{source}: tokenizer.ggml.token_type holds values outside 0..6")
    return [int(kind) for kind in types]


def special_ids(gguf: Mapping[str, Any], count: int, source: str) -> dict[str, int | None]:
    """bos, eos, unk, pad, eot, eom: the `tokenizer.ggml.*_token_id` ids (None when absent)."""
    keys = {"bos": "bos_token_id", "eos": "eos_token_id", "unk": "unknown_token_id",
            "pad": "padding_token_id", "eot": "eot_token_id", "eom": "eom_token_id"}
    result: dict[str, int | None] = {}
    for name, key in keys.items():
        value = gguf.get(f"tokenizer.ggml.{key}")
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value < count):
            raise ConversionError(f"{source}: tokenizer.ggml.{key} must be a token id below "
                                  f"{count}, got {value!r}")
        result[name] = value
    return result


def end_of_turn_ids(tokens: Sequence[str], types: Sequence[int],
                    ids: Mapping[str, int | None]) -> list[int]:
    """Ids besides eos that end generation: eot and eom where the file names them, and the
    chat formats' end-of-turn tokens found in the vocabulary as control or added tokens."""
    found = [ids["eot"], ids["eom"]]
    found += [index for index, (token, kind) in enumerate(zip(tokens, types))
              if token in END_OF_TURN_TOKENS and kind in (TOKEN_CONTROL, TOKEN_USER_DEFINED)]
    result: list[int] = []
    for index in found:
        if index is not None and index != ids["eos"] and index not in result:
            result.append(index)
    return result


def pre_tokenizer(gguf: Mapping[str, Any], source: str) -> PreTokenizer:
    name = gguf.get("tokenizer.ggml.pre", "default")
    if name not in PRE_TOKENIZERS:
        raise ConversionError(f"{source}: tokenizer.ggml.pre {name!r} is not supported "
                              f"(supported: {', '.join(sorted(PRE_TOKENIZERS))})")
    return PRE_TOKENIZERS[name]


def _merges(gguf: Mapping[str, Any], source: str) -> list[tuple[str, str]]:
    merges = gguf.get("tokenizer.ggml.merges")
    if not isinstance(merges, list) or not all(isinstance(m, str) for m in merges):
        raise ConversionError(f"{source}: tokenizer.ggml.merges must be a list of strings (a "
                              "byte-level BPE vocabulary needs its merges)")
    result = []
    for index, merge in enumerate(merges):
        # As llama.cpp splits it: at the first space after the first character.
        cut = merge.find(" ", 1)
        if cut < 0 or _has_surrogates(merge):
            raise ConversionError(f"{source}: tokenizer.ggml.merges[{index}] is {merge!r}, not "
                                  "two tokens separated by a space")
        result.append((merge[:cut], merge[cut + 1:]))
    return result


def gguf_flag(gguf: Mapping[str, Any], key: str, default: bool, source: str) -> bool:
    value = gguf.get(key, default)
    if not isinstance(value, bool):
        raise ConversionError(f"{source}: {key} must be a bool, got {value!r}")
    return value


def _has_surrogates(text: str) -> bool:
    """Whether the reader kept undecodable bytes as surrogate escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

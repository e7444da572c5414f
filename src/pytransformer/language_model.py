"""The language-model API: LanguageModel, Completion and TextTokenizer.

A LanguageModel loads one decoder-only model file (general.architecture = llama: converted from
GGUF, Hugging Face Llama / Qwen2 / SmolLM directories or llama2.c checkpoints) into the C++
core, which runs the prompt as matrices at once and then one cached step per token
(csrc/models/llama_model.h). Text becomes ids with the tokenizer the file embeds: a
SentencePiece model (`tokenizer.type = sentencepiece`) or a Hugging Face `tokenizers` JSON
(`huggingface`); conversations become a prompt through the file's chat template, rendered with
jinja2 as transformers renders it (`apply_chat_template`).

Generation stops at the model's end-of-sequence or end-of-turn tokens (tokens.eos_id,
tokens.stop_ids), after `max_new_tokens`, or when the context (model.max_positions) is full:
max_new_tokens is cut to the room the prompt leaves, and a prompt that leaves none raises
ValueError.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from pytransformer import _core
from pytransformer.model_files import (DEFAULT_GGUF_PRECISION, converted_gguf, is_gguf,
                                       resolve_model)
from pytransformer.devices import cuda_backend, parse_device
from pytransformer.streaming import TokenStream
from pytransformer.tokenizer import check_text


@dataclass(frozen=True)
class Completion:
    """What LanguageModel.complete returns: the generated text and ids (without the end token),
    whether the model ended it itself (False: max_new_tokens or the context stopped it) and the
    prompt's length in tokens."""

    text: str
    tokens: list[int]
    finished: bool
    prompt_tokens: int


class TextTokenizer:
    """A language model's text <-> ids, from the file's metadata. Thread-safe for reading."""

    def __init__(self, metadata: Mapping[str, Any]) -> None:
        self.type = str(metadata["tokenizer.type"])
        self.bos_id = int(metadata["tokens.bos_id"])
        self.eos_id = int(metadata["tokens.eos_id"])
        stop_ids = [int(i) for i in metadata.get("tokens.stop_ids", [])]
        self.end_ids = frozenset([self.eos_id, *stop_ids])
        self.add_bos = bool(metadata["tokenizer.add_bos"])
        self.pieces: list[str] = list(metadata["vocab.target"])
        blob = bytes(metadata["tokenizer.target_model"])
        if self.type == "sentencepiece":
            import sentencepiece

            self._sentencepiece = sentencepiece.SentencePieceProcessor()
            self._sentencepiece.LoadFromSerializedProto(blob)
        elif self.type == "huggingface":
            try:
                from tokenizers import Tokenizer
            except ImportError as error:
                raise ValueError(f"this model's tokenizer needs the tokenizers package ({error})"
                                 ) from None
            self._huggingface = Tokenizer.from_str(blob.decode("utf-8"))
        else:
            raise ValueError(f"tokenizer.type {self.type!r} is not a language model tokenizer")

    def piece(self, token: int) -> str:
        """The vocabulary's piece of `token` (e.g. '<|im_end|>'), as the chat template names it."""
        return self.pieces[token]

    def encode(self, text: str, *, add_bos: bool | None = None) -> list[int]:
        """The ids of `text`, special tokens written in it (chat markup such as <|im_start|>)
        recognised as such; BOS first when add_bos (None: the model's tokenizer.add_bos)."""
        if self.type == "sentencepiece":
            ids = list(self._sentencepiece.encode(text))
        else:
            ids = list(self._huggingface.encode(text, add_special_tokens=False).ids)
        if self.add_bos if add_bos is None else add_bos:
            ids.insert(0, self.bos_id)
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """The text of `ids`, special tokens (BOS, end tokens, chat markup) left out."""
        ids = [int(i) for i in ids]
        if self.type == "sentencepiece":
            return str(self._sentencepiece.decode(ids))
        return str(self._huggingface.decode(ids, skip_special_tokens=True))


class LanguageModel:
    """Generates text with one decoder-only model file. May be shared by threads."""

    def __init__(self, model_path: str | Path, threads: int = 0, device: str = "cpu",
                 gguf_precision: str = DEFAULT_GGUF_PRECISION) -> None:
        """model_path: a .ptm file of a language model, or the name of one in the user models
        directory (pytransformer.resolve_model), or a GGUF file (converted once into a cache:
        model_files.converted_gguf). threads: compute threads, 0 for the default. device:
        "cpu", or "cuda" / "cuda:N" with the optional CUDA backend (docs/cuda.md).
        gguf_precision: what a GGUF file is converted to (model_files.GGUF_CACHE_PRECISIONS:
        "gguf", the default, keeps its Q8_0 / Q4_1 matrices; "f16", "f32", "q8_0", ...).
        Raises ModelNotFoundError, ModelFormatError (not a valid model, or a translation model),
        ConversionError (a GGUF file that cannot be converted), ValueError (a bad argument)."""
        path = resolve_model(model_path)
        if is_gguf(path):
            path, _converted = converted_gguf(path, gguf_precision)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads must be an integer >= 0, got {threads!r}")
        self._path = path
        cuda_index = parse_device(device)
        if cuda_index is None:
            self._model = _core.LanguageModel(str(path), threads)
        else:
            self._model = cuda_backend().load_language_model(str(path), device=cuda_index)
        self._metadata: dict[str, Any] = dict(self._model.file.metadata)
        try:
            self._tokenizer = TextTokenizer(self._metadata)
        except ValueError as error:
            raise _core.ModelFormatError(f"{path}: {error}") from None
        self._context = int(self._metadata["model.max_positions"])

    @property
    def path(self) -> Path:
        return self._path

    @property
    def name(self) -> str:
        return str(self._metadata.get("general.name", self._path.stem))

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._metadata)

    @property
    def tokenizer(self) -> TextTokenizer:
        return self._tokenizer

    @property
    def context_length(self) -> int:
        """Tokens the model can hold: prompt plus generated text (model.max_positions)."""
        return self._context

    @property
    def device(self) -> str:
        return str(self._model.device_description)

    @property
    def chat_template(self) -> str | None:
        template = self._metadata.get("tokenizer.chat_template")
        return str(template) if template else None

    def chat_prompt(self, messages: Sequence[Mapping[str, str]], *,
                    add_generation_prompt: bool = True) -> str:
        """The conversation (dicts with 'role' and 'content') as the model's chat template
        writes it, ending with the assistant's turn opened when add_generation_prompt.
        ValueError when the model has no chat template."""
        template = self.chat_template
        if template is None:
            raise ValueError(f"{self.name} has no chat template (tokenizer.chat_template): "
                             "it is a plain language model; continue text with generate")
        return _render_chat_template(template, messages, add_generation_prompt,
                                     self._special_pieces())

    def chat_ids(self, messages: Sequence[Mapping[str, str]], *,
                 add_generation_prompt: bool = True) -> list[int]:
        """The ids of chat_prompt(messages): the text as the template writes it, special tokens
        included (a template that wants BOS writes it), nothing added, as transformers'
        apply_chat_template(tokenize=True) gives them."""
        text = self.chat_prompt(messages, add_generation_prompt=add_generation_prompt)
        return self._tokenizer.encode(text, add_bos=False)

    def prompt_ids(self, prompt: str | Sequence[int]) -> list[int]:
        """The ids a prompt runs as: text encoded (BOS first where the model wants it), or
        ids as given."""
        if isinstance(prompt, str):
            check_text(prompt)
            return self._tokenizer.encode(prompt)
        return [int(i) for i in prompt]

    def stream(self, prompt: str | Sequence[int], *, max_new_tokens: int | None = None,
               temperature: float = 0.0, top_k: int = 0, top_p: float = 1.0,
               min_p: float = 0.0, repetition_penalty: float = 1.0,
               seed: int | None = 0, beam_size: int = 1) -> TokenStream:
        """The continuation of `prompt` (text, or ids as prompt_ids gives them) in increments as
        tokens are generated: a TokenStream (token_count, finished). temperature 0: greedy (or
        beam search with beam_size > 1); > 0: sampling from softmax(logits / temperature),
        top_k (0: all), top_p (1: all) and min_p (0: all; tokens below min_p times the best
        token's probability are dropped) filters, reproducible for a given seed (None: a
        random one). repetition_penalty: transformers' (1: off; > 1 discourages tokens already
        in the prompt or the output; in beam search on the log-probabilities). max_new_tokens: None for the model's generation.max_length; either is cut
        to what the context leaves after the prompt."""
        ids = self.prompt_ids(prompt)
        if not ids:
            raise ValueError("the prompt is empty (and the model adds no BOS to it)")
        options = self._search_options(len(ids), max_new_tokens, temperature, top_k, top_p,
                                       min_p, seed, beam_size)
        options.repetition_penalty = float(repetition_penalty)
        return TokenStream(self._model, self._tokenizer, ids, options)

    def complete(self, prompt: str | Sequence[int], **options: Any) -> Completion:
        """The whole continuation of `prompt` (options as stream())."""
        ids = self.prompt_ids(prompt)
        stream = self.stream(ids, **options)
        text = "".join(stream)
        return Completion(text, stream.tokens, stream.finished, len(ids))

    def _special_pieces(self) -> dict[str, str]:
        tokenizer = self._tokenizer
        return {"bos_token": tokenizer.piece(tokenizer.bos_id),
                "eos_token": tokenizer.piece(tokenizer.eos_id)}

    def _search_options(self, prompt_length: int, max_new_tokens: int | None,
                        temperature: float, top_k: int, top_p: float, min_p: float,
                        seed: int | None, beam_size: int) -> _core.SearchOptions:
        room = self._context - (prompt_length - 1)
        if room < 1:
            raise ValueError(f"the prompt has {prompt_length} tokens: no room is left in the "
                             f"context of {self._context} tokens")
        options = _core.SearchOptions(self._model)
        wanted = options.max_length if max_new_tokens is None else int(max_new_tokens)
        if wanted < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        options.max_length = min(wanted, room)
        options.beam_size = int(beam_size)
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if temperature > 0:
            if beam_size != 1:
                raise ValueError("sampling (temperature > 0) requires beam_size 1")
            options.sampling = True
            options.temperature = float(temperature)
            options.top_k = int(top_k)
            options.top_p = float(top_p)
            options.min_p = float(min_p)
            options.seed = random.getrandbits(63) if seed is None else int(seed)
        return options


def _render_chat_template(template: str, messages: Sequence[Mapping[str, str]],
                          add_generation_prompt: bool, special: Mapping[str, str]) -> str:
    """Renders a Hugging Face chat template as transformers does: a sandboxed jinja2
    environment with trim_blocks and lstrip_blocks, the loop-control extension, a tojson filter
    and raise_exception()."""
    import json

    from jinja2 import TemplateError
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    def tojson(value: Any, indent: int | None = None) -> str:
        return json.dumps(value, ensure_ascii=False, indent=indent)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=[loopcontrols])
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    try:
        return environment.from_string(template).render(
            messages=[dict(message) for message in messages],
            add_generation_prompt=add_generation_prompt, **special)
    except TemplateError as error:
        raise ValueError(f"the chat template failed: {error}") from None

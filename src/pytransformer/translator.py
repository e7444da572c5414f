"""The public translation API: Translator, Translation, Hypothesis, TranslationStream and
Attention.

A Translator loads one model file (read into memory, its weight matrices repacked for the CPU
kernels, or uploaded to a CUDA GPU with device="cuda"), turns text into ids with the tokenizer
the file embeds, runs the C++ core's search (the GIL is released while it computes) and turns
ids back into text. Options left at None take the defaults recorded in the file (generation.*:
for a converted Hugging Face or CTranslate2 model, that reference's defaults), which the core
resolves into a _core.SearchOptions.

Input rules:
- each text is one model input. Translation models learn from sentence pairs, and given
  several sentences at once may leave some out (the default model translates "I like tea. My
  brother likes coffee. We both like milk." as its first two): split longer text into
  sentences first, as `pytransformer translate` does with each line;
- an empty (or whitespace-only) text gives an empty Translation without running the model, and
  an empty list gives [];
- a text whose ids exceed the model's `max_positions` is truncated to fit (the source EOS and a
  target-language token are kept) and a UserWarning says so;
- NLLB-200 and M2M100 models (converted by pytransformer.convert_m2m100) read the source
  language as well as the target: both are required (source_language, target_language: the
  model's code such as "zho_Hans" / "__zh__", or a short one such as "zh"). The target
  language's code is forced as the first target token, as transformers' forced_bos_token_id
  does, and is left out of the text and the tokens; max_length and min_length count the
  tokens after it;
- text that is not valid Unicode (bytes, or a str holding lone surrogates, which is what
  undecodable input read with errors='surrogateescape' becomes) raises ValueError.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Pattern, Sequence

from pytransformer import _core, model_files
from pytransformer.model_files import (MODEL_ENVIRONMENT_VARIABLE, ModelNotFoundError,
                                       default_model_path, resolve_model, tensor_dtypes)
from pytransformer.devices import cuda_backend, parse_device
from pytransformer.constraints import PROTECTED_PATTERNS, Glossary, required_texts
from pytransformer.languages import describe_languages, target_by_script, writes_without_spaces
from pytransformer.streaming import TokenStream
from pytransformer.tokenizer import Tokenizer, check_text

if TYPE_CHECKING:  # numpy arrives with the attention the core returns; a plain translation
    import numpy as np  # never imports it (issue 17: start-up time)


# What Translator.stream returns (streaming.TokenStream, shared with the language models).
TranslationStream = TokenStream


@dataclass(frozen=True)
class Hypothesis:
    """One candidate translation."""

    text: str
    tokens: list[str]        # target pieces, without the final EOS (and without the forced
                             # target-language code of NLLB-200 / M2M100 models)
    score: float | None      # as the model's reference reports it; None unless return_scores
    finished: bool           # ended with EOS (False: stopped by max_length)


@dataclass(frozen=True)
class Translation:
    """The best hypothesis of one input, and all n-best hypotheses (best first)."""

    text: str
    tokens: list[str]
    score: float | None
    hypotheses: list[Hypothesis] = field(default_factory=list)

    @staticmethod
    def empty() -> Translation:
        return Translation(text="", tokens=[], score=None, hypotheses=[])


@dataclass(frozen=True)
class Attention:
    """Where the decoder looked in the source while writing each piece of one translation."""

    text: str                 # the translation
    source_pieces: list[str]  # what the encoder read, as the vocabulary spells it (language
                              # token, pieces, unknown pieces as the unk piece, source EOS)
    target_pieces: list[str]  # the generated pieces (after the forced target-language code
                              # of NLLB-200 / M2M100 models, which leads), with the final EOS
                              # when the search ended with one
    # float32 [decoder layers, heads, len(target_pieces), len(source_pieces)]: row t holds the
    # cross-attention probabilities (summing to 1 over the source) of the decoder step that
    # produced target_pieces[t].
    weights: np.ndarray


@dataclass(frozen=True)
class Score:
    """How likely the model finds one given translation of a source (Translator.score)."""

    tokens: list[str]       # the target pieces scored, then the end token
    log_probs: list[float]  # natural log-probability of each, over the whole vocabulary

    @property
    def log_prob(self) -> float:
        """The translation's log-probability: the sum over its tokens."""
        return float(sum(self.log_probs))

    @property
    def normalized(self) -> float:
        """The mean log-probability per token (a confidence comparable between translations of
        different lengths, within one model)."""
        return self.log_prob / len(self.log_probs)


# Padded source tokens per decoding sub-batch of a translate() call: small enough that the KV
# cache stays small and the union of a batch's shortlists (Bergamot models) stays close to each
# sentence's list, large enough that the matrix products are compute-bound. A 400-sentence call
# as one batch was slower and held about three times the memory (docs/benchmarks.md).
DEFAULT_MAX_BATCH_TOKENS = 1024


class Translator:
    """Translates with one pytransformer model file.

    Thread-safety: a Translator may be shared by threads; calls run independently.
    """

    def __init__(self, model_path: str | Path | None = None, threads: int = 0,
                 device: str = "cpu", shortlist: bool = True) -> None:
        """model_path: a .ptm file, or the name of one in the user models directory, as the
        CLI's --model takes it (pytransformer.resolve_model); None: the default model
        (pytransformer.default_model_path(): the model $PYTRANSFORMER_MODEL names, else the
        model installed with the package).
        threads: compute threads for the CPU core, 0 for its default.
        device: "cpu", or "cuda" / "cuda:N" to run on CUDA GPU 0 / N with the optional CUDA
        backend (docs/cuda.md); the search and the results are the same.
        shortlist: use the model's lexical shortlist when it has one (pytransformer.shortlist:
        each sentence restricted to the target ids its source ids allow); False: the whole
        vocabulary.

        Raises ModelNotFoundError (a FileNotFoundError) saying what was looked for when no
        model file is named, ModelFormatError (a ValueError) naming the file when it is not a
        valid model, ValueError for a malformed device, and RuntimeError("CUDA requested but
        ...") when a GPU is asked for and the installation has no CUDA backend or the machine no usable driver or device.
        """
        cuda_index = parse_device(device)
        if model_path is None:
            path = default_model_path()
            if path is None:
                raise ModelNotFoundError(
                    f"no default model is installed (expected {model_files.PACKAGED_MODEL_PATH}"
                    f", or a model named by ${MODEL_ENVIRONMENT_VARIABLE}); pass a model file, "
                    "e.g. one made by pytransformer.convert_marian")
        else:
            path = resolve_model(model_path)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ValueError(f"threads must be an integer >= 0, got {threads!r}")
        self._path = path
        if cuda_index is None:
            self._model = _core.Model(str(path), threads)
        else:
            self._model = cuda_backend().load_model(str(path), device=cuda_index)
        model_file = self._model.file  # what the model was built from: no second read
        self._metadata: dict[str, Any] = dict(model_file.metadata)
        self._tensor_dtypes = tensor_dtypes(model_file)
        try:
            self._tokenizer = Tokenizer(self._metadata)
            self._shortlist = None
            if shortlist and "shortlist.targets" in self._metadata:
                from pytransformer.shortlist import Shortlist  # numpy: only where needed
                self._shortlist = Shortlist.from_metadata(self._metadata)
        except ValueError as error:
            raise _core.ModelFormatError(f"{path}: {error}") from None
        self._max_positions = int(self._metadata["model.max_positions"])
        self._target_vocab_size = int(self._metadata["model.target_vocab_size"])

    # -- properties ---------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def device(self) -> str:
        """Where the model runs: "cpu" or "cuda:N"."""
        return self._model.device

    @property
    def metadata(self) -> dict[str, Any]:
        """The file's metadata (docs/format.md), without the embedded tokenizer models."""
        return {key: value for key, value in self._metadata.items()
                if not isinstance(value, bytes)}

    @property
    def target_languages(self) -> list[str]:
        """Target-language tokens a multilingual model accepts (e.g. `>>fra<<`; an NLLB-200 or
        M2M100 model's language codes, e.g. `zho_Hans`, `__zh__`), else []."""
        return list(self._tokenizer.languages)

    @property
    def source_languages(self) -> list[str]:
        """The language codes of a model that reads the source language too (NLLB-200,
        M2M100: then translate() needs source_language), else []."""
        return list(self._tokenizer.language_codes)

    @property
    def max_positions(self) -> int:
        return self._max_positions

    @property
    def tensor_dtypes(self) -> dict[str, int]:
        """How the weights are stored: dtype name ("f32", "f16", "bf16", "int8") -> number of
        tensors (an int8 matrix's per-row scales are f32 tensors of their own)."""
        return dict(self._tensor_dtypes)

    @property
    def tokenizer(self) -> Tokenizer:
        return self._tokenizer

    # -- translation --------------------------------------------------------------------------

    def translate(self, texts: Sequence[str], *, beam_size: int | None = None,
                  max_length: int | None = None, n_best: int = 1, return_scores: bool = False,
                  target_language: str | None = None, length_penalty: float | None = None,
                  min_length: int | None = None, sampling: bool = False,
                  temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int = 0,
                  max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
                  source_language: str | None = None, repetition_penalty: float = 1.0,
                  no_repeat_ngram_size: int | None = None,
                  glossary: Glossary | Mapping[str, str] | None = None,
                  keep: Sequence[str | Pattern[str]] = (),
                  protect: bool = False) -> list[Translation]:
        """Translates each text; returns one Translation per text, in order.

        beam_size, max_length (generated tokens), length_penalty, min_length: None takes the
        model's default. n_best: hypotheses kept per text (<= beam size). sampling: draw tokens
        (beam size 1) with temperature, top_k (0: off), top_p (1: off) from a `seed`.
        target_language: for multilingual models, e.g. "fra" or ">>fra<<"; None chooses it per
        text by pytransformer.languages' script rule, as the CLI does (the en<->zh default model:
        Chinese text into English, any other into Chinese), and raises ValueError for a model
        with several target languages that the rule cannot choose between. A language may be
        named by any ISO 639 form of its code ("fr" for ">>fra<<", "zh" for "zho_Hans").
        source_language: the language of the texts, for models that read it (NLLB-200,
        M2M100: required there, ValueError without it; see source_languages); ignored by other
        models. max_batch_tokens: padded source tokens per sub-batch of the texts, sorted by
        length (0: all in one; the results are the same either way). repetition_penalty
        (1: off) and no_repeat_ngram_size (None: the model's default, 0: off): repetition
        controls as the model's search convention defines them (docs/decoding.md).
        glossary (source term -> target term; pytransformer.constraints.Glossary), keep
        (regular expressions) and protect (the built-in patterns of
        pytransformer.constraints.PROTECTED_PATTERNS: URLs, e-mail addresses, placeholders,
        numbers): a text's translation holds the target term of each glossary term in it and
        each span the patterns match, as given (lexically constrained beam search,
        docs/decoding.md, *Constraints*; texts with none are translated as without them).
        """
        texts = _as_text_list(texts)
        pieces = [self._tokenizer.source_pieces(text) if text.strip() else None
                  for text in texts]
        options = self._search_options(
            beam_size, max_length, n_best, length_penalty, min_length, sampling, temperature,
            top_k, top_p, seed, max_batch_tokens, repetition_penalty, no_repeat_ngram_size)
        constraints = self._constraints(texts, pieces, target_language, glossary, keep, protect,
                                        options)
        return self._translate_pieces(pieces, target_language, source_language, options,
                                      return_scores, constraints)

    def _constraints(self, texts: list[str], pieces: list[list[str] | None],
                     target_language: str | None,
                     glossary: Glossary | Mapping[str, str] | None,
                     keep: Sequence[str | Pattern[str]], protect: bool,
                     options: _core.SearchOptions) -> list[list[list[list[int]]]] | None:
        """Per text translated (a non-empty one), the constraints its translation must meet
        (each the forms of one required text, Tokenizer.constraint_forms); None when no text
        has any. Into a language written with spaces they are whole words: `options` gets
        the word-continuation pieces and which sentences they apply to."""
        if glossary is None and not keep and not protect:
            return None
        if glossary is not None and not isinstance(glossary, Glossary):
            glossary = Glossary.from_mapping(glossary)
        patterns = list(keep) + (list(PROTECTED_PATTERNS.values()) if protect else [])
        found, whole_words = [], []
        for text, sentence in zip(texts, pieces):
            if sentence is None:
                continue
            target = self._target_for(text, target_language)
            spaced = target is None or not writes_without_spaces(target)
            found.append([self._tokenizer.constraint_forms(required, spaced)
                          for required in required_texts(text, glossary, patterns)])
            whole_words.append(int(spaced))
        if not any(found):
            return None
        options.word_continuations = self._tokenizer.word_continuation_ids
        options.whole_words = whole_words
        return found

    def translate_tokens(self, pieces: Sequence[Sequence[str]], *,
                         beam_size: int | None = None, max_length: int | None = None,
                         n_best: int = 1, return_scores: bool = False,
                         target_language: str | None = None,
                         length_penalty: float | None = None, min_length: int | None = None,
                         sampling: bool = False, temperature: float = 1.0, top_k: int = 0,
                         top_p: float = 1.0, seed: int = 0,
                         max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
                         source_language: str | None = None, repetition_penalty: float = 1.0,
                         no_repeat_ngram_size: int | None = None) -> list[Translation]:
        """Like translate() for pre-tokenized input: one list of source pieces per sentence
        (the model's EOS and language token are still added as the model requires)."""
        if isinstance(pieces, (str, bytes)):
            raise TypeError("pieces must be a list of lists of str")
        checked: list[list[str] | None] = []
        for sentence in pieces:
            if isinstance(sentence, (str, bytes)):
                raise TypeError("pieces must be a list of lists of str, got a list of str")
            sentence = list(sentence)
            for piece in sentence:
                check_text(piece)
            checked.append(sentence if sentence else None)
        return self._translate_pieces(checked, target_language, source_language,
                                      self._search_options(
            beam_size, max_length, n_best, length_penalty, min_length, sampling, temperature,
            top_k, top_p, seed, max_batch_tokens, repetition_penalty, no_repeat_ngram_size),
            return_scores)

    def stream(self, text: str, *, beam_size: int | None = 1, max_length: int | None = None,
               target_language: str | None = None, length_penalty: float | None = None,
               min_length: int | None = None, sampling: bool = False,
               temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
               seed: int = 0, source_language: str | None = None) -> TranslationStream:
        """The translation of `text` in increments as tokens are decoded: an iterator of str
        whose concatenation equals translate([text], same options)[0].text, and whose
        `token_count` says how many target tokens have been generated so far.

        Tokens arrive one by one with greedy search or sampling (beam_size 1, the default
        here); with a larger beam (None: the model's default) the whole text comes at the end.
        Closing the stream (close(), leaving a `with` block, or a KeyboardInterrupt while
        iterating) stops the generation.
        """
        check_text(text)
        self._check_languages(target_language, source_language)  # now, not while iterating
        options = self._search_options(beam_size, max_length, 1, length_penalty, min_length,
                                       sampling, temperature, top_k, top_p, seed, 0)
        if not text.strip():
            return TranslationStream(self._model, self._tokenizer, None, options)
        ids, prefix = self._source_ids(self._tokenizer.source_pieces(text), target_language,
                                       source_language)
        return TranslationStream(self._model, self._tokenizer, ids, options,
                                 target_prefix=prefix)

    def attention(self, text: str, *, target_language: str | None = None,
                  beam_size: int | None = None, max_length: int | None = None,
                  length_penalty: float | None = None,
                  min_length: int | None = None,
                  source_language: str | None = None) -> Attention:
        """Translates `text` (as translate() with the same options) and returns the decoder's
        cross-attention over the source for each piece of that translation, in every layer and
        head. ValueError for an empty text.
        """
        check_text(text)
        if not text.strip():
            raise ValueError("the text is empty: there is nothing to attend to")
        self._check_languages(target_language, source_language)
        ids, prefix = self._source_ids(self._tokenizer.source_pieces(text), target_language,
                                       source_language)
        options = self._search_options(beam_size, max_length, 1, length_penalty, min_length,
                                       False, 1.0, 0, 1.0, 0, 0)
        tokens, _, finished = _core.generate(
            self._model, [ids], options, target_prefix=[prefix] if prefix else None)[0][0]
        tokenizer = self._tokenizer
        produced = list(tokens) + ([tokenizer.eos_id] if finished else [])
        tokens = tokens[len(prefix):]
        # The decoder reads the start token then each produced token but the last.
        decoder_inputs = [tokenizer.decoder_start_id] + produced[:-1]
        [weights] = self._model.cross_attention([ids], [decoder_inputs])
        return Attention(text=tokenizer.decode(tokens),
                         source_pieces=[tokenizer.source_vocab[i] for i in ids],
                         target_pieces=tokenizer.target_pieces(produced), weights=weights)

    # -- internals ----------------------------------------------------------------------------

    def _check_languages(self, target_language: str | None,
                         source_language: str | None) -> None:
        """ValueError for an unknown target language, or for a missing or unknown source
        language where the model reads it, before any work is done."""
        if target_language is not None:
            self._tokenizer.language_token(target_language)
        if self._tokenizer.needs_source_language:
            self._tokenizer.source_language_token(source_language)

    def score(self, sources: Sequence[str], targets: Sequence[str], *,
              target_language: str | None = None,
              source_language: str | None = None) -> list[Score]:
        """Forced decoding: the log-probability of each target piece of targets[i] (and of the
        end token after them) given sources[i], as CTranslate2's score_batch reports them
        (tests/python/test_translator_score.py). The decoder reads the start token, the
        model's forced target-language code if it has one (not scored) and the target's
        pieces; scores are over the whole vocabulary (no shortlist, no suppressed ids).
        target_language / source_language as for translate(). ValueError for an empty source,
        different list lengths, or a pair longer than the model's positions."""
        sources, targets = _as_text_list(sources), _as_text_list(targets)
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources and {len(targets)} targets: give one "
                             "target per source")
        pieces = [self._target_text_pieces(target) for target in targets]
        return self._score_pieces(sources, pieces, target_language, source_language)

    def confidence(self, sources: Sequence[str], translations: Sequence[Translation], *,
                   target_language: str | None = None,
                   source_language: str | None = None) -> list[float | None]:
        """The confidence of each translation of sources[i]: the mean log-probability per
        token of its pieces and end token (score() of exactly the pieces generated); None for
        an empty translation of an empty source. Comparable within one model only."""
        pairs = [(source, list(translation.tokens)) for source, translation
                 in zip(sources, translations) if source.strip()]
        scores = iter(self._score_pieces([s for s, _ in pairs], [p for _, p in pairs],
                                         target_language, source_language))
        return [next(scores).normalized if source.strip() else None for source in sources]

    def _target_text_pieces(self, text: str) -> list[str]:
        ids = self._tokenizer.target_text_ids(text) if text.strip() else []
        return self._tokenizer.target_pieces(ids)

    def align(self, sources: Sequence[str], targets: Sequence[str], *,
              target_language: str | None = None,
              source_language: str | None = None) -> list[Attention]:
        """Where the decoder looks in sources[i] while reading targets[i], a translation of it
        (forced decoding of its pieces as score() reads them, then the end token; one batch):
        an Attention per pair, its target_pieces the forced target-language code if the model
        has one, the target's pieces and the end token. What markup placement
        (pytransformer.documents) aligns words with. ValueError as for score()."""
        sources, targets = _as_text_list(sources), _as_text_list(targets)
        if len(sources) != len(targets):
            raise ValueError(f"{len(sources)} sources and {len(targets)} targets: give one "
                             "target per source")
        if not sources:
            return []
        pieces = [self._target_text_pieces(target) for target in targets]
        source_ids, decoder_inputs, scored = self._forced_inputs(sources, pieces, target_language,
                                                                 source_language)
        weights = self._model.cross_attention(source_ids, decoder_inputs)
        tokenizer = self._tokenizer
        return [Attention(text=target, source_pieces=[tokenizer.source_vocab[i] for i in ids],
                          target_pieces=tokenizer.target_pieces(inputs[1:] + [tokenizer.eos_id]),
                          weights=rows)
                for target, ids, inputs, rows in zip(targets, source_ids, decoder_inputs, weights)]

    def _forced_inputs(self, sources: list[str], pieces: list[list[str]],
                       target_language: str | None, source_language: str | None
                       ) -> tuple[list[list[int]], list[list[int]], list[tuple[int, list[int]]]]:
        """For forced decoding of pieces[i] after sources[i]: the source ids, the decoder's
        inputs (start token, target-language prefix, the pieces' ids) and, per pair, the
        prefix length and the ids the inputs predict after it (the pieces', then EOS)."""
        self._check_languages(target_language, source_language)
        source_ids, decoder_inputs, scored = [], [], []
        eos = self._tokenizer.eos_id
        for index, (source, target_pieces) in enumerate(zip(sources, pieces)):
            if not source.strip():
                raise ValueError(f"source {index} is empty")
            ids, prefix = self._source_ids(self._tokenizer.source_pieces(source),
                                           target_language, source_language)
            target_ids = [self._tokenizer.target_id(piece) for piece in target_pieces]
            inputs = [self._tokenizer.decoder_start_id] + prefix + target_ids
            if len(inputs) > self._max_positions:
                raise ValueError(f"target {index} has {len(target_ids)} pieces: more than the "
                                 f"model's {self._max_positions} positions allow")
            source_ids.append(ids)
            decoder_inputs.append(inputs)
            scored.append((len(prefix), target_ids + [eos]))
        return source_ids, decoder_inputs, scored

    def _score_pieces(self, sources: list[str], pieces: list[list[str]],
                      target_language: str | None, source_language: str | None) -> list[Score]:
        if not sources:
            return []
        import numpy as np  # only where scores are computed

        source_ids, decoder_inputs, scored = self._forced_inputs(sources, pieces, target_language,
                                                                 source_language)
        logits = self._model.teacher_forced_logits(source_ids, decoder_inputs)
        results = []
        for rows, (skip, ids) in zip(logits, scored):
            rows = np.asarray(rows[skip:], dtype=np.float64)
            shifted = rows - rows.max(axis=1, keepdims=True)
            log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            picked = log_probs[np.arange(len(ids)), ids]
            results.append(Score(tokens=self._tokenizer.target_pieces(ids),
                                 log_probs=[float(value) for value in picked]))
        return results

    def shortlist_from_pairs(self, pairs: Iterable[tuple[str, str]], *,
                             target_language: str | None = None,
                             source_language: str | None = None, always: int = 1000,
                             best: int = 100) -> Any:
        """A lexical shortlist for this model from parallel text (pairs of a source and its
        translation): pytransformer.shortlist.build_shortlist over the source ids this
        translator gives the core (the target language chosen per text as translate() does)
        and the target pieces of the translations. Returns a Shortlist; its metadata() added
        to the model file (pytransformer.format.rewrite_metadata, or the `pytransformer
        shortlist` command) makes translations use it."""
        from pytransformer.shortlist import build_shortlist  # numpy: only where needed

        def source_ids(text: str) -> list[int]:
            return self._source_ids(self._tokenizer.source_pieces(text), target_language,
                                    source_language)[0]

        return build_shortlist(pairs, source_ids, self._tokenizer.target_text_ids,
                               len(self._tokenizer.source_vocab),
                               self._target_vocab_size, always=always, best=best)

    def _target_for(self, text: str, target_language: str | None) -> str | None:
        """target_language, else the one the script rule gives `text` (see translate())."""
        languages = self._tokenizer.languages
        if target_language is not None or not languages:
            return target_language
        chosen = target_by_script(languages, text)
        if chosen is None:
            raise ValueError("this model translates into several languages ("
                             + describe_languages(languages) + "): pass target_language")
        return chosen

    def _source_ids(self, pieces: list[str], target_language: str | None,
                    source_language: str | None) -> tuple[list[int], list[int]]:
        """The source ids of `pieces` and the target prefix (the forced target-language code of
        models with language codes, else [])."""
        target_language = self._target_for("".join(pieces), target_language)
        ids = self._tokenizer.encode_pieces(pieces, target_language, source_language)
        prefix = self._tokenizer.target_prefix(target_language)
        if len(ids) <= self._max_positions:
            return ids, prefix
        warnings.warn(f"input of {len(ids)} tokens exceeds the model's limit of "
                      f"{self._max_positions}: truncated", UserWarning, stacklevel=4)
        keep_end = self._tokenizer.source_suffix_length
        return ids[:self._max_positions - keep_end] + ids[len(ids) - keep_end:], prefix

    def _search_options(self, beam_size: int | None, max_length: int | None, n_best: int,
                        length_penalty: float | None, min_length: int | None, sampling: bool,
                        temperature: float, top_k: int, top_p: float, seed: int,
                        max_batch_tokens: int, repetition_penalty: float = 1.0,
                        no_repeat_ngram_size: int | None = None) -> _core.SearchOptions:
        """The model's defaults (resolved by the core) with the options given; sampling
        without a beam size uses beam size 1."""
        given: dict[str, Any] = {"n_best": n_best, "max_batch_tokens": max_batch_tokens,
                                 "repetition_penalty": float(repetition_penalty)}
        if no_repeat_ngram_size is not None:
            given["no_repeat_ngram_size"] = int(no_repeat_ngram_size)
        # A model's forced target-language code (NLLB / M2M100) is transformers'
        # forced_bos_token_id: it counts in the beams' length normalisation.
        if self._tokenizer.target_prefix_length:
            given["count_prefix"] = True
        for name, value in (("beam_size", beam_size), ("max_length", max_length),
                            ("length_penalty", length_penalty), ("min_length", min_length)):
            if value is not None:
                given[name] = value
        if sampling:
            given.update(sampling=True, temperature=temperature, top_k=top_k, top_p=top_p,
                         seed=seed)
            given.setdefault("beam_size", 1)
        return _core.SearchOptions(self._model, **given)

    def _translate_pieces(self, pieces: list[list[str] | None], target_language: str | None,
                          source_language: str | None, options: _core.SearchOptions,
                          return_scores: bool,
                          constraints: list[list[list[list[int]]]] | None = None
                          ) -> list[Translation]:
        self._check_languages(target_language, source_language)  # fail early on unknown ones
        encoded = [self._source_ids(p, target_language, source_language)
                   for p in pieces if p is not None]
        ids = [source for source, _ in encoded]
        prefixes = [prefix for _, prefix in encoded]
        # The core returns a prefix followed by the generated tokens: the prefix is cut off.
        target_prefix = prefixes if any(prefixes) else None
        results = iter(self._generate(ids, options, target_prefix, constraints) if ids else [])
        prefix_lengths = iter(len(prefix) for prefix in prefixes)
        translations = []
        for sentence in pieces:
            if sentence is None:
                translations.append(Translation.empty())
                continue
            cut = next(prefix_lengths)
            hypotheses = [self._hypothesis(tokens[cut:], score, finished, return_scores)
                          for tokens, score, finished in next(results)]
            best = hypotheses[0]
            translations.append(Translation(text=best.text, tokens=best.tokens,
                                            score=best.score, hypotheses=hypotheses))
        return translations

    def _generate(self, ids: list[list[int]], options: _core.SearchOptions,
                  target_prefix: list[list[int]] | None,
                  constraints: list[list[list[list[int]]]] | None = None) -> list:
        """_core.generate; for a model with a lexical shortlist (pytransformer.shortlist), each
        sentence restricted to its own list (allowed_ids: scores normalised over it, the output
        layer computed for the union of a batch's lists). Marian restricts a whole batch to the
        union of its sentences' lists; per sentence, a translation does not depend on the
        sentences beside it in a call, and equals what Bergamot's engine gives a sentence
        translated alone."""
        allowed = None if self._shortlist is None else [
            self._shortlist.allowed_ids(sentence, self._target_vocab_size).tolist()
            for sentence in ids]
        return _core.generate(self._model, ids, options, target_prefix=target_prefix,
                              allowed_ids=allowed, constraints=constraints)

    def _hypothesis(self, ids: Sequence[int], score: float, finished: bool,
                    return_scores: bool) -> Hypothesis:
        return Hypothesis(text=self._tokenizer.decode(ids),
                          tokens=self._tokenizer.target_pieces(ids),
                          score=float(score) if return_scores else None,
                          finished=bool(finished))


def _as_text_list(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, (str, bytes, bytearray)):
        raise TypeError("texts must be a list of str (wrap a single text in a list)")
    texts = list(texts)
    for text in texts:
        check_text(text)
    return texts

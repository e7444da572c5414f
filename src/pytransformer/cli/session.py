"""A loaded model with the CLI's translation settings, shared by `translate` and `chat`.

Only the public pytransformer API is used here (never the private extension).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytransformer
from pytransformer.cli.console import stderr_console
from pytransformer.cli.errors import CliError
from pytransformer.cli.languages import LanguageChoice, bare, same_language
from pytransformer.cli.model_store import default_model_path, model_for_option
from pytransformer.cli.text import join_sentences, split_sentences

# Sentences per call to Translator.translate: large enough to batch well, small enough for a
# responsive progress bar and for output to flow line by line.
BATCH_SENTENCES = 32
# A text is "in a script the model does not know" when more than this share of its letters
# appear in none of the model's source vocabulary pieces (Arabic for the en<->zh model).
UNKNOWN_LETTERS_SHARE = 0.5
# Line numbers named in one warning before "... (N in all)".
LINES_NAMED = 5


@dataclass
class SentenceResult:
    source: str
    target_language: str | None
    hypotheses: list[str]  # n_best, best first
    scores: list[float | None]  # None unless scores were asked for
    tokens: int  # generated tokens of the best hypothesis
    # Translator.confidence of the best hypothesis, when --min-confidence asked for it.
    confidence: float | None = None
    untranslated: bool = False  # left as its source: the confidence was below the minimum
    source_language: str | None = None  # the code passed to a model that reads it
    detected: Any = None  # pytransformer.detection.Detection, for --json


@dataclass
class LineResult:
    source: str
    sentences: list[SentenceResult] = field(default_factory=list)

    def hypotheses(self, n_best: int) -> list[str]:
        """The line's n-best translations: the i-th hypothesis of every sentence, rejoined."""
        if not self.sentences:
            return [""] * n_best
        return [join_sentences([s.hypotheses[min(i, len(s.hypotheses) - 1)]
                                for s in self.sentences]) for i in range(n_best)]


@dataclass
class InputNotes:
    """What the input holds that the user should hear about before the translations."""

    unknown_script: list[int] = field(default_factory=list)  # line numbers, from 1
    unknown_example: str = ""  # a letter the model does not know
    already_in_target: list[int] = field(default_factory=list)  # lines copied unchanged
    target_language: str = ""  # (bare code) the language those lines are already in


def _lines(numbers: list[int]) -> str:
    """'line 3', 'lines 3, 5 and 9', 'lines 1, 2, 3, 4, 5, ... (12 in all)'."""
    if len(numbers) == 1:
        return f"line {numbers[0]}"
    named = [str(number) for number in numbers[:LINES_NAMED]]
    if len(numbers) > LINES_NAMED:
        return f"lines {', '.join(named)}, ... ({len(numbers)} in all)"
    return f"lines {', '.join(named[:-1])} and {named[-1]}"


def describe_notes(notes: InputNotes, single: bool, option: str = "--to",
                   copied: bool = True) -> list[str]:
    """The warnings for `notes` (single: the input is one text, not numbered lines; copied:
    text already in the target language is copied unchanged, as translate and chat do; explain
    shows what the model makes of it instead)."""
    messages = []
    if notes.unknown_script:
        where = "the text is" if single else (
            _lines(notes.unknown_script) + (" is" if len(notes.unknown_script) == 1 else " are"))
        messages.append(f"{where} mostly in letters this model does not know (e.g. "
                        f"'{notes.unknown_example}'): expect a meaningless translation")
    if notes.already_in_target:
        where = "" if single else f" ({_lines(notes.already_in_target)})"
        outcome = ("is copied unchanged" if copied else
                   "is not something this model translates: expect a meaningless result")
        messages.append(f"text already in {notes.target_language} (by its script), the "
                        f"language {option} asks for, {outcome}{where}")
    return messages


@dataclass
class Settings:
    source_language: str | None = None
    target_language: str | None = None
    beam_size: int | None = None  # None: the model's default
    n_best: int = 1
    max_length: int | None = None
    min_confidence: float | None = None  # below it a sentence is left untranslated
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int | None = None  # None: the model's default
    # What translations must carry as given (pytransformer.constraints): a Glossary, regular
    # expressions, and whether the built-in protected patterns apply.
    glossary: Any = None
    keep: tuple[str, ...] = ()
    protect: bool = False


class _Prefetch(threading.Thread):
    """load_translator(*key) on a thread of its own: the core reads and packs the weights
    without the GIL while the main thread imports and parses the command line."""

    def __init__(self, key: tuple[str | None, int, str, bool]) -> None:
        super().__init__(name="pytransformer-prefetch")
        self.key = key
        self.result: tuple[Any, Path] | None = None

    def run(self) -> None:
        try:
            self.result = _load(*self.key)
        except Exception:  # noqa: BLE001 - the main thread loads again and reports it
            self.result = None


_prefetches: list[_Prefetch] = []


def prefetch_translator(model: str | None, threads: int = 0, device: str = "cpu",
                        shortlist: bool = True) -> None:
    """Starts loading what load_translator(model, threads, device, shortlist) will return, so
    that a cold `translate` overlaps the load (~45 ms for the default model) with parsing its
    options (~60 ms of importing pydantic, typer's). Only a call with the same arguments takes
    it; a failed prefetch is forgotten, and the load it made is repeated where its error is
    reported."""
    prefetch = _Prefetch((model, threads, device, shortlist))
    _prefetches.append(prefetch)
    prefetch.start()


def load_translator(model: str | None, threads: int, device: str = "cpu",
                    shortlist: bool = True) -> tuple[Any, Path]:
    """Loads the model named by --model (None: the default) on --device (with its lexical
    shortlist unless --no-shortlist), or takes the one prefetch_translator loaded with these
    arguments. Returns (translator, path)."""
    key = (model, threads, device, shortlist)
    for prefetch in _prefetches:
        if prefetch.key == key:
            _prefetches.remove(prefetch)
            prefetch.join()
            if prefetch.result is not None:
                return prefetch.result
            break
    return _load(*key)


def _load(model: str | None, threads: int, device: str, shortlist: bool) -> tuple[Any, Path]:
    path = model_for_option(model) if model is not None else default_model_path()
    return pytransformer.Translator(path, threads=threads, device=device,
                                    shortlist=shortlist), path


# Model names that say their direction: "opus-mt-en-de" (OPUS-MT), "translate-en_de-1_0"
# (argos-translate packages).
_DIRECTION_IN_NAME = re.compile(
    r"(?:opus-mt-([a-z]{2,3})-([a-z]{2,3})\b|translate-([a-z]{2,3})_([a-z]{2,3})\b)",
    re.IGNORECASE)


def language_choice(translator: Any) -> LanguageChoice:
    """What the model says about its languages: its target-language tokens (or, for NLLB-200 /
    M2M100, the language codes it reads and writes), and for a single-direction model the
    direction its name states, if any. `translator` is a Translator or a ModelInfo."""
    selectable = tuple(translator.target_languages)
    codes = tuple(getattr(translator, "source_languages", ()))
    if codes:
        return LanguageChoice(selectable=selectable, sources=codes, needs_source=True)
    metadata = translator.metadata
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    for key in ("general.name", "general.source"):
        match = _DIRECTION_IN_NAME.search(str(metadata.get(key, "")))
        if match:
            codes = [code for code in match.groups() if code]
            sources, targets = (codes[0].lower(),), (codes[1].lower(),)
            break
    return LanguageChoice(selectable=selectable, sources=sources, targets=targets)


def _hypotheses(translation: Any) -> tuple[list[str], list[float | None], int]:
    hypotheses = translation.hypotheses
    if not hypotheses:  # an empty input line
        return [translation.text], [None], 0
    return ([hypothesis.text for hypothesis in hypotheses],
            [hypothesis.score for hypothesis in hypotheses], len(translation.tokens))


class Session:
    """A translator plus settings; translates lines sentence by sentence."""

    def __init__(self, model: str | None, threads: int = 0, device: str = "cpu",
                 shortlist: bool = True) -> None:
        started = time.perf_counter()
        self.threads = threads
        self.device = device
        self.translator, self.model_path = load_translator(model, threads, device, shortlist)
        self.load_seconds = time.perf_counter() - started
        self.languages = language_choice(self.translator)
        self._known_letters: frozenset[str] | None = None

    def check(self, settings: Settings) -> None:
        """Raises CliError for a language the model does not know, the same language given to
        --from and --to, or a --max-length beyond the model's limit; warns on stderr when the
        model gives no way to check a language."""
        source, target = settings.source_language, settings.target_language
        self.languages.resolve_fixed(source, target)
        if source and target and same_language(source, target):
            raise CliError(f"--from and --to are the same language ({target}): there is "
                           "nothing to translate")
        if settings.max_length is not None:
            self.check_max_length(settings.max_length)
        if (source or target) and not self.languages.knows_languages():
            stderr_console().print("note: this model translates one way and does not say "
                                   "which languages; --from/--to are not checked",
                                   style="yellow", highlight=False, soft_wrap=True)

    def check_max_length(self, value: int, option: str = "--max-length") -> None:
        """CliError unless the model can generate `value` tokens (its position limit, less the
        forced target-language code of NLLB-200 / M2M100 models)."""
        limit = self.translator.max_positions - self.translator.tokenizer.target_prefix_length
        if value > limit:
            raise CliError(f"{option} {value}: this model generates at most {limit} tokens "
                           "per sentence")

    def effective_max_length(self, settings: Settings) -> int | None:
        """The generated-token limit a translation really uses."""
        if settings.max_length is not None:
            return settings.max_length
        value = self.translator.metadata.get("generation.max_length")
        return int(value) if value is not None else None

    # ---- what the input holds

    def _letters_known(self) -> frozenset[str]:
        """Every character of the model's source vocabulary pieces (byte-fallback and control
        pieces such as `<0xD9>` and `<unk>` left out)."""
        if self._known_letters is None:
            vocabulary = self.translator.tokenizer.source_vocab
            self._known_letters = frozenset("".join(
                piece for piece in vocabulary
                if not (piece.startswith("<") and piece.endswith(">"))))
        return self._known_letters

    def unknown_letter(self, text: str) -> str | None:
        """A letter of `text` the model does not know, when most of its letters are such (the
        model then produces meaningless, often repetitive output); else None."""
        known = self._letters_known()
        letters = [char for char in text if char.isalpha()]
        unknown = [char for char in letters if char not in known]
        if letters and len(unknown) > UNKNOWN_LETTERS_SHARE * len(letters):
            return unknown[0]
        return None

    def already_in_target(self, text: str, settings: Settings) -> str | None:
        """The target language (its token) when the user fixed one (--to) and the sentence is
        already written in it, by its script (models such as en<->zh); else None. Such a
        sentence is copied unchanged: the model cannot translate a language into itself."""
        if settings.target_language is None:
            return None
        fixed = self.languages.resolve_fixed(settings.source_language, settings.target_language)
        if not fixed or self.unknown_letter(text) is not None:
            return None
        language = self.languages.script_language(text)
        return fixed if language is not None and same_language(language, fixed) else None

    def notes(self, lines: Sequence[str], settings: Settings) -> InputNotes:
        """Lines in letters the model does not know, and lines copied unchanged since they are
        already in the --to language."""
        notes = InputNotes()
        for number, line in enumerate(lines, start=1):
            example = self.unknown_letter(line)
            if example is not None:
                notes.unknown_script.append(number)
                notes.unknown_example = notes.unknown_example or example
            copied = [self.already_in_target(sentence, settings)
                      for sentence in split_sentences(line)]
            language = next((found for found in copied if found is not None), None)
            if language is not None:
                notes.already_in_target.append(number)
                notes.target_language = bare(language)
        return notes

    def _options(self, settings: Settings, with_scores: bool) -> dict[str, Any]:
        options: dict[str, Any] = {"n_best": settings.n_best, "return_scores": with_scores}
        beam = settings.beam_size
        if beam is None and settings.n_best > 1:
            default = int(self.translator.metadata.get("generation.beam_size", 1))
            beam = max(default, settings.n_best)  # n-best needs at least that many beams
        elif beam is not None and beam < settings.n_best:
            beam = settings.n_best
        if beam is not None:
            options["beam_size"] = beam
        if settings.max_length is not None:
            options["max_length"] = settings.max_length
        if settings.repetition_penalty != 1.0:
            options["repetition_penalty"] = settings.repetition_penalty
        if settings.no_repeat_ngram_size is not None:
            options["no_repeat_ngram_size"] = settings.no_repeat_ngram_size
        if settings.glossary is not None:
            options["glossary"] = settings.glossary
        if settings.keep:
            options["keep"] = settings.keep
        if settings.protect:
            options["protect"] = True
        return options

    def source_options(self, settings: Settings, text: str = "") -> dict[str, Any]:
        """{"source_language": code} for a model that reads the source language (NLLB-200,
        M2M100: --from, else detected in `text`), else {}."""
        source = self.languages.source_token(settings.source_language, text)
        return {"source_language": source} if source is not None else {}

    def translate_sentences(self, sentences: Sequence[str], settings: Settings,
                            with_scores: bool = False) -> list[SentenceResult]:
        """Translates sentences (each a single model input), grouping them by target language
        and, for a model that reads it, source language. with_scores (--json) also reports
        each sentence's detected language."""
        targets = [self.languages.target_for(text, settings.source_language,
                                             settings.target_language) for text in sentences]
        sources = [self.source_options(settings, text) for text in sentences]
        results: list[SentenceResult | None] = [None] * len(sentences)
        for index, text in enumerate(sentences):
            if self.already_in_target(text, settings) is not None:
                results[index] = SentenceResult(text, targets[index], [text], [None], 0)
        options = self._options(settings, with_scores)
        groups: dict[tuple[Any, Any], list[int]] = {}
        for index, (target, source) in enumerate(zip(targets, sources)):
            if results[index] is None:
                groups.setdefault((target, source.get("source_language")), []).append(index)
        for (target, source), indices in groups.items():
            extra = {"target_language": target} if target is not None else {}
            if source is not None:
                extra["source_language"] = source
            translations = self.translator.translate([sentences[i] for i in indices],
                                                     **options, **extra)
            confidences: list[float | None] = [None] * len(indices)
            if settings.min_confidence is not None:
                confidences = self.translator.confidence(
                    [sentences[i] for i in indices], translations, **extra)
            for index, translation, confidence in zip(indices, translations, confidences):
                texts, scores, tokens = _hypotheses(translation)
                result = SentenceResult(sentences[index], target, texts, scores, tokens,
                                        confidence, source_language=source)
                if confidence is not None and confidence < settings.min_confidence:
                    result.hypotheses = [sentences[index]] * len(texts)
                    result.untranslated = True
                results[index] = result
        if with_scores:
            from pytransformer.detection import detect_language

            for result in results:
                if result is not None:
                    result.detected = detect_language(result.source)
        return [result for result in results if result is not None]

    def translate_lines(self, lines: Sequence[str], settings: Settings, with_scores: bool = False,
                        on_sentences: Callable[[int], None] | None = None) -> Iterator[LineResult]:
        """Translates lines in order, yielding each line's result as soon as its last batch is
        done. Batches hold at most BATCH_SENTENCES sentences, cut inside a line too, so a line
        of any length is translated in the memory of one batch. An empty line gives an empty
        result. on_sentences(n) reports progress in sentences."""
        pending: list[LineResult] = []
        pending_sentences: list[str] = []
        owners: list[LineResult] = []

        def translate_pending() -> None:
            if pending_sentences:
                for owner, result in zip(owners, self.translate_sentences(
                        pending_sentences, settings, with_scores)):
                    owner.sentences.append(result)
                if on_sentences is not None:
                    on_sentences(len(pending_sentences))
            pending_sentences.clear()
            owners.clear()

        for line in lines:
            result = LineResult(line)
            pending.append(result)
            for sentence in split_sentences(line):
                pending_sentences.append(sentence)
                owners.append(result)
                if len(pending_sentences) >= BATCH_SENTENCES:
                    translate_pending()
            if not pending_sentences:  # every pending line is complete
                yield from pending
                pending.clear()
        translate_pending()
        yield from pending

    def stream(self, text: str, settings: Settings) -> Iterator[tuple[str, int]]:
        """The translation of one sentence in increments, as (text, target tokens generated so
        far): token by token with greedy search (the default here), all at once when complete
        with a beam. The last item carries the final token count."""
        target = self.languages.target_for(text, settings.source_language,
                                           settings.target_language)
        options: dict[str, Any] = {"beam_size": settings.beam_size or 1,
                                   **self.source_options(settings, text)}
        if settings.max_length is not None:
            options["max_length"] = settings.max_length
        if target is not None:
            options["target_language"] = target
        if self.already_in_target(text, settings) is not None:
            yield text, 0  # copied unchanged, as by translate_sentences()
            return
        with self.translator.stream(text, **options) as pieces:  # closing stops the decoding
            for piece in pieces:
                yield piece, pieces.token_count
            yield "", pieces.token_count


def count_sentences(lines: Sequence[str]) -> int:
    return sum(len(split_sentences(line)) for line in lines)

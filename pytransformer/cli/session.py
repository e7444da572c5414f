"""A loaded model with the CLI's translation settings, shared by `translate` and `chat`.

Only the public pytransformer API is used here (never the private extension).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytransformer
from pytransformer.cli.console import stderr_console
from pytransformer.cli.languages import LanguageChoice
from pytransformer.cli.model_store import default_model_path, resolve_model
from pytransformer.cli.text import join_sentences, split_sentences

# Sentences per call to Translator.translate: large enough to batch well, small enough for a
# responsive progress bar and for output to flow line by line.
BATCH_SENTENCES = 32


@dataclass
class SentenceResult:
    source: str
    target_language: str | None
    hypotheses: list[str]  # n_best, best first
    scores: list[float | None]  # None unless scores were asked for
    tokens: int  # generated tokens of the best hypothesis


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
class Settings:
    source_language: str | None = None
    target_language: str | None = None
    beam_size: int | None = None  # None: the model's default
    n_best: int = 1
    max_length: int | None = None


def load_translator(model: str | None, threads: int, device: str = "cpu") -> tuple[Any, Path]:
    """Loads the model named by --model (None: the default) on --device. Returns (translator,
    path)."""
    path = resolve_model(model) if model is not None else default_model_path()
    return pytransformer.Translator(path, threads=threads, device=device), path


# Model names that say their direction: "opus-mt-en-de" (OPUS-MT), "translate-en_de-1_0"
# (argos-translate packages).
_DIRECTION_IN_NAME = re.compile(
    r"(?:opus-mt-([a-z]{2,3})-([a-z]{2,3})\b|translate-([a-z]{2,3})_([a-z]{2,3})\b)",
    re.IGNORECASE)


def language_choice(translator: Any) -> LanguageChoice:
    """What the model says about its languages: its target-language tokens, and for a
    single-direction model the direction its name states, if any."""
    selectable = tuple(translator.target_languages)
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

    def __init__(self, model: str | None, threads: int = 0, device: str = "cpu") -> None:
        started = time.perf_counter()
        self.threads = threads
        self.device = device
        self.translator, self.model_path = load_translator(model, threads, device)
        self.load_seconds = time.perf_counter() - started
        self.languages = language_choice(self.translator)

    def check(self, settings: Settings) -> None:
        """Raises CliError for a language the model does not know; warns on stderr when the
        model gives no way to check one."""
        self.languages.resolve_fixed(settings.source_language, settings.target_language)
        if (settings.source_language or settings.target_language) and \
                not self.languages.knows_languages():
            stderr_console().print("note: this model translates one way and does not say "
                                   "which languages; --from/--to are not checked",
                                   style="yellow", highlight=False, soft_wrap=True)

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
        return options

    def translate_sentences(self, sentences: Sequence[str], settings: Settings,
                            with_scores: bool = False) -> list[SentenceResult]:
        """Translates sentences (each a single model input), grouping them by target language."""
        targets = [self.languages.target_for(text, settings.source_language,
                                             settings.target_language) for text in sentences]
        results: list[SentenceResult | None] = [None] * len(sentences)
        options = self._options(settings, with_scores)
        for target in dict.fromkeys(targets):
            indices = [i for i, t in enumerate(targets) if t == target]
            extra = {"target_language": target} if target is not None else {}
            translations = self.translator.translate([sentences[i] for i in indices],
                                                     **options, **extra)
            for index, translation in zip(indices, translations):
                texts, scores, tokens = _hypotheses(translation)
                results[index] = SentenceResult(sentences[index], target, texts, scores, tokens)
        return [result for result in results if result is not None]

    def translate_lines(self, lines: Sequence[str], settings: Settings, with_scores: bool = False,
                        on_sentences: Callable[[int], None] | None = None) -> Iterator[LineResult]:
        """Translates lines in order, yielding each line's result as soon as its batch is done.
        An empty line gives an empty result. on_sentences(n) reports progress in sentences."""
        pending: list[LineResult] = []
        pending_sentences: list[str] = []
        owners: list[LineResult] = []

        def flush() -> Iterator[LineResult]:
            if pending_sentences:
                for owner, result in zip(owners, self.translate_sentences(
                        pending_sentences, settings, with_scores)):
                    owner.sentences.append(result)
                if on_sentences is not None:
                    on_sentences(len(pending_sentences))
            yield from pending
            pending.clear()
            pending_sentences.clear()
            owners.clear()

        for line in lines:
            result = LineResult(line)
            for sentence in split_sentences(line):
                pending_sentences.append(sentence)
                owners.append(result)
            pending.append(result)
            if len(pending_sentences) >= BATCH_SENTENCES:
                yield from flush()
        yield from flush()

    def stream(self, text: str, settings: Settings) -> Iterator[tuple[str, int]]:
        """The translation of one sentence in increments, as (text, target tokens generated so
        far): token by token with greedy search (the default here), all at once when complete
        with a beam. The last item carries the final token count."""
        target = self.languages.target_for(text, settings.source_language,
                                           settings.target_language)
        options: dict[str, Any] = {"beam_size": settings.beam_size or 1}
        if settings.max_length is not None:
            options["max_length"] = settings.max_length
        if target is not None:
            options["target_language"] = target
        with self.translator.stream(text, **options) as pieces:  # closing stops the decoding
            for piece in pieces:
                yield piece, pieces.token_count
            yield "", pieces.token_count


def count_sentences(lines: Sequence[str]) -> int:
    return sum(len(split_sentences(line)) for line in lines)

"""Choosing the target language: --from/--to checks and source-script detection."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytransformer.cli.errors import CliError
from pytransformer.languages import (describe_languages, dominant_script, find_language,
                                     same_language, script_pair)

def bare(code: str) -> str:
    """A language token such as `>>zho<<` as its code, `zho`."""
    return code.strip().removeprefix(">>").removesuffix("<<")


@dataclass(frozen=True)
class LanguageChoice:
    """How one model is asked for a target language.

    selectable: the languages named by the model's target-language tokens (`>>zh<<`), chosen
    per request; empty for a model with a single direction.
    sources / targets: the languages the model reads and writes, when it says so (may be
    empty: unknown), used to check --from/--to.
    needs_source: the model reads the source language as well (NLLB-200, M2M100: `sources`
    are its language codes), so --from is required.
    """

    selectable: tuple[str, ...]
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    needs_source: bool = False

    def _find(self, code: str, known: Sequence[str], role: str) -> str:
        try:
            found = find_language(code, known)
        except ValueError as error:
            raise CliError(str(error)) from None
        if found is None:
            raise CliError(f"unknown {role} language '{code}' for this model (it knows: "
                           f"{describe_languages([bare(name) for name in known])})")
        return found

    def source_token(self, source: str | None, text: str = "") -> str | None:
        """The model's code for the source language of `text`, for a model that reads it (None
        for other models): --from, else the language detected in the text among the model's
        (pytransformer.detection). CliError when --from is unknown or nothing is detected."""
        if not self.needs_source:
            return None
        if source is not None:
            return self._find(source, self.sources, "source")
        from pytransformer.detection import detect_language

        found = detect_language(text, self.sources)
        if found is None:
            raise CliError(f"cannot tell which language {text[:40]!r} is in: pass --from "
                           f"(e.g. --from en or --from {bare(self.sources[0])})")
        return found.language

    def knows_languages(self) -> bool:
        """Whether --from/--to can be checked (the model names its languages)."""
        return bool(self.selectable or self.sources or self.targets)

    def resolve_fixed(self, source: str | None, target: str | None) -> str | None | bool:
        """For --from/--to: the language token to request, None when the model has a single
        direction, or False when it must be decided per sentence from the script.
        Raises CliError for a language the model does not know."""
        if self.needs_source and source is not None:
            self.source_token(source)
        known_sources = self.sources or self.selectable
        if source is not None and known_sources:
            source = self._find(source, known_sources, "source")
        known_targets = self.selectable or self.targets
        if target is not None and known_targets:
            target = self._find(target, known_targets, "target")
        if not self.selectable:
            return None
        if target is not None:
            return target
        if len(self.selectable) == 1:
            return self.selectable[0]
        if source is not None:
            others = [name for name in self.selectable if not same_language(name, source)]
            if len(others) == 1:
                return others[0]
            raise CliError(f"--from {bare(source)} leaves several target languages "
                           f"({describe_languages([bare(name) for name in others])}): "
                           "pass --to")
        if self._script_pair() is None and len(self.selectable) != 2:
            raise CliError("this model translates into several languages ("
                           + describe_languages([bare(name) for name in self.selectable])
                           + "): pass --to")
        return False

    def _script_pair(self) -> tuple[str, str] | None:
        """(cjk language, other language) for a two-language model where one is CJK."""
        return script_pair(self.selectable)

    def script_language(self, text: str) -> str | None:
        """For a CJK <-> non-CJK pair (like en<->zh): the language of the pair the text's
        dominant script belongs to; None for another model or a text without letters."""
        pair = self._script_pair()
        script = dominant_script(text) if pair is not None else None
        if pair is None or script is None:
            return None
        cjk, other = pair
        return cjk if script == "cjk" else other

    def target_for(self, text: str, source: str | None, target: str | None) -> str | None:
        """The target language for one sentence (see resolve_fixed); for a two-language model
        without --from/--to, the language the sentence is not in: by its script for a CJK <->
        non-CJK pair (CJK text goes to the other language and back), else as detected
        (pytransformer.detection; the first language when nothing is detected)."""
        fixed = self.resolve_fixed(source, target)
        if fixed is not False:
            return fixed  # type: ignore[return-value]
        pair = self._script_pair()
        if pair is not None:
            cjk, other = pair
            return other if dominant_script(text) == "cjk" else cjk
        from pytransformer.detection import detect_language

        first, second = self.selectable
        found = detect_language(text, self.selectable)
        return first if found is not None and found.language == second else second

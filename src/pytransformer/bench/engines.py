"""The engines a benchmark drives, each behind the same small interface, so every engine runs
the same workload: the same source token ids, the same forced output length (EOS suppressed),
the same number of threads.

An engine is created inside its own worker process (worker.py) so its memory and start-up never
count against another engine. Constructing an engine imports its library (counted in the
baseline RSS); load() loads the model (the load time). Every method returns how many tokens it
produced, which the worker checks against the forced length: an engine that stopped early would not be comparable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

Sources = list[list[int]]


class Engine(Protocol):
    def load(self) -> None:
        """Loads the model (timed as the load time)."""

    def generate(self, sources: Sources, beam_size: int, length: int) -> int:
        """Decodes every source to exactly `length` tokens; returns the tokens of the best
        hypotheses (without the decoder start token)."""

    def encode(self, sources: Sources) -> None:
        """Runs the encoder over the sources."""


ENCODE_NOTES = {
    "ctranslate2": "CTranslate2's Translator has no encoder-only call: timed as "
                   "translate_batch with max_decoding_length=1 (encoder + one decoder step)",
}


class PytransformerEngine:
    """pytransformer's core through pytransformer._core (Model, generate): the public
    Translator works on text, and the benchmark needs token ids and a forced length
    (min_length, forced_eos off), which only the core binding offers."""

    def __init__(self, artifact: str, threads: int, precision: str) -> None:
        from pytransformer import _core

        self.core = _core
        self.artifact, self.threads = artifact, threads
        self.model = None

    def load(self) -> None:
        self.model = self.core.Model(self.artifact, threads=self.threads)

    def generate(self, sources: Sources, beam_size: int, length: int) -> int:
        options = self.core.SearchOptions(self.model, beam_size=beam_size, max_length=length,
                                          min_length=length, forced_eos=False)
        results = self.core.generate(self.model, sources, options)
        return sum(len(hypotheses[0][0]) for hypotheses in results)

    def encode(self, sources: Sources) -> None:
        self.model.encode(sources)


class CTranslate2Engine:
    """A CTranslate2 model directory (converted from the same weights) with
    ctranslate2.Translator; ids become the model's own vocabulary pieces."""

    def __init__(self, artifact: str, threads: int, precision: str) -> None:
        import ctranslate2

        self.ctranslate2 = ctranslate2
        self.artifact, self.threads, self.precision = artifact, threads, precision
        self.translator = None
        self.pieces = _ctranslate2_vocabulary(Path(artifact))

    def load(self) -> None:
        self.translator = self.ctranslate2.Translator(
            self.artifact, device="cpu", compute_type=self.precision, inter_threads=1,
            intra_threads=self.threads)

    def _tokens(self, sources: Sources) -> list[list[str]]:
        return [[self.pieces[i] for i in ids] for ids in sources]

    def generate(self, sources: Sources, beam_size: int, length: int) -> int:
        results = self.translator.translate_batch(
            self._tokens(sources), beam_size=beam_size, max_decoding_length=length,
            min_decoding_length=length, max_input_length=0)
        return sum(len(result.hypotheses[0]) for result in results)

    def encode(self, sources: Sources) -> None:
        self.translator.translate_batch(self._tokens(sources), beam_size=1,
                                        max_decoding_length=1, max_input_length=0)


class TransformersEngine:
    """Hugging Face transformers' MarianMTModel (PyTorch, float32) on the same directory."""

    def __init__(self, artifact: str, threads: int, precision: str) -> None:
        import torch

        if precision != "float32":
            raise ValueError(f"transformers runs float32 only, not {precision}")
        from transformers import MarianMTModel

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        self.model_class = MarianMTModel
        self.artifact = artifact
        self.model = None

    def load(self) -> None:
        self.model = self.model_class.from_pretrained(self.artifact).eval()

    def _batch(self, sources: Sources):
        import torch

        pad = self.model.config.pad_token_id
        width = max(len(ids) for ids in sources)
        input_ids = torch.full((len(sources), width), pad, dtype=torch.long)
        mask = torch.zeros((len(sources), width), dtype=torch.long)
        for row, ids in enumerate(sources):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1
        return input_ids, mask

    def generate(self, sources: Sources, beam_size: int, length: int) -> int:
        import torch

        input_ids, mask = self._batch(sources)
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=mask, num_beams=beam_size, do_sample=False,
                min_new_tokens=length, max_new_tokens=length, forced_eos_token_id=None,
                num_return_sequences=1)
        return int(output.shape[0] * (output.shape[1] - 1))  # minus the decoder start token

    def encode(self, sources: Sources) -> None:
        import torch

        input_ids, mask = self._batch(sources)
        with torch.inference_mode():
            self.model.get_encoder()(input_ids=input_ids, attention_mask=mask)


ENGINES = {
    "pytransformer": PytransformerEngine,
    "ctranslate2": CTranslate2Engine,
    "transformers": TransformersEngine,
}


def _ctranslate2_vocabulary(directory: Path) -> list[str]:
    for name in ("shared_vocabulary", "source_vocabulary"):
        if (directory / f"{name}.json").exists():
            return json.loads((directory / f"{name}.json").read_text(encoding="utf-8"))
        if (directory / f"{name}.txt").exists():
            return (directory / f"{name}.txt").read_text(encoding="utf-8").split("\n")
    raise FileNotFoundError(f"{directory}: no CTranslate2 source vocabulary")

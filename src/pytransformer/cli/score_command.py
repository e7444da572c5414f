"""`pytransformer score`: how likely the model finds given translations (Translator.score:
forced decoding, per-token log-probabilities as CTranslate2's score_batch reports them), for
corpus filtering and quality estimation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from pytransformer.cli.errors import CliError, reports_errors
from pytransformer.cli.options import DEVICE_OPTION, MODEL_OPTION, THREADS_OPTION
from pytransformer.cli.session import load_translator
from pytransformer.cli.shortlist_command import read_parallel_lines

# Pairs scored per call: the logits of a call ([target tokens, vocabulary] floats per pair)
# stay a few tens of MB.
CHUNK_PAIRS = 16


@reports_errors
def score(
    source: Path = typer.Option(..., "--source", help="Source sentences, one per line (UTF-8)."),
    target: Path = typer.Option(..., "--target",
                                help="Their translations, line by line with --source."),
    from_language: Optional[str] = typer.Option(None, "--from",
                                                help="Source language, for models that read it."),
    to_language: Optional[str] = typer.Option(
        None, "--to", help="Target language (default: chosen per line as translate does)."),
    json_lines: bool = typer.Option(
        False, "--json-lines",
        help='One JSON object per pair: {"line", "log_prob", "normalized", "tokens", '
             '"log_probs"}.'),
    model: Optional[str] = MODEL_OPTION,
    threads: int = THREADS_OPTION,
    device: str = DEVICE_OPTION,
) -> None:
    """Score given translations: per line, the mean log-probability per token and the total.

    Forced decoding of each target after its source: every target piece and the end token
    are scored over the whole vocabulary (natural logarithms; comparable within one model
    only). Empty lines (either side) give empty output lines.
    """
    pairs = read_parallel_lines(source, target)
    translator, _ = load_translator(model, threads, device, shortlist=False)
    for start in range(0, len(pairs), CHUNK_PAIRS):
        chunk = pairs[start:start + CHUNK_PAIRS]
        present = [(s, t) for s, t in chunk if s.strip() and t.strip()]
        try:
            scores = iter(translator.score([s for s, _ in present], [t for _, t in present],
                                           target_language=to_language,
                                           source_language=from_language))
        except ValueError as error:
            raise CliError(f"lines {start + 1}-{start + len(chunk)}: {error}") from None
        for offset, (s, t) in enumerate(chunk):
            line = start + offset + 1
            result = next(scores) if s.strip() and t.strip() else None
            if json_lines:
                record = {"line": line, "log_prob": None, "normalized": None, "tokens": [],
                          "log_probs": []}
                if result is not None:
                    record.update(log_prob=result.log_prob, normalized=result.normalized,
                                  tokens=result.tokens, log_probs=result.log_probs)
                typer.echo(json.dumps(record, ensure_ascii=False))
            elif result is None:
                typer.echo("")
            else:
                typer.echo(f"{result.normalized:.4f}\t{result.log_prob:.4f}")

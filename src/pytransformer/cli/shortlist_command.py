"""`pytransformer shortlist`: adds a lexical shortlist built from parallel text to a model
(Translator.shortlist_from_pairs, pytransformer.shortlist), so that its translations compute
only the output-layer rows each sentence's words allow (docs/decoding.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from pytransformer.cli.console import print_json, stdout_console
from pytransformer.cli.errors import CliError, reports_errors
from pytransformer.cli.options import MODEL_OPTION
from pytransformer.cli.session import load_translator


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        raise CliError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_parallel_lines(source: Path, target: Path) -> list[tuple[str, str]]:
    """The (source, target) line pairs of two line-aligned UTF-8 files; CliError when they
    cannot be read or their line counts differ."""
    sources, targets = _read_lines(source), _read_lines(target)
    if len(sources) != len(targets):
        raise CliError(f"{source} has {len(sources)} lines and {target} {len(targets)}: the "
                       "files must be line-aligned translations")
    return list(zip(sources, targets))


@reports_errors
def shortlist(
    output: Path = typer.Argument(..., metavar="OUTPUT",
                                  help="The .ptm file to write: the model with the shortlist."),
    source: Path = typer.Option(..., "--source", help="Source sentences, one per line (UTF-8)."),
    target: Path = typer.Option(..., "--target",
                                help="Their translations, line by line with --source."),
    both_ways: bool = typer.Option(
        False, "--both-ways",
        help="Also count each pair the other way round (a model that translates both ways, "
             "such as the default en<->zh one)."),
    always: int = typer.Option(1000, "--always", min=0,
                               help="The most frequent target pieces, always allowed."),
    best: int = typer.Option(100, "--best", min=0,
                             help="Target pieces each source piece allows besides those."),
    from_language: Optional[str] = typer.Option(None, "--from",
                                                help="Source language, for models that read it."),
    to_language: Optional[str] = typer.Option(
        None, "--to", help="Target language (default: chosen per line as translate does)."),
    as_json: bool = typer.Option(False, "--json", help="Print a summary as JSON."),
    model: Optional[str] = MODEL_OPTION,
) -> None:
    """Add a lexical shortlist built from parallel text to a model, written as OUTPUT.

    Each source piece allows the target pieces that most often occur in the translations of
    sentences holding it, besides the most frequent target pieces; translations with OUTPUT
    then only choose among the pieces their source allows (faster; `translate --no-shortlist`
    turns it off). The tensors are copied unchanged.
    """
    from pytransformer import _core
    from pytransformer.format import rewrite_metadata

    pairs = [(s, t) for s, t in read_parallel_lines(source, target) if s.strip() and t.strip()]
    if not pairs:
        raise CliError(f"{source} and {target} hold no pair of non-empty lines")
    translator, path = load_translator(model, threads=1, shortlist=False)
    if both_ways:
        pairs += [(t, s) for s, t in pairs]
    try:
        built = translator.shortlist_from_pairs(pairs, target_language=to_language,
                                                source_language=from_language, always=always,
                                                best=best)
    except ValueError as error:
        raise CliError(str(error)) from None
    stored = _core.ModelFile(str(path)).metadata  # bytes values included
    metadata = {key: value for key, value in stored.items()
                if not key.startswith("shortlist.") and key != "checksum.crc32"}
    metadata.update(built.metadata())
    rewrite_metadata(path, output, metadata)
    summary = {"model": str(path), "output": str(output), "pairs": len(pairs),
               "always": len(built.always), "targets": int(len(built.targets)),
               "source_ids_with_targets": int((built.offsets[1:] > built.offsets[:-1]).sum())}
    if as_json:
        print_json(summary)
    else:
        stdout_console().print(
            f"wrote {output}: {len(pairs)} pairs, {summary['always']} target pieces always "
            f"allowed, {summary['targets']} source-to-target entries")

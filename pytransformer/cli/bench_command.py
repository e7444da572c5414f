"""`pytransformer bench`: the benchmark of pytransformer.bench (speed, load time, memory),
optionally against CTranslate2 and transformers on the same weights."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from pytransformer import bench
from pytransformer.cli.console import stderr_console
from pytransformer.cli.errors import CliError, reports_errors


def _names(text: str | None, known: tuple[str, ...], what: str) -> tuple[str, ...] | None:
    if text is None:
        return None
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise CliError(f"unknown {what} {', '.join(unknown)} (choose from {', '.join(known)})")
    return names


def _command_line(context: typer.Context) -> str:
    """The command as typed, for the report: the options that differ from their defaults."""
    parts = ["pytransformer", context.info_name or "bench"]
    for parameter in context.command.params:
        value = context.params.get(parameter.name or "")
        if value is None or value == parameter.default or value is False:
            continue
        # Typer may vendor its own click, so the parameter kind is read, not its class.
        if parameter.param_type_name == "argument":
            parts.append(str(value))
        elif value is True:
            parts.append(parameter.opts[0])
        else:
            parts += [parameter.opts[0], str(value)]
    return shlex.join(parts)


@reports_errors
def bench_command(
    context: typer.Context,
    model: Optional[str] = typer.Argument(
        None, help="The model to measure: a .ptm file, a Hugging Face Marian directory or a "
        "CTranslate2 directory."),
    random_shape: Optional[str] = typer.Option(
        None, "--random", help=f"Measure a cached random-weight Marian model of this shape "
        f"instead ({', '.join(sorted(bench.SHAPES))})."),
    compare: Optional[str] = typer.Option(
        None, "--compare", help="Comma-separated engines to run on the same weights: "
        + ", ".join(bench.COMPARABLE_ENGINES) + "."),
    precision: Optional[str] = typer.Option(
        None, "--precision", help="Comma-separated: " + ", ".join(bench.PRECISIONS)
        + " (default: all)."),
    workloads: Optional[str] = typer.Option(
        None, "--workloads", help="Comma-separated: " + ", ".join(bench.WORKLOADS)
        + " (default: all)."),
    threads: int = typer.Option(0, "--threads", "-t", min=0,
                                help="Threads per engine (0: physical cores)."),
    runs: int = typer.Option(5, "--runs", min=1, help="Timed runs (the median is reported)."),
    greedy_length: int = typer.Option(64, "--greedy-length", min=1,
                                      help="Generated tokens of the batch-1 greedy workload."),
    batch_size: int = typer.Option(32, "--batch-size", min=1,
                                   help="Sentences of the batched and encoder workloads."),
    cache_dir: Optional[Path] = typer.Option(
        None, "--cache-dir", help="Where random models and conversions are kept."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the report as Markdown."),
) -> None:
    """Measure decoding and encoding speed, load time and peak memory of a model."""
    if as_json and markdown:
        raise CliError("choose --json or --markdown, not both")
    options = {
        "precisions": _names(precision, bench.PRECISIONS, "precision"),
        "workloads": _names(workloads, bench.WORKLOADS, "workload"),
        "compare": _names(compare, bench.COMPARABLE_ENGINES, "engine"),
    }
    settings = bench.BenchmarkSettings(
        model=model, random_shape=random_shape, threads=threads, runs=runs,
        greedy_length=greedy_length, batch_size=batch_size,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
        **{key: value for key, value in options.items() if value is not None})
    command = _command_line(context)
    try:
        with stderr_console().status("benchmarking") as status:
            report = bench.run_benchmark(settings, command=command,
                                         progress=lambda message: status.update(escape(message)))
    except bench.BenchmarkError as error:
        raise CliError(str(error)) from None
    if as_json:
        sys.stdout.write(report.to_json() + "\n")
    else:
        sys.stdout.write((bench.format_markdown(report) if markdown
                          else bench.format_report(report)) + "\n")

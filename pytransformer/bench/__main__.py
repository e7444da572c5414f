"""python -m pytransformer.bench: benchmark a model, optionally against other engines.

    python -m pytransformer.bench --random opus-mt --compare ctranslate2,transformers
    python -m pytransformer.bench path/to/opus-mt-en-de --json
    python -m pytransformer.bench make-model DIR [--shape opus-mt] [--seed 0]
    python -m pytransformer.bench show REPORT.json [--markdown]     (a saved --json report)
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from pytransformer.bench.random_model import SHAPES, write_random_marian
from pytransformer.bench.report import format_markdown, format_report
from pytransformer.bench.runner import (
    COMPARABLE_ENGINES,
    PRECISIONS,
    WORKLOADS,
    BenchmarkError,
    BenchmarkReport,
    BenchmarkSettings,
    run_benchmark,
)


def _names(known: tuple[str, ...]):
    def parse(text: str) -> tuple[str, ...]:
        values = tuple(v.strip() for v in text.split(",") if v.strip())
        unknown = [v for v in values if v not in known]
        if unknown:
            raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)} "
                                             f"(choose from {', '.join(known)})")
        return values
    return parse


def _benchmark_parser() -> argparse.ArgumentParser:
    defaults = BenchmarkSettings()
    parser = argparse.ArgumentParser(
        prog="python -m pytransformer.bench",
        description="Measure decoding and encoding speed, load time and peak memory of a model "
                    "(a Hugging Face Marian directory, a CTranslate2 directory or a .ptm file), "
                    "optionally against CTranslate2 and transformers on the same weights. "
                    "`python -m pytransformer.bench make-model DIR` writes a random model.")
    parser.add_argument("model", nargs="?", help="the model to measure")
    parser.add_argument("--random", dest="random_shape", choices=sorted(SHAPES),
                        help="use a cached random-weight Marian model of this shape instead")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--compare", type=_names(COMPARABLE_ENGINES), default=(),
                        help="comma-separated engines to run on the same weights: "
                             + ",".join(COMPARABLE_ENGINES))
    parser.add_argument("--precision", dest="precisions", type=_names(PRECISIONS),
                        default=defaults.precisions,
                        help="comma-separated: float32,int8,int8_all (int8: decoder FFN and "
                        "output projection int8, the rest f16; int8_all: every matrix int8, as "
                        "CTranslate2 int8, which both are compared with)")
    parser.add_argument("--workloads", type=_names(WORKLOADS), default=defaults.workloads,
                        help="comma-separated: " + ",".join(WORKLOADS))
    parser.add_argument("--threads", type=int, default=0,
                        help="intra-op threads per engine (default: physical cores)")
    for name in ("runs", "batch_runs", "warmup", "source_length", "greedy_length",
                 "batch_size", "beam_size", "batch_length"):
        parser.add_argument("--" + name.replace("_", "-"), type=int,
                            default=getattr(defaults, name))
    parser.add_argument("--timeout", dest="timeout_s", type=float, default=None,
                        help="seconds allowed per engine")
    parser.add_argument("--cache-dir", help="where random models and conversions are kept")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as JSON")
    output.add_argument("--markdown", action="store_true",
                        help="print the report as a Markdown section (docs/benchmarks.md)")
    return parser


def _make_model(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytransformer.bench make-model",
                                     description="Write a random-weight Marian model directory.")
    parser.add_argument("directory")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="opus-mt")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(write_random_marian(args.directory, SHAPES[args.shape], args.seed))
    return 0


def _show(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m pytransformer.bench show",
                                     description="Print a report saved with --json.")
    parser.add_argument("report", help="a JSON file written by --json")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    with open(args.report, encoding="utf-8") as file:
        report = BenchmarkReport.from_dict(json.load(file))
    print(format_markdown(report) if args.markdown else format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["make-model"]:
        return _make_model(argv[1:])
    if argv[:1] == ["show"]:
        return _show(argv[1:])
    args = vars(_benchmark_parser().parse_args(argv))
    as_json, as_markdown = args.pop("json"), args.pop("markdown")
    settings = BenchmarkSettings(**args)
    command = "python -m pytransformer.bench " + shlex.join(argv)
    progress = None if as_json else (lambda message: print(f"... {message}", file=sys.stderr))
    try:
        report = run_benchmark(settings, command=command, progress=progress)
    except BenchmarkError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if as_json:
        print(report.to_json())
    else:
        print(format_markdown(report) if as_markdown else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())

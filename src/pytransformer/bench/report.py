"""Plain-text rendering of a BenchmarkReport (the CLI draws its own Rich table from
table_rows())."""

from __future__ import annotations

from pytransformer.bench.runner import OURS, BenchmarkReport, EngineResult

TABLE_HEADERS = ("engine", "load s", "peak RSS MB", "greedy tok/s", "batch tok/s",
                 "encoder tok/s", "roofline")


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def table_rows(report: BenchmarkReport) -> list[tuple[str, ...]]:
    """One row of strings per engine and precision, in TABLE_HEADERS order."""
    rows = []
    for result in report.results:
        if result.error:
            rows.append((result.label, f"error: {result.error}", "", "", "", "", ""))
            continue
        speeds = [_number(result.workloads[name].tokens_per_s) if name in result.workloads
                  else "-" for name in ("greedy", "batch", "encoder")]
        roofline = (f"{result.roofline.fraction_of_limit:.0%}" if result.roofline else "-")
        rows.append((result.label, _number(result.load_s, 3), _number(result.peak_rss_mb, 0),
                     *speeds, roofline))
    return rows


def ratio_lines(report: BenchmarkReport) -> list[str]:
    """'pytransformer vs ctranslate2 float32: greedy 0.52x, ...' per compared engine and
    precision ('pytransformer int8_all vs ctranslate2 int8' when the precisions differ)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for ratio in report.ratios:
        name = {"load": "load time", "peak_rss": "peak RSS"}.get(ratio.measure, ratio.measure)
        key = (ratio.other, ratio.precision, ratio.other_precision)
        groups.setdefault(key, []).append(f"{name} {ratio.value:.2f}x")
    return [f"{OURS} vs {other} {precision}: {', '.join(parts)}" if not other_precision else
            f"{OURS} {precision} vs {other} {other_precision}: {', '.join(parts)}"
            for (other, precision, other_precision), parts in groups.items()]


def roofline_lines(report: BenchmarkReport) -> list[str]:
    lines = []
    for result in report.results:
        roofline = result.roofline
        if roofline is None:
            continue
        megabytes = (roofline.weight_bytes_per_token + roofline.cache_bytes_per_token) / 1e6
        lines.append(
            f"{result.label}: reads {megabytes:.1f} MB per token "
            f"({roofline.weight_bytes_per_token / 1e6:.1f} MB weights + "
            f"{roofline.cache_bytes_per_token / 1e6:.1f} MB K/V) / "
            f"{roofline.bandwidth_gbs:.1f} GB/s = {roofline.min_ms_per_token:.2f} ms/token at "
            f"best; measured {roofline.measured_ms_per_token:.2f} ms/token "
            f"({roofline.fraction_of_limit:.0%} of the limit)")
    return lines


def format_table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths))).rstrip()
    return "\n".join([line(headers), line(tuple("-" * w for w in widths)),
                      *(line(row) for row in rows)])


def context_lines(report: BenchmarkReport) -> list[str]:
    """The model, the machine (with its load) and the workload, one line each."""
    s, m, model = report.settings, report.machine, report.model
    shape = (f"d_model {model['d_model']}, {model['encoder_layers']}+{model['decoder_layers']} "
             f"layers, {model['encoder_heads']} heads, FFN {model['encoder_ffn_dim']}, "
             f"vocab {model['target_vocab_size']}")
    threads = s.threads or m.physical_cores
    return [
        f"model: {model['name']} ({model['kind']}; {shape})",
        f"machine: {m.cpu_model}, {m.physical_cores} physical cores, {m.logical_cpus} CPUs; "
        f"load average {m.load_average[0]:.2f} before, {report.load_average_after[0]:.2f} "
        f"after; memory read bandwidth {m.memory_bandwidth_gbs:.1f} GB/s",
        f"workload: greedy = 1 sentence of {s.source_length} tokens -> {s.greedy_length} "
        f"tokens; batch = {s.batch_size} sentences, beam {s.beam_size} -> {s.batch_length} "
        f"tokens each; encoder = the same {s.batch_size} sentences; EOS suppressed; "
        f"median of {s.runs} runs ({s.batch_runs} for batch); "
        f"{threads} thread{'s' if threads > 1 else ''}",
    ]


def note_lines(report: BenchmarkReport) -> list[str]:
    notes = sorted({w.note for r in report.results for w in r.workloads.values() if w.note})
    notes += [f"{engine}: {reason}" for engine, reason in report.skipped.items()]
    notes += [f"{r.label} converted in {r.conversion_s:.1f} s" for r in report.results
              if r.conversion_s is not None]
    return notes


def _sections(report: BenchmarkReport) -> list[tuple[str, list[str]]]:
    return [("roofline (batch-1 greedy)", roofline_lines(report)),
            ("ratios, pytransformer / other (> 1: pytransformer faster or lighter)",
             ratio_lines(report)),
            ("notes", note_lines(report))]


def format_report(report: BenchmarkReport) -> str:
    """The whole report as plain text: context, table, roofline, ratios, notes."""
    parts = [*context_lines(report), "", format_table(TABLE_HEADERS, table_rows(report))]
    for title, lines in _sections(report):
        if lines:
            parts += ["", title + ":", *("  " + line for line in lines)]
    return "\n".join(parts)


def format_markdown(report: BenchmarkReport) -> str:
    """The report as a Markdown section for docs/benchmarks.md."""
    lines = [f"### {report.date[:10]}: {report.model['name']}", "", "```",
             report.command or "pytransformer bench", "```", ""]
    lines += [f"- {line}" for line in context_lines(report)]
    lines += ["", "| " + " | ".join(TABLE_HEADERS) + " |",
              "|" + "|".join(["---"] + ["---:"] * (len(TABLE_HEADERS) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in table_rows(report)]
    for title, items in _sections(report):
        if items:
            lines += ["", title[0].upper() + title[1:] + ":", "", *(f"- {i}" for i in items)]
    return "\n".join(lines) + "\n"

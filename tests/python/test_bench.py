"""pytransformer.bench end to end on a tiny random Marian model: the module runs, its JSON has
the fields, the forced output lengths hold in every engine, comparisons with CTranslate2 and
transformers run when they are installed, and bad input gives clear errors. No timing is
asserted: speed goals live in the benchmark command, not in tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pytransformer import _core
from pytransformer.bench import (
    TABLE_HEADERS,
    TINY_SHAPE,
    BenchmarkError,
    BenchmarkReport,
    BenchmarkSettings,
    MarianShape,
    decoder_bytes_per_token,
    format_markdown,
    format_report,
    measure_memory_bandwidth,
    run_benchmark,
    table_rows,
    write_random_marian,
)
from pytransformer.bench.machine import physical_cores
from pytransformer.convert import convert_marian
from pytransformer.convert._safetensors import read_safetensors

GREEDY_LENGTH = 6
BATCH_SIZE = 3
BATCH_LENGTH = 4


def quick_settings(cache: Path, **overrides) -> BenchmarkSettings:
    values = dict(random_shape="tiny", cache_dir=str(cache), runs=2, batch_runs=1, warmup=1,
                  source_length=8, greedy_length=GREEDY_LENGTH, batch_size=BATCH_SIZE,
                  beam_size=2, batch_length=BATCH_LENGTH, threads=1, timeout_s=300)
    values.update(overrides)
    return BenchmarkSettings(**values)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bench-cache")


@pytest.fixture(scope="module")
def tiny_report(cache):
    return run_benchmark(quick_settings(cache), command="test")


def test_random_marian_directory_has_the_shape_and_converts(tmp_path):
    shape = MarianShape(d_model=24, encoder_layers=1, decoder_layers=3, heads=3, ffn_dim=40,
                        vocab_size=90, max_positions=32)
    directory = write_random_marian(tmp_path / "model", shape, seed=3)
    config = json.loads((directory / "config.json").read_text())
    assert (config["d_model"], config["encoder_layers"], config["decoder_layers"],
            config["encoder_attention_heads"], config["decoder_ffn_dim"],
            config["vocab_size"]) == (24, 1, 3, 3, 40, 90)
    vocab = json.loads((directory / "vocab.json").read_text())
    assert sorted(vocab.values()) == list(range(90))
    assert vocab["</s>"] == 0 and vocab["<unk>"] == 1 and vocab["<pad>"] == 89

    state = read_safetensors(directory / "model.safetensors")
    stored = sum(v.size for k, v in state.items() if k != "final_logits_bias")
    assert stored == shape.parameter_count()
    assert np.all(state["model.shared.weight"][shape.pad_id] == 0)

    model = _core.Model(str(convert_marian(directory, tmp_path / "m.ptm")), threads=1)
    assert model.config["decoder_layers"] == 3 and model.config["target_vocab_size"] == 90
    # Same seed, same weights: the cache can rebuild a model identically.
    again = write_random_marian(tmp_path / "again", shape, seed=3)
    assert (again / "model.safetensors").read_bytes() == \
        (directory / "model.safetensors").read_bytes()


def test_tiny_benchmark_reports_every_workload(tiny_report):
    (result,) = tiny_report.results[:1]
    assert result.engine == "pytransformer" and result.error is None
    assert [r.precision for r in tiny_report.results] == ["float32", "int8", "int8_all"]
    for result in tiny_report.results:
        assert result.error is None
        assert result.load_s >= 0 and result.peak_rss_mb >= result.baseline_rss_mb > 0
        greedy, batch, encoder = (result.workloads[n] for n in ("greedy", "batch", "encoder"))
        assert greedy.tokens == GREEDY_LENGTH  # forced length, checked by the worker too
        assert batch.tokens == BATCH_SIZE * BATCH_LENGTH
        assert BATCH_SIZE * 2 <= encoder.tokens <= BATCH_SIZE * 12
        for workload in (greedy, encoder):
            assert len(workload.times_s) == 2
            assert workload.median_s == pytest.approx(float(np.median(workload.times_s)))
            assert workload.tokens_per_s == pytest.approx(workload.tokens / workload.median_s)
        assert 0 < result.roofline.fraction_of_limit
        assert result.roofline.measured_ms_per_token == pytest.approx(
            greedy.median_s / GREEDY_LENGTH * 1e3)
    assert tiny_report.machine.memory_bandwidth_gbs > 0
    assert tiny_report.machine.physical_cores == physical_cores() >= 1
    assert tiny_report.ratios == [] and tiny_report.skipped == {}


def test_report_is_json_and_text(tiny_report):
    data = json.loads(tiny_report.to_json())
    assert set(data) >= {"date", "command", "settings", "machine", "model", "results",
                         "ratios", "skipped", "load_average_after"}
    result = data["results"][0]
    assert set(result) >= {"engine", "precision", "artifact", "load_s", "peak_rss_mb",
                           "workloads", "roofline", "error"}
    assert set(result["workloads"]["greedy"]) == {"name", "tokens", "times_s", "median_s",
                                                  "tokens_per_s", "note"}
    assert set(result["roofline"]) >= {"weight_bytes_per_token", "bandwidth_gbs",
                                       "min_ms_per_token", "fraction_of_limit"}
    assert data["model"]["d_model"] == TINY_SHAPE.d_model

    text = format_report(tiny_report)
    assert all(header in text for header in TABLE_HEADERS)
    assert "pytransformer float32" in text and "pytransformer int8" in text
    rows = table_rows(tiny_report)
    assert len(rows) == 3 and all(len(row) == len(TABLE_HEADERS) for row in rows)


def test_report_round_trips_through_json_and_renders_markdown(tiny_report, tmp_path):
    again = BenchmarkReport.from_dict(json.loads(tiny_report.to_json()))
    assert again == tiny_report
    markdown = format_markdown(tiny_report)
    assert markdown.startswith("### ") and "| engine | load s |" in markdown
    saved = tmp_path / "report.json"
    saved.write_text(tiny_report.to_json())
    completed = subprocess.run([sys.executable, "-m", "pytransformer", "bench", "--show", str(saved)],
                               capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == format_report(tiny_report)


def test_decoder_bytes_per_token_counts_what_one_step_reads(tiny_report):
    d, f, v, layers = (TINY_SHAPE.d_model, TINY_SHAPE.ffn_dim, TINY_SHAPE.vocab_size,
                       TINY_SHAPE.decoder_layers)
    f32, int8, int8_all = (Path(r.artifact) for r in tiny_report.results)
    # per layer: self q,k,v,out + cross q,out (weights and biases), FFN, three LayerNorms;
    # then the output projection (tied with the embeddings: one row read for the input).
    matrices = layers * (6 * d * d + 2 * d * f) + v * d
    vectors = layers * (6 * d + f + d + 3 * 2 * d)
    assert decoder_bytes_per_token(f32) == 4 * (matrices + vectors + d)
    # int8 (docs/format.md): the FFN and output projection one byte per element plus a float32
    # scale per row, the attention matrices and the embedding row f16.
    int8_matrices, int8_rows = layers * 2 * d * f + v * d, layers * (f + d) + v
    f16_matrices = layers * 6 * d * d
    assert decoder_bytes_per_token(int8) == (int8_matrices + 2 * f16_matrices
                                             + 4 * (int8_rows + vectors) + 2 * d)
    # int8_all: every matrix one byte per element, a float32 scale per row (embedding row too).
    all_rows = int8_rows + layers * 6 * d
    assert decoder_bytes_per_token(int8_all) == (matrices + 4 * (all_rows + vectors) + d + 4)


def test_memory_bandwidth_is_measured():
    assert 0.1 < measure_memory_bandwidth(threads=1, megabytes=32, repeats=2) < 10_000


def test_command_line_json_and_table(cache):
    arguments = ["--random", "tiny", "--cache-dir", str(cache), "--runs", "1", "--batch-runs",
                 "1", "--greedy-length", "3", "--batch-size", "2", "--batch-length", "2",
                 "--precision", "int8", "--workloads", "greedy,encoder", "--threads", "1"]
    completed = subprocess.run([sys.executable, "-m", "pytransformer", "bench", *arguments,
                                "--json"], capture_output=True, text=True, timeout=300,
                               cwd=cache)
    assert completed.returncode == 0, completed.stderr
    data = json.loads(completed.stdout)
    (result,) = data["results"]
    assert result["precision"] == "int8" and set(result["workloads"]) == {"greedy", "encoder"}
    assert data["command"].startswith("pytransformer bench --random tiny")

    completed = subprocess.run([sys.executable, "-m", "pytransformer", "bench", *arguments],
                               capture_output=True, text=True, timeout=300, cwd=cache)
    assert completed.returncode == 0, completed.stderr
    assert "greedy tok/s" in completed.stdout and "roofline" in completed.stdout


@pytest.mark.parametrize("index, precision", [(1, "int8"), (2, "int8_all")])
def test_a_model_file_runs_alone_and_comparisons_say_why_not(tiny_report, cache, index,
                                                            precision):
    model_file = tiny_report.results[index].artifact
    report = run_benchmark(quick_settings(cache, random_shape=None, model=model_file,
                                          compare=("ctranslate2", "transformers"),
                                          workloads=("greedy",)))
    (result,) = report.results
    assert (result.engine, result.precision, result.error) == ("pytransformer", precision, None)
    assert set(report.skipped) == {"ctranslate2", "transformers"}


def test_missing_model_and_bad_settings_raise(tmp_path):
    with pytest.raises(BenchmarkError, match="no such model file or directory"):
        run_benchmark(BenchmarkSettings(model=str(tmp_path / "absent")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchmarkError, match="not a pytransformer file"):
        run_benchmark(BenchmarkSettings(model=str(tmp_path / "empty")))
    with pytest.raises(BenchmarkError, match="unknown engine to compare 'marian'"):
        run_benchmark(BenchmarkSettings(random_shape="tiny", compare=("marian",)))
    with pytest.raises(BenchmarkError, match="either a model path or a random"):
        run_benchmark(BenchmarkSettings())
    with pytest.raises(BenchmarkError, match="runs must be at least 1"):
        run_benchmark(BenchmarkSettings(random_shape="tiny", runs=0))


def test_command_line_reports_a_missing_model(tmp_path):
    completed = subprocess.run([sys.executable, "-m", "pytransformer", "bench",
                                str(tmp_path / "absent")], capture_output=True, text=True,
                               timeout=120, cwd=tmp_path)
    assert completed.returncode == 1
    assert "no such model file or directory" in completed.stderr
    assert "Traceback" not in completed.stderr


@pytest.mark.parametrize("engine", ["ctranslate2", "transformers"])
def test_compare_runs_the_same_workload(cache, engine):
    pytest.importorskip(engine, reason=f"{engine} is not installed")
    if engine == "transformers":
        pytest.importorskip("torch", reason="transformers needs torch")
    report = run_benchmark(quick_settings(cache, compare=(engine,)))
    others = [r for r in report.results if r.engine == engine]
    assert [r.precision for r in others] == (["float32", "int8"] if engine == "ctranslate2"
                                             else ["float32"])
    for result in others:
        # The worker fails an engine whose output is not exactly the forced length.
        assert result.error is None, result.error
        assert result.workloads["greedy"].tokens == GREEDY_LENGTH
        assert result.workloads["batch"].tokens == BATCH_SIZE * BATCH_LENGTH
        assert result.roofline is not None
    measures = {(r.other, r.precision, r.other_precision, r.measure) for r in report.ratios}
    for result in others:
        for measure in ("greedy", "batch", "encoder", "load", "peak_rss"):
            assert (engine, result.precision, "", measure) in measures
            if result.precision == "int8":  # CTranslate2 int8 quantizes every matrix
                assert (engine, "int8_all", "int8", measure) in measures
    assert all(r.value > 0 for r in report.ratios)
    if engine == "ctranslate2":
        assert "pytransformer int8_all vs ctranslate2 int8: greedy" in format_report(report)


def test_startup_check_times_real_cold_translations(marian: Path) -> None:
    """`bench --startup` runs the real command in fresh processes and judges the median
    against the goal; what is checked here is that it measures and reports, not a time."""
    from pytransformer.bench import startup

    report = startup.measure_startup(str(marian), runs=2, warmup=0)
    assert len(report.seconds) == len(report.interpreter_seconds) == 2
    assert report.output and all(seconds > 0 for seconds in report.seconds)
    assert report.command[-4:] == ["translate", "--model", str(marian), "hello"]
    text = startup.format_startup_report(report)
    assert f"over {report.runs} cold runs" in text and "python -m pytransformer" in text
    assert json.loads(report.to_json())["within_goal"] == report.within_goal
    slow = startup.StartupReport(command=report.command, runs=3, seconds=[0.2, 0.5, 0.4],
                                 interpreter_seconds=[0.01] * 3, output="x")
    assert slow.median_s == 0.4 and not slow.within_goal and "OVER the goal" in \
        startup.format_startup_report(slow)
    with pytest.raises(startup.StartupBenchError):
        startup.measure_startup(str(marian) + ".missing", runs=1, warmup=0)


def test_corpus_memory_check_translates_files_of_each_size(tmp_path: Path) -> None:
    """`bench --corpus-memory` translates real files in fresh processes and reports each peak;
    checked for what it measures, not for a figure."""
    from pytransformer.bench import corpus_memory

    report = corpus_memory.measure_corpus_memory((40, 400), cache_dir=str(tmp_path))
    assert [run.lines for run in report.runs] == [40, 400]
    assert all(run.peak_rss_mb > 0 and run.seconds > 0 for run in report.runs)
    assert json.loads(report.to_json())["flat"] == report.flat
    assert "largest / smallest peak" in corpus_memory.format_corpus_memory_report(report)
    corpus_memory.write_synthetic_corpus(tmp_path / "c.txt", 25)
    lines = (tmp_path / "c.txt").read_text().split("\n")
    assert len(lines) == 26 and lines[9] == "" and lines[-1] == ""

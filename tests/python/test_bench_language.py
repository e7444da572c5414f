"""`pytransformer bench` on language models (pytransformer.bench.language) end to end, through
the CLI: a tiny Llama .ptm runs pp and tg at small sizes and reports positive tokens/s and a
bandwidth share, a thread list gives a row per count, saved reports show again, a tiny GGUF
file is converted (cached) and llama.cpp is reported as skipped, with its reason, when
llama_cpp is not importable (and measured when it is). No timing is asserted."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pytransformer import bench
from pytransformer.bench import language
from pytransformer.cli.main import app

sys.path.insert(0, str(Path(__file__).resolve().parent))

runner = CliRunner()
PROMPT, GEN = 16, 6
QUICK = ["--prompt-tokens", str(PROMPT), "--gen-tokens", str(GEN), "--runs", "2",
         "--warmup", "1", "--timeout", "300"]


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Llama .ptm (2 layers, d_model 64, grouped-query, tied, 640 positions)."""
    pytest.importorskip("torch", reason="torch builds the test model")
    pytest.importorskip("transformers", reason="transformers builds the test model")
    pytest.importorskip("tokenizers", reason="the test model's tokenizer needs tokenizers")
    from llama_models import build_llama

    from pytransformer.convert import convert_llama_hf

    root = tmp_path_factory.mktemp("bench-lm")
    build_llama(root / "hf", kv_heads=2, tied=True, max_position_embeddings=640)
    return convert_llama_hf(root / "hf", root / "tiny.ptm")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The GGUF converter tests' tiny llama file (written with the gguf package)."""
    pytest.importorskip("gguf", reason="the test file is written with the gguf package")
    from test_convert_gguf import write_gguf

    return write_gguf(tmp_path_factory.mktemp("bench-gguf") / "tiny.gguf", "llama")


def test_a_language_model_runs_pp_and_tg(tiny_lm: Path, tmp_path: Path) -> None:
    result = invoke("bench", str(tiny_lm), *QUICK, "--threads", "1", "--cache-dir",
                    str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "language_model"
    assert report["command"].startswith("pytransformer bench")
    assert report["settings"]["threads"] == [1]
    assert report["model"]["architecture"] == "llama" and report["model"]["layers"] == 2
    [ours] = report["results"]
    assert (ours["engine"], ours["precision"], ours["threads"]) == ("pytransformer", "float32", 1)
    assert ours["error"] is None
    assert ours["weight_bytes_per_token"] == bench.decoder_bytes_per_token(tiny_lm)
    pp, tg = ours["tests"][f"pp{PROMPT}"], ours["tests"][f"tg{GEN}"]
    assert pp["tokens"] == PROMPT and tg["tokens"] == GEN - 1
    for test in (pp, tg):
        assert len(test["times_s"]) == 2 and all(t > 0 for t in test["times_s"])
        assert test["tokens_per_s"] > 0 and test["stddev"] >= 0
    assert pp["bandwidth_share"] is None and tg["bandwidth_share"] > 0
    assert ours["peak_rss_mb"] > 0 and ours["load_s"] > 0
    assert "GGUF" in report["skipped"]["llama.cpp"]
    assert report["ratios"] == []


def test_a_thread_list_gives_a_row_per_count_and_reports_show_again(
        tiny_lm: Path, tmp_path: Path) -> None:
    result = invoke("bench", str(tiny_lm), *QUICK, "--threads", "1,2", "--workloads", "tg",
                    "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [(r["threads"], list(r["tests"])) for r in report["results"]] == \
        [(1, [f"tg{GEN}"]), (2, [f"tg{GEN}"])]
    saved = tmp_path / "report.json"
    saved.write_text(result.stdout)
    shown = invoke("bench", "--show", str(saved))
    assert shown.exit_code == 0, shown.output
    assert "t/s" in shown.stdout and "bandwidth" in shown.stdout
    assert shown.stdout.count(f"tg{GEN}") >= 2 and "pytransformer float32, 2 threads" in \
        shown.stdout
    markdown = invoke("bench", "--show", str(saved), "--markdown")
    assert "| model | size | params | engine | precision | threads | test | t/s |" in \
        markdown.stdout
    again = invoke("bench", "--show", str(saved), "--json")
    assert json.loads(again.stdout) == report


def test_language_model_options_are_checked(tiny_lm: Path) -> None:
    assert "unknown workload greedy" in one_line_error(
        invoke("bench", str(tiny_lm), "--workloads", "greedy"))
    assert "unknown engine ctranslate2" in one_line_error(
        invoke("bench", str(tiny_lm), "--compare", "ctranslate2"))
    assert "context holds 640 positions" in one_line_error(
        invoke("bench", str(tiny_lm), "--prompt-tokens", "1000"))
    assert "--threads" in one_line_error(invoke("bench", str(tiny_lm), "--threads", "1,x"))
    assert invoke("bench", str(tiny_lm), "--gen-tokens", "1").exit_code == 2
    assert "for language models only" in one_line_error(
        invoke("bench", "--random", "tiny", "--threads", "1,2"))


def test_language_models_are_told_from_translation_models(tiny_lm: Path, tiny_gguf: Path,
                                                          marian: Path, tmp_path: Path) -> None:
    assert bench.is_language_model(tiny_lm) and bench.is_language_model(tiny_gguf)
    assert not bench.is_language_model(marian)
    assert not bench.is_language_model(tmp_path)
    (tmp_path / "junk.ptm").write_bytes(b"not a model")
    assert not bench.is_language_model(tmp_path / "junk.ptm")


def test_a_gguf_file_is_converted_once_and_llama_cpp_skipped_without_llama_cpp(
        tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(language, "_LLAMA_CPP_MODULE", "no_llama_cpp_here")
    arguments = ["bench", str(tiny_gguf), *QUICK, "--threads", "1", "--precision",
                 "float32,f16,int8_all", "--cache-dir", str(tmp_path), "--json"]
    result = invoke(*arguments)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["format"] == "gguf" and report["model"]["gguf_type"] == "F32"
    assert "not installed" in report["skipped"]["llama.cpp"]
    assert [r["precision"] for r in report["results"]] == ["float32", "f16", "int8_all"]
    for ours in report["results"]:
        assert ours["error"] is None and ours["conversion_s"] is not None
        assert Path(ours["artifact"]).is_relative_to(tmp_path)
        assert ours["tests"][f"tg{GEN}"]["tokens_per_s"] > 0
        assert ours["params"] == report["model"]["params"]
    f32, f16, int8 = (r["weight_bytes_per_token"] for r in report["results"])
    assert int8 < f16 < f32
    again = json.loads(invoke(*arguments).stdout)
    assert [r["conversion_s"] for r in again["results"]] == [None] * 3  # from the cache


def test_llama_cpp_runs_on_the_same_gguf_file(tiny_gguf: Path, tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="llama.cpp is measured through llama-cpp-python")
    result = invoke("bench", str(tiny_gguf), *QUICK, "--threads", "1", "--precision",
                    "int8_all", "--cache-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["skipped"] == {}
    _, theirs = report["results"]
    assert theirs["engine"] == "llama.cpp" and theirs["error"] is None, theirs["error"]
    assert theirs["artifact"] == str(tiny_gguf) and theirs["precision"] == "F32"
    assert theirs["tests"][f"pp{PROMPT}"]["tokens_per_s"] > 0
    assert theirs["tests"][f"tg{GEN}"]["bandwidth_share"] > 0
    assert {(r["test"], r["threads"]) for r in report["ratios"]} == \
        {(f"pp{PROMPT}", 1), (f"tg{GEN}", 1)}


def test_block_precisions_are_converted_named_and_sized(tmp_path: Path) -> None:
    """"gguf", "q8_0" and "q4_1" conversions of a GGUF file with Q8_0 / Q4_1 tensors: a .ptm
    of each is named by its precision again, and its size counts the blocks' bytes."""
    pytest.importorskip("gguf", reason="the test file is written with the gguf package")
    import gguf
    from test_convert_gguf import BLOCK_FILE_TYPES, TOKENS, _tiny_tensors, write_gguf
    from tiny_models import file_layout

    from pytransformer import _core
    from pytransformer.format import stored_bytes

    source = _tiny_tensors("llama", len(TOKENS), seed=0)
    path = write_gguf(tmp_path / "blocks.gguf", tensors={
        name: (gguf.quants.quantize(source[name], kind), kind)
        for name, kind in BLOCK_FILE_TYPES.items()})
    sizes = {}
    for precision in ("gguf", "q8_0", "q4_1", "f16", "float32"):
        artifact, seconds = language._converted(path, precision, tmp_path / "cache")
        assert seconds is not None and language._file_precision(artifact) == precision
        result = language.LanguageResult(engine="pytransformer", precision=precision,
                                         threads=1, artifact=str(artifact))
        language._describe_ptm(result)
        layout = file_layout(artifact.read_bytes())
        assert result.size_bytes == sum({entry.data_offset: entry.size
                                         for entry in layout.tensors}.values())
        # Every tensor is read per token (the tied output projection among them), and one
        # embedding row.
        embed_dtype, (_, width) = _core.ModelFile(str(artifact)).tensor_info("dec.embed.weight")
        assert result.weight_bytes_per_token == result.size_bytes + stored_bytes(embed_dtype,
                                                                                 (1, width))
        sizes[precision] = result.size_bytes
    assert sizes["q4_1"] < sizes["q8_0"] < sizes["gguf"] < sizes["f16"] < sizes["float32"]

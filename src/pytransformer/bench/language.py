"""The language-model benchmark: llama-bench's two workloads on a decoder-only model (a `.ptm`
file of `general.architecture` llama, or a llama.cpp `.gguf` file), for pytransformer and, on
a GGUF file, llama.cpp (through llama-cpp-python) on the same file and thread count.

    from pytransformer.bench.language import LanguageBenchSettings, run_language_benchmark
    report = run_language_benchmark(LanguageBenchSettings(model="model.gguf", threads=(1, 2)))
    print(format_language_report(report))      # or report.to_json()

Workloads (P = prompt_tokens, N = gen_tokens; ids drawn from the ordinary vocabulary with a
fixed seed, the same for every engine; the end-of-sequence and end-of-turn ids never occur):
- ppP (prompt processing): one pass over a P-token prompt, P / its time. pytransformer:
  `generate(prompt, max_length=1)`, which runs the first P - 1 tokens as one matrix pass and
  the last as one cached step that yields the next token's logits; llama.cpp: `eval(prompt)`
  after `reset()`, one batch of P tokens with the logits of the last. Both process P tokens
  and compute one row of logits.
- tgN (text generation): N tokens one at a time from an empty context, timed over steps 2..N
  (positions 1..N-1): (N - 1) / time. pytransformer: time(generate([t], max_length=N)) -
  time(generate([t], max_length=1)), end ids suppressed so it never stops early, each step
  choosing its token by greedy argmax over the logits; llama.cpp: `eval([t])` untimed, then N -
  1 timed `eval([id])` of fixed random ids (as llama-bench feeds tokens without sampling).
Each run gives one tokens/s figure; the report shows the median of the runs and their
standard deviation, after untimed warm-up runs (one pp pass and a 4-token generation each).

Every engine, precision and thread count runs in a process of its own (`python -m
pytransformer.bench.language`, a JSON job on stdin, one result line on stdout, as worker.py),
so memory and thread pools never interfere. A GGUF file is converted for pytransformer with
`pytransformer.convert.convert_gguf` (every tensor dequantised to float32, then requantised
for int8 / int8_all / q8_0 / q4_1; gguf: the file's Q8_0 and Q4_1 matrices kept as they are, the
others f16), cached under the bench cache directory.

Bandwidth share (tg only): the bytes of stored weights one generation step reads (every
layer's matrices and norms, the final norm, the output projection and one embedding row,
counted from the file's tensor directory: the .ptm for pytransformer, the GGUF for llama.cpp)
x tokens/s / the measured memory read bandwidth (machine.measure_memory_bandwidth). The K/V
cache read by attention is left out (it is given apart in the JSON).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.util
import json
import os
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pytransformer.bench.machine import (
    MachineInfo,
    load_average,
    machine_info,
    measure_memory_bandwidth,
    physical_cores,
)
from pytransformer.bench.random_model import default_cache_dir
from pytransformer.bench.report import format_table
from pytransformer.bench.worker import peak_rss_mb, run_in_child, serve

OURS = "pytransformer"
LLAMA_CPP = "llama.cpp"
LM_ENGINES = (LLAMA_CPP,)                      # engines to compare with (--compare)
# pytransformer's conversions of a GGUF file (convert_gguf's quantize; float32: None), and the
# ones measured by default.
LM_PRECISIONS = ("float32", "f16", "bf16", "int8", "int8_all", "q8_0", "q4_1", "gguf")
LM_DEFAULT_PRECISIONS = ("gguf", "f16", "float32")  # what chat -m runs first
LM_WORKLOADS = ("pp", "tg")
LANGUAGE_REPORT_KIND = "language_model"  # the "kind" of a saved report (--show)
# Bumped when what a conversion stores changes, so cached conversions are not reused.
_CONVERSION_VERSION = 1
_LLAMA_CPP_MODULE = "llama_cpp"  # llama-cpp-python's module (tests hide it)


class LanguageBenchError(ValueError):
    """A language-model benchmark cannot run as asked (missing model, bad option)."""


@dataclass
class LanguageBenchSettings:
    """What to measure (see the module docstring for the exact method)."""

    model: str = ""                            # a .gguf file or a llama .ptm file
    precisions: tuple[str, ...] = LM_DEFAULT_PRECISIONS  # of a GGUF file; a .ptm runs as is
    compare: tuple[str, ...] = LM_ENGINES
    workloads: tuple[str, ...] = LM_WORKLOADS
    threads: tuple[int, ...] = ()              # each measured; empty: the physical cores
    prompt_tokens: int = 512                   # pp
    gen_tokens: int = 128                      # tg
    runs: int = 3                              # median reported
    warmup: int = 1
    seed: int = 0                              # prompt and fed ids
    cache_dir: str | None = None               # conversions; None: default_cache_dir()
    timeout_s: float | None = None             # per engine process

    def validate(self) -> None:
        if not self.model:
            raise LanguageBenchError("give the language model to measure")
        for what, values, known in (("precision", self.precisions, LM_PRECISIONS),
                                    ("engine to compare", self.compare, LM_ENGINES),
                                    ("workload", self.workloads, LM_WORKLOADS)):
            for value in values:
                if value not in known:
                    raise LanguageBenchError(f"unknown {what} {value!r} "
                                             f"(known: {', '.join(known)})")
        if not self.precisions or not self.workloads:
            raise LanguageBenchError("nothing to measure: no precision or no workload")
        if self.prompt_tokens < 1 or self.runs < 1:
            raise LanguageBenchError("prompt_tokens and runs must be at least 1")
        if self.gen_tokens < 2:
            raise LanguageBenchError("gen_tokens must be at least 2 (the first step is not "
                                     "timed)")
        if self.warmup < 0 or any(t < 1 for t in self.threads):
            raise LanguageBenchError("warmup must not be negative, threads must be positive")


@dataclass
class LanguageTest:
    name: str                       # "pp512", "tg128"
    tokens: int                     # tokens timed per run (tg: gen_tokens - 1)
    times_s: list[float]            # one per run
    tokens_per_s: float             # median over the runs
    stddev: float                   # standard deviation of the runs' tokens/s (0: one run)
    bandwidth_share: float | None = None  # tg: weight bytes/token x tokens/s / bandwidth


@dataclass
class LanguageResult:
    engine: str
    precision: str                  # ours: float32 / int8 / int8_all / f16...; llama.cpp: the
    threads: int                    # GGUF's main tensor type (Q4_1)
    artifact: str
    size_bytes: int = 0             # stored tensor bytes (tied tensors once)
    params: int = 0                 # the model's (of a GGUF file: the GGUF's)
    weight_bytes_per_token: int = 0
    kv_bytes_per_position: int = 0  # K/V cache bytes attention reads per cached position
    conversion_s: float | None = None  # None: cached or not converted
    load_s: float | None = None
    baseline_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    tests: dict[str, LanguageTest] = field(default_factory=dict)
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision}"


@dataclass
class LanguageRatio:
    """ours / llama.cpp tokens/s of one test at one thread count (> 1: pytransformer faster)."""

    precision: str
    other_precision: str
    threads: int
    test: str
    value: float


@dataclass
class LanguageReport:
    date: str
    command: str
    settings: LanguageBenchSettings
    machine: MachineInfo
    model: dict[str, Any]
    results: list[LanguageResult]
    ratios: list[LanguageRatio]
    skipped: dict[str, str]         # engine -> why it did not run
    load_average_after: tuple[float, float, float]
    kind: str = LANGUAGE_REPORT_KIND

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LanguageReport:
        """The report to_dict() (or a --json file) describes."""
        if data.get("kind") != LANGUAGE_REPORT_KIND:
            raise KeyError("kind")
        results = []
        for item in data["results"]:
            item = dict(item, tests={name: LanguageTest(**test)
                                     for name, test in item["tests"].items()})
            results.append(LanguageResult(**item))
        settings = {key: tuple(value) if isinstance(value, list) else value
                    for key, value in data["settings"].items()}
        machine = dict(data["machine"], load_average=tuple(data["machine"]["load_average"]))
        return cls(date=data["date"], command=data["command"],
                   settings=LanguageBenchSettings(**settings), machine=MachineInfo(**machine),
                   model=data["model"], results=results,
                   ratios=[LanguageRatio(**ratio) for ratio in data["ratios"]],
                   skipped=data["skipped"],
                   load_average_after=tuple(data["load_average_after"]))


def is_language_model(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is a GGUF file or a pytransformer file of a decoder-only model."""
    path = Path(path)
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as file:
            if file.read(4) == b"GGUF":
                return True
    except OSError:
        return False
    from pytransformer import _core

    try:
        return _core.ModelFile(str(path)).metadata.get("general.architecture") == "llama"
    except Exception:  # not a model file: the translation benchmark reports why
        return False


def run_language_benchmark(settings: LanguageBenchSettings, command: str = "",
                           progress: Callable[[str], None] | None = None) -> LanguageReport:
    """Runs the benchmark `settings` describe; progress(message) is told what is happening.
    Raises LanguageBenchError for a missing model or invalid settings."""
    settings.validate()
    say = progress or (lambda message: None)
    model_path = Path(settings.model).expanduser().resolve()
    if not model_path.is_file():
        raise LanguageBenchError(f"{settings.model}: no such model file")
    if not is_language_model(model_path):
        raise LanguageBenchError(f"{model_path}: not a GGUF file or a pytransformer language "
                                 "model (general.architecture llama)")
    is_gguf = _is_gguf(model_path)
    cache = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
    thread_counts = tuple(dict.fromkeys(settings.threads)) or (physical_cores(),)

    skipped: dict[str, str] = {}
    compare = [engine for engine in settings.compare
               if not _skip(engine, _unavailable_reason(engine, is_gguf), skipped)]

    ours: list[LanguageResult] = []
    if is_gguf:
        for precision in settings.precisions:
            result = LanguageResult(engine=OURS, precision=precision, threads=0, artifact="")
            try:
                say(f"converting for {OURS} {precision} (cached under {cache})")
                artifact, result.conversion_s = _converted(model_path, precision, cache)
                result.artifact = str(artifact)
            except Exception as error:  # reported per precision
                result.error = f"conversion failed: {type(error).__name__}: {error}"
            ours.append(result)
    else:
        ours.append(LanguageResult(engine=OURS, precision=_file_precision(model_path),
                                   threads=0, artifact=str(model_path)))
    first = next((r for r in ours if not r.error), None)
    if first is None:
        raise LanguageBenchError(f"{model_path}: could not prepare the model: {ours[0].error}")
    for result in ours:
        if not result.error:
            _describe_ptm(result)
    info = _model_info(model_path, Path(first.artifact), first)
    others = []
    if is_gguf:
        gguf = _describe_gguf(LanguageResult(engine=LLAMA_CPP, precision="", threads=0,
                                             artifact=str(model_path)))
        # The model's parameters, whatever a conversion stores (int8 unties the embedding).
        info.update(params=gguf.params, gguf_type=gguf.precision)
        for result in ours:
            result.params = gguf.params
        if LLAMA_CPP in compare:
            others.append(gguf)
    _check_lengths(settings, info)
    job_base = _workload(settings, info)

    say("measuring memory bandwidth")
    machine = machine_info()
    results: list[LanguageResult] = []
    for threads in thread_counts:
        for template in [*ours, *others]:
            result = dataclasses.replace(template, threads=threads, tests={})
            results.append(result)
            if result.error:
                continue
            say(f"running {result.label}, {threads} thread{'s' if threads > 1 else ''}")
            _run_worker(result, {**job_base, "engine": result.engine,
                                 "artifact": result.artifact, "threads": threads},
                        settings.timeout_s)
        for template in ours:  # a conversion is reported once, with the first thread count
            template.conversion_s = None

    # Other processes share the memory bus: measure again and keep the better figure.
    say("measuring memory bandwidth again")
    machine.memory_bandwidth_gbs = max(machine.memory_bandwidth_gbs, measure_memory_bandwidth())
    for result in results:
        for test in result.tests.values():
            if test.name.startswith("tg"):
                test.bandwidth_share = (result.weight_bytes_per_token * test.tokens_per_s
                                        / (machine.memory_bandwidth_gbs * 1e9))
    return LanguageReport(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command, settings=dataclasses.replace(settings, threads=thread_counts),
        machine=machine, model={**info, "path": str(model_path),
                                "format": "gguf" if is_gguf else "pytransformer"},
        results=results, ratios=_ratios(results), skipped=skipped,
        load_average_after=load_average())


# ---------------------------------------------------------------------------------------------
# models: conversions, sizes, bytes per token


def _is_gguf(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == b"GGUF"


def _skip(engine: str, reason: str | None, skipped: dict[str, str]) -> bool:
    if reason:
        skipped[engine] = reason
    return bool(reason)


def _unavailable_reason(engine: str, is_gguf: bool) -> str | None:
    if not is_gguf:
        return "needs the GGUF file (it cannot load a pytransformer file)"
    if importlib.util.find_spec(_LLAMA_CPP_MODULE) is None:
        return f"not installed (no module {_LLAMA_CPP_MODULE}: pip install llama-cpp-python)"
    return None


def _converted(gguf: Path, precision: str, cache: Path) -> tuple[Path, float | None]:
    from pytransformer.bench.runner import _atomic_convert, _fingerprint

    output = (cache / "converted" / f"{gguf.stem}-{_fingerprint(gguf)}"
              / f"pytransformer-{precision}-lm-v{_CONVERSION_VERSION}.ptm")
    if output.exists():
        return output, None
    from pytransformer.convert import convert_gguf

    quantize = None if precision == "float32" else precision
    return _atomic_convert(output, lambda tmp: convert_gguf(gguf, tmp, quantize=quantize))


def _file_precision(path: Path) -> str:
    """The precision a pytransformer file was written at, in --precision's names."""
    from pytransformer import _core

    file = _core.ModelFile(str(path))
    out = file.tensor_info("dec.out_proj.weight")[0]
    if out == "int8":
        return ("int8_all" if file.tensor_info("dec.0.attn_self_q.weight")[0] == "int8"
                else "int8")
    ffn = file.tensor_info("dec.0.ffn_gate_up.weight")[0]
    if {out, ffn} & {"q8_0", "q4_1"} and out != ffn:
        return "gguf"  # blocks of a GGUF file's types (e.g. a Q8_0 embedding, Q4_1 layers)
    return {"f32": "float32"}.get(out, out)


def _describe_ptm(result: LanguageResult) -> None:
    """Size, parameters and bytes per generated token from the .ptm's tensor directory."""
    import numpy as np

    from pytransformer import _core
    from pytransformer.bench.runner import decoder_bytes_per_token
    from pytransformer.format import stored_bytes

    file = _core.ModelFile(result.artifact)
    seen: set[int] = set()
    for name in file.tensor_names():
        offset = file.tensor_offset(name)
        if offset in seen:  # tied: stored once
            continue
        seen.add(offset)
        dtype, shape = file.tensor_info(name)
        count = int(np.prod(shape))
        result.size_bytes += stored_bytes(dtype, tuple(shape))
        if not name.endswith(".scale"):
            result.params += count
    result.weight_bytes_per_token = decoder_bytes_per_token(Path(result.artifact))
    meta = file.metadata
    head_dim = meta["model.d_model"] // meta["model.decoder_heads"]
    result.kv_bytes_per_position = (2 * meta["model.decoder_layers"] * meta["model.kv_heads"]
                                    * head_dim * 4)  # float32 K/V cache


def _describe_gguf(result: LanguageResult) -> LanguageResult:
    """Size, parameters, main tensor type and bytes per generated token from the GGUF tensor
    directory: every tensor but the embedding, of which one row, plus the whole embedding
    again when it is also the output projection (no output.weight)."""
    from pytransformer.gguf import read_gguf

    gguf = read_gguf(result.artifact)
    tensors = gguf.tensors
    result.size_bytes = sum(t.nbytes for t in tensors.values())
    result.params = sum(t.n_elements for t in tensors.values())
    embedding = tensors.get("token_embd.weight")
    per_token = result.size_bytes
    if embedding is not None:
        per_token -= embedding.nbytes
        per_token += embedding.nbytes // embedding.shape[0]
        if "output.weight" not in tensors:
            per_token += embedding.nbytes
    result.weight_bytes_per_token = per_token
    types: Counter[str] = Counter()
    for name, tensor in tensors.items():
        if name.startswith("blk.") and len(tensor.shape) == 2:
            types[tensor.type] += tensor.nbytes
    result.precision = types.most_common(1)[0][0] if types else "?"
    arch = gguf.metadata.get("general.architecture", "llama")
    layers = int(gguf.metadata.get(f"{arch}.block_count", 0))
    heads = int(gguf.metadata.get(f"{arch}.attention.head_count", 1))
    kv_heads = int(gguf.metadata.get(f"{arch}.attention.head_count_kv", heads))
    width = int(gguf.metadata.get(f"{arch}.embedding_length", 0))
    result.kv_bytes_per_position = 2 * layers * kv_heads * (width // heads) * 2  # f16 K/V
    return result


def _model_info(path: Path, ours_file: Path, ours: LanguageResult) -> dict[str, Any]:
    from pytransformer import _core

    meta = _core.ModelFile(str(ours_file)).metadata
    end_ids = sorted({int(meta["tokens.eos_id"]), *map(int, meta.get("tokens.stop_ids") or [])})
    special = {int(value) for key, value in meta.items()
               if key.startswith("tokens.") and key.endswith("_id")}
    return {
        "name": path.stem,
        "architecture": meta["general.architecture"],
        "params": ours.params,
        "d_model": meta["model.d_model"], "layers": meta["model.decoder_layers"],
        "heads": meta["model.decoder_heads"], "kv_heads": meta["model.kv_heads"],
        "ffn_dim": meta["model.decoder_ffn_dim"], "vocab_size": meta["model.target_vocab_size"],
        "max_positions": meta["model.max_positions"],
        "end_ids": end_ids, "special_ids": sorted(special | set(end_ids)),
    }


def _check_lengths(settings: LanguageBenchSettings, info: dict[str, Any]) -> None:
    limit = info["max_positions"]
    if "pp" in settings.workloads and settings.prompt_tokens + 1 > limit:
        raise LanguageBenchError(f"--prompt-tokens {settings.prompt_tokens}: the model's "
                                 f"context holds {limit} positions")
    if "tg" in settings.workloads and settings.gen_tokens + 1 > limit:
        raise LanguageBenchError(f"--gen-tokens {settings.gen_tokens}: the model's context "
                                 f"holds {limit} positions")


def _workload(settings: LanguageBenchSettings, info: dict[str, Any]) -> dict[str, Any]:
    """The job every worker receives: the same ids for every engine."""
    import numpy as np

    rng = np.random.default_rng(settings.seed)
    ordinary = np.setdiff1d(np.arange(info["vocab_size"]), info["special_ids"])
    if ordinary.size == 0:
        raise LanguageBenchError("the vocabulary holds only special tokens")

    def ids(count: int) -> list[int]:
        return [int(i) for i in rng.choice(ordinary, size=count)]

    chosen = set(settings.workloads)
    return {
        "runs": settings.runs, "warmup": settings.warmup,
        "n_ctx": settings.prompt_tokens + settings.gen_tokens,
        "end_ids": info["end_ids"],
        "pp": {"ids": ids(settings.prompt_tokens)} if "pp" in chosen else None,
        "tg": {"ids": ids(settings.gen_tokens)} if "tg" in chosen else None,
    }


# ---------------------------------------------------------------------------------------------
# workers


def _run_worker(result: LanguageResult, job: dict[str, Any], timeout_s: float | None) -> None:
    output = run_in_child("pytransformer.bench.language", job, job["threads"], timeout_s)
    if "error" in output:
        result.error = output["error"]
        return
    result.load_s = output["load_s"]
    result.baseline_rss_mb = output["baseline_rss_mb"]
    result.peak_rss_mb = output["peak_rss_mb"]
    for name, measured in output["tests"].items():
        speeds = [measured["tokens"] / seconds for seconds in measured["times_s"]]
        result.tests[name] = LanguageTest(
            name=name, tokens=measured["tokens"], times_s=measured["times_s"],
            tokens_per_s=statistics.median(speeds),
            stddev=statistics.stdev(speeds) if len(speeds) > 1 else 0.0)


class _PytransformerEngine:
    """pytransformer's core (_core.LanguageModel, _core.generate) on a .ptm file."""

    def __init__(self, job: dict[str, Any]) -> None:
        from pytransformer import _core

        self.core, self.job, self.model = _core, job, None

    def load(self) -> None:
        self.model = self.core.LanguageModel(self.job["artifact"], self.job["threads"])

    def _generate(self, prompt: list[int], length: int) -> float:
        options = self.core.SearchOptions(self.model, beam_size=1, sampling=False,
                                          max_length=length, suppressed_ids=self.job["end_ids"])
        start = time.perf_counter()
        [[(tokens, _, _)]] = self.core.generate(self.model, [prompt], options)
        seconds = time.perf_counter() - start
        if len(tokens) != length:
            raise RuntimeError(f"generated {len(tokens)} tokens, expected {length} (the end "
                               "ids were not suppressed)")
        return seconds

    def prompt(self, ids: list[int]) -> float:
        return self._generate(ids, 1)

    def generation(self, ids: list[int]) -> float:
        return self._generate(ids[:1], len(ids)) - self._generate(ids[:1], 1)


class _LlamaCppEngine:
    """llama.cpp through llama-cpp-python's Llama on the GGUF file: eval() of token ids."""

    def __init__(self, job: dict[str, Any]) -> None:
        import importlib

        self.llama_cpp = importlib.import_module(_LLAMA_CPP_MODULE)
        self.job, self.model = job, None

    def load(self) -> None:
        threads = self.job["threads"]
        self.model = self.llama_cpp.Llama(
            model_path=self.job["artifact"], n_threads=threads, n_threads_batch=threads,
            n_ctx=self.job["n_ctx"], n_batch=512, n_ubatch=512, logits_all=False,
            verbose=False)

    def prompt(self, ids: list[int]) -> float:
        self.model.reset()
        start = time.perf_counter()
        self.model.eval(ids)
        return time.perf_counter() - start

    def generation(self, ids: list[int]) -> float:
        self.model.reset()
        self.model.eval(ids[:1])
        start = time.perf_counter()
        for token in ids[1:]:
            self.model.eval([token])
        return time.perf_counter() - start


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One engine's workloads in this process (the worker's body)."""
    engine_class = {OURS: _PytransformerEngine, LLAMA_CPP: _LlamaCppEngine}[job["engine"]]
    engine = engine_class(job)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    engine.load()
    result: dict[str, Any] = {"load_s": time.perf_counter() - start,
                              "baseline_rss_mb": baseline, "tests": {}}
    pp, tg = job.get("pp"), job.get("tg")
    for _ in range(job["warmup"]):  # pages the weights in, starts the thread pools
        if pp:
            engine.prompt(pp["ids"])
        engine.generation((tg or pp)["ids"][:4])
    if pp:
        result["tests"][f"pp{len(pp['ids'])}"] = {
            "tokens": len(pp["ids"]),
            "times_s": [engine.prompt(pp["ids"]) for _ in range(job["runs"])]}
    if tg:
        result["tests"][f"tg{len(tg['ids'])}"] = {
            "tokens": len(tg["ids"]) - 1,
            "times_s": [engine.generation(tg["ids"]) for _ in range(job["runs"])]}
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main() -> None:
    serve(run_job)


def _ratios(results: list[LanguageResult]) -> list[LanguageRatio]:
    ratios = []
    for ours in (r for r in results if r.engine == OURS and not r.error):
        for other in (r for r in results if r.engine == LLAMA_CPP and not r.error
                      and r.threads == ours.threads):
            for name, mine in ours.tests.items():
                theirs = other.tests.get(name)
                if theirs and theirs.tokens_per_s > 0:
                    ratios.append(LanguageRatio(ours.precision, other.precision, ours.threads,
                                                name, mine.tokens_per_s / theirs.tokens_per_s))
    return ratios


# ---------------------------------------------------------------------------------------------
# report

LANGUAGE_TABLE_HEADERS = ("model", "size", "params", "engine", "precision", "threads", "test",
                          "t/s", "bandwidth")


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.2f} MiB"


def _params(count: int) -> str:
    return f"{count / 1e9:.2f} B" if count >= 1e9 else f"{count / 1e6:.2f} M"


def language_table_rows(report: LanguageReport) -> list[tuple[str, ...]]:
    """One row per engine, precision, thread count and test, in LANGUAGE_TABLE_HEADERS order."""
    rows = []
    name = report.model["name"]
    for result in report.results:
        head = (name, _mib(result.size_bytes), _params(result.params), result.engine,
                result.precision, str(result.threads))
        if result.error:
            rows.append((*head, "-", f"error: {result.error}", ""))
            continue
        for test in result.tests.values():
            share = "-" if test.bandwidth_share is None else f"{test.bandwidth_share:.0%}"
            rows.append((*head, test.name, f"{test.tokens_per_s:.2f} ± {test.stddev:.2f}",
                         share))
    return rows


def language_context_lines(report: LanguageReport) -> list[str]:
    s, m, model = report.settings, report.machine, report.model
    threads = ", ".join(str(t) for t in s.threads)
    return [
        f"model: {model['name']} ({model['format']}; {model['architecture']}, "
        f"{_params(model['params'])} parameters, d_model {model['d_model']}, "
        f"{model['layers']} layers, {model['heads']} heads ({model['kv_heads']} K/V), "
        f"FFN {model['ffn_dim']}, vocab {model['vocab_size']})",
        f"machine: {m.cpu_model}, {m.physical_cores} physical cores, {m.logical_cpus} CPUs; "
        f"load average {m.load_average[0]:.2f} before, {report.load_average_after[0]:.2f} "
        f"after; memory read bandwidth {m.memory_bandwidth_gbs:.1f} GB/s",
        f"workload: pp{s.prompt_tokens} = one pass over a {s.prompt_tokens}-token prompt; "
        f"tg{s.gen_tokens} = {s.gen_tokens} tokens one at a time, steps 2..{s.gen_tokens} "
        f"timed; random ordinary ids; median of {s.runs} runs ± stddev; threads {threads}",
    ]


def language_ratio_lines(report: LanguageReport) -> list[str]:
    groups: dict[tuple[str, str, int], list[str]] = {}
    for ratio in report.ratios:
        groups.setdefault((ratio.precision, ratio.other_precision, ratio.threads), []).append(
            f"{ratio.test} {ratio.value:.2f}x")
    return [f"{OURS} {precision} vs {LLAMA_CPP} {other}, {threads} thread"
            f"{'s' if threads > 1 else ''}: {', '.join(parts)}"
            for (precision, other, threads), parts in groups.items()]


def language_bandwidth_lines(report: LanguageReport) -> list[str]:
    lines = []
    bandwidth = report.machine.memory_bandwidth_gbs
    for result in report.results:
        for test in result.tests.values():
            if test.bandwidth_share is None:
                continue
            read = result.weight_bytes_per_token * test.tokens_per_s / 1e9
            lines.append(
                f"{result.label}, {result.threads} thread{'s' if result.threads > 1 else ''}: "
                f"{test.name} reads {result.weight_bytes_per_token / 1e6:.1f} MB of weights per "
                f"token x {test.tokens_per_s:.1f} t/s = {read:.1f} GB/s, "
                f"{test.bandwidth_share:.0%} of {bandwidth:.1f} GB/s"
                + (" (above 100%: the weights stay in the caches)"
                   if test.bandwidth_share > 1 else ""))
    return lines


def language_note_lines(report: LanguageReport) -> list[str]:
    notes = [f"{engine}: {reason}" for engine, reason in report.skipped.items()]
    notes += [f"{r.label} converted from the GGUF file in {r.conversion_s:.1f} s"
              for r in report.results if r.conversion_s is not None]
    notes += [f"{r.label}, {r.threads} thread{'s' if r.threads > 1 else ''}: load "
              f"{r.load_s:.2f} s, peak RSS {r.peak_rss_mb:.0f} MB" for r in report.results
              if r.load_s is not None and r.peak_rss_mb is not None]
    return notes


def _sections(report: LanguageReport) -> list[tuple[str, list[str]]]:
    return [("memory bandwidth (tg: weights read per token x t/s / measured bandwidth)",
             language_bandwidth_lines(report)),
            ("ratios, pytransformer / llama.cpp tokens/s (> 1: pytransformer faster)",
             language_ratio_lines(report)),
            ("notes", language_note_lines(report))]


def format_language_report(report: LanguageReport) -> str:
    """The whole report as plain text: context, table, bandwidth, ratios, notes."""
    parts = [*language_context_lines(report), "",
             format_table(LANGUAGE_TABLE_HEADERS, language_table_rows(report))]
    for title, lines in _sections(report):
        if lines:
            parts += ["", title + ":", *("  " + line for line in lines)]
    return "\n".join(parts)


def format_language_markdown(report: LanguageReport) -> str:
    """The report as a Markdown section for docs/benchmarks.md."""
    lines = [f"### {report.date[:10]}: {report.model['name']}", "", "```",
             report.command or "pytransformer bench", "```", ""]
    lines += [f"- {line}" for line in language_context_lines(report)]
    headers = LANGUAGE_TABLE_HEADERS
    lines += ["", "| " + " | ".join(headers) + " |",
              "|" + "|".join(["---"] * 5 + ["---:", "---", "---:", "---:"]) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in language_table_rows(report)]
    for title, items in _sections(report):
        if items:
            lines += ["", title[0].upper() + title[1:] + ":", "", *(f"- {i}" for i in items)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

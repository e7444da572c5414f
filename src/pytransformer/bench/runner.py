"""Runs a benchmark: prepares every engine's copy of the same weights (cached), builds one
workload, runs each engine in its own worker process and gathers a BenchmarkReport.

Engines and where their weights come from, by the kind of model given:
- a Hugging Face Marian directory: pytransformer (convert_marian), ctranslate2 (its
  TransformersConverter), transformers (the directory itself, float32 only);
- a CTranslate2 directory: pytransformer (convert_ctranslate2), ctranslate2 (the directory,
  quantized at load for int8);
- a pytransformer file (.ptm): pytransformer only, at the file's own precision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import importlib.util
import io
import json
import os
import statistics
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pytransformer.bench.machine import (
    MachineInfo,
    load_average,
    machine_info,
    measure_memory_bandwidth,
    physical_cores,
)
from pytransformer.bench.random_model import SHAPES, cached_random_marian, default_cache_dir
from pytransformer.bench.worker import run_in_child

if TYPE_CHECKING:  # numpy is imported where it is used: the CLI loads this module for
    import numpy as np  # every command, and numpy alone costs ~0.15 s of start-up (issue 17)

OURS = "pytransformer"
COMPARABLE_ENGINES = ("ctranslate2", "transformers")
PRECISIONS = ("float32", "int8", "int8_all")
# What each of our precisions is compared with in another engine: CTranslate2's int8 quantizes
# every matrix, like our int8_all; our int8 keeps the encoder and attention f16
# (docs/format.md, *int8 files*) and is compared with the same CTranslate2 run.
_OTHER_PRECISION = {"float32": "float32", "int8": "int8", "int8_all": "int8"}
# Bumped when what a precision stores changes, so cached conversions are not reused.
_CONVERSION_VERSION = 2
WORKLOADS = ("greedy", "batch", "encoder")
_REQUIRED_MODULES = {"ctranslate2": ("ctranslate2",), "transformers": ("transformers", "torch")}


class BenchmarkError(ValueError):
    """A benchmark cannot run as asked (missing model, unknown engine or option)."""


@dataclass
class BenchmarkSettings:
    """What to measure. Lengths count tokens; the output length is forced (EOS suppressed)."""

    model: str | None = None          # HF Marian dir, CTranslate2 dir or .ptm file
    random_shape: str | None = None   # "opus-mt" or "tiny": a cached random Marian model
    seed: int = 0                     # random model weights and source ids
    precisions: tuple[str, ...] = PRECISIONS
    compare: tuple[str, ...] = ()     # among COMPARABLE_ENGINES
    workloads: tuple[str, ...] = WORKLOADS
    threads: int = 0                  # intra-op threads per engine; 0: physical cores
    runs: int = 5                     # timed runs of greedy and encoder (median reported)
    batch_runs: int = 3               # timed runs of the batched beam search
    warmup: int = 1                   # untimed short runs before timing
    source_length: int = 24           # source tokens (with EOS) of the batch-1 sentence
    greedy_length: int = 64           # generated tokens, batch-1 greedy
    batch_size: int = 32              # sentences of the batched and encoder workloads
    beam_size: int = 4
    batch_length: int = 32            # generated tokens per sentence, batched beam search
    cache_dir: str | None = None      # random models and conversions; None: default_cache_dir()
    timeout_s: float | None = None    # per engine

    def validate(self) -> None:
        if (self.model is None) == (self.random_shape is None):
            raise BenchmarkError("give either a model path or a random model shape")
        if self.random_shape is not None and self.random_shape not in SHAPES:
            raise BenchmarkError(f"unknown random model shape {self.random_shape!r} "
                                 f"(known: {', '.join(SHAPES)})")
        _check_subset("precision", self.precisions, PRECISIONS)
        _check_subset("engine to compare", self.compare, COMPARABLE_ENGINES)
        _check_subset("workload", self.workloads, WORKLOADS)
        if not self.precisions or not self.workloads:
            raise BenchmarkError("nothing to measure: no precision or no workload")
        for name in ("runs", "batch_runs", "source_length", "greedy_length", "batch_size",
                     "beam_size", "batch_length"):
            if getattr(self, name) < 1:
                raise BenchmarkError(f"{name} must be at least 1")
        if self.source_length < 2:
            raise BenchmarkError("source_length must be at least 2 (a token and EOS)")
        if self.threads < 0 or self.warmup < 0:
            raise BenchmarkError("threads and warmup must not be negative")


@dataclass
class WorkloadResult:
    name: str
    tokens: int                 # generated tokens (greedy, batch) or source tokens (encoder)
    times_s: list[float]        # one per timed run
    median_s: float
    tokens_per_s: float
    note: str | None = None


@dataclass
class Roofline:
    """Batch-1 greedy decoding against the memory-bandwidth limit."""

    weight_bytes_per_token: int  # decoder weights + output projection read per generated token
    cache_bytes_per_token: int   # K/V cache read per token (cross-attention + self-attention)
    bandwidth_gbs: float
    min_ms_per_token: float      # (weight + cache bytes) / bandwidth
    measured_ms_per_token: float
    fraction_of_limit: float     # min / measured: 1.0 would be at the physical limit


@dataclass
class EngineResult:
    engine: str
    precision: str
    artifact: str
    conversion_s: float | None = None   # None when the converted copy came from the cache
    load_s: float | None = None
    baseline_rss_mb: float | None = None  # the worker's RSS after imports, before loading
    peak_rss_mb: float | None = None
    workloads: dict[str, WorkloadResult] = field(default_factory=dict)
    roofline: Roofline | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision}"


@dataclass
class Ratio:
    """ours ÷ other on one measure of one precision (> 1: pytransformer is faster / lighter)."""

    other: str
    precision: str
    measure: str   # a workload name, "load" or "peak_rss"
    value: float
    other_precision: str = ""  # the other engine's precision when it differs from ours


@dataclass
class BenchmarkReport:
    date: str
    command: str
    settings: BenchmarkSettings
    machine: MachineInfo
    model: dict[str, Any]
    results: list[EngineResult]
    ratios: list[Ratio]
    skipped: dict[str, str]            # engine -> why it did not run
    load_average_after: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkReport:
        """The report to_dict() (or a --json file) describes."""
        results = []
        for item in data["results"]:
            item = dict(item)
            item["workloads"] = {name: WorkloadResult(**w) for name, w in item["workloads"].items()}
            item["roofline"] = Roofline(**item["roofline"]) if item["roofline"] else None
            results.append(EngineResult(**item))
        settings = {key: tuple(value) if isinstance(value, list) else value
                    for key, value in data["settings"].items()}
        machine = dict(data["machine"], load_average=tuple(data["machine"]["load_average"]))
        return cls(date=data["date"], command=data["command"],
                   settings=BenchmarkSettings(**settings), machine=MachineInfo(**machine),
                   model=data["model"], results=results,
                   ratios=[Ratio(**ratio) for ratio in data["ratios"]],
                   skipped=data["skipped"],
                   load_average_after=tuple(data["load_average_after"]))


def run_benchmark(settings: BenchmarkSettings, command: str = "",
                  progress: Callable[[str], None] | None = None) -> BenchmarkReport:
    """Runs the benchmark `settings` describe. progress(message) is told what is happening.
    Raises BenchmarkError for a missing model or invalid settings."""
    settings.validate()
    say = progress or (lambda message: None)
    cache = Path(settings.cache_dir) if settings.cache_dir else default_cache_dir()
    threads = settings.threads or physical_cores()

    if settings.random_shape is not None:
        say(f"random {settings.random_shape} model (cached under {cache})")
        model_path = cached_random_marian(SHAPES[settings.random_shape], settings.seed, cache)
    else:
        model_path = Path(settings.model).expanduser().resolve()
        if not model_path.exists():
            raise BenchmarkError(f"{settings.model}: no such model file or directory")
    kind = _model_kind(model_path)

    skipped: dict[str, str] = {}
    engines = [OURS]
    for engine in settings.compare:
        reason = _unavailable_reason(engine, kind)
        if reason:
            skipped[engine] = reason
        else:
            engines.append(engine)
    if "transformers" in engines and set(settings.precisions) - {"float32"}:
        skipped["transformers int8"] = "transformers runs float32 only here"

    say("measuring memory bandwidth")
    machine = machine_info()
    results: list[EngineResult] = []
    for precision in _precisions(settings, kind, model_path):
        for engine in engines:
            if engine == "transformers" and precision != "float32":
                continue
            if engine != OURS and _OTHER_PRECISION[precision] != precision:
                if _OTHER_PRECISION[precision] not in settings.precisions:
                    skipped[f"{engine} {precision}"] = (
                        f"compared with {engine} {_OTHER_PRECISION[precision]}: add it to "
                        "--precision")
                continue
            result = EngineResult(engine=engine, precision=precision, artifact="")
            try:
                say(f"preparing {engine} {precision}")
                artifact, result.conversion_s = _prepare(engine, precision, kind, model_path,
                                                         cache)
                result.artifact = str(artifact)
            except Exception as error:  # conversion failures are reported per engine
                result.error = f"conversion failed: {type(error).__name__}: {error}"
            results.append(result)

    ours_f32 = next((r for r in results if r.engine == OURS and not r.error), None)
    if ours_f32 is None:
        raise BenchmarkError(f"{model_path}: could not prepare the model: {results[0].error}")
    model_info = _model_info(model_path, kind, Path(ours_f32.artifact))
    job_base = _workload(settings, model_info, threads)

    for result in results:
        if result.error:
            continue
        say(f"running {result.label}")
        _run_worker(result, {**job_base, "engine": result.engine, "precision": result.precision,
                             "artifact": result.artifact}, threads, settings.timeout_s)

    # Other processes share the memory bus: measure again and keep the better figure.
    say("measuring memory bandwidth again")
    machine.memory_bandwidth_gbs = max(machine.memory_bandwidth_gbs, measure_memory_bandwidth())
    for result in results:
        ours_same = next((r for r in results if r.engine == OURS and not r.error
                          and r.precision == result.precision), None)
        if "greedy" in result.workloads and ours_same is not None:
            result.roofline = _roofline(Path(ours_same.artifact), result, model_info, settings,
                                        machine.memory_bandwidth_gbs)
    return BenchmarkReport(
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        command=command, settings=settings, machine=machine,
        model={**model_info, "kind": kind, "path": str(model_path)}, results=results,
        ratios=_ratios(results), skipped=skipped,
        load_average_after=load_average())


# ---------------------------------------------------------------------------------------------
# models and their converted copies


def _check_subset(what: str, values: tuple[str, ...], known: tuple[str, ...]) -> None:
    for value in values:
        if value not in known:
            raise BenchmarkError(f"unknown {what} {value!r} (known: {', '.join(known)})")


def _model_kind(path: Path) -> str:
    if path.is_file():
        return "pytransformer"
    from pytransformer import convert  # loaded only to benchmark another project's directory

    try:
        kind = convert.detect_model_format(path)
    except convert.ConversionError as error:
        raise BenchmarkError(f"{path}: not a pytransformer file, a Hugging Face Marian "
                             f"directory or a CTranslate2 directory ({error})") from None
    if kind == "argos":
        raise BenchmarkError(f"{path}: an argos-translate package: benchmark its model/ "
                             "directory (CTranslate2) or a converted .ptm file")
    return kind


def _unavailable_reason(engine: str, kind: str) -> str | None:
    missing = [m for m in _REQUIRED_MODULES[engine] if importlib.util.find_spec(m) is None]
    if missing:
        return f"not installed ({', '.join(missing)})"
    if engine == "transformers" and kind != "marian":
        return "needs a Hugging Face Marian directory"
    if engine == "ctranslate2" and kind == "pytransformer":
        return "cannot load a pytransformer file (give the original model directory)"
    return None


def _precisions(settings: BenchmarkSettings, kind: str, path: Path) -> tuple[str, ...]:
    if kind != "pytransformer":
        return settings.precisions
    from pytransformer import _core

    model_file = _core.ModelFile(str(path))
    dtype, _ = model_file.tensor_info("dec.out_proj.weight")
    if dtype == "int8" and model_file.tensor_info("dec.0.ffn_up.weight")[0] == \
            model_file.tensor_info("dec.0.attn_self_q.weight")[0]:
        return ("int8_all",)
    return ({"f32": "float32"}.get(dtype, dtype),)


def _fingerprint(path: Path) -> str:
    """Changes when the model at `path` changes (path, names, sizes, modification times)."""
    digest = hashlib.sha1(str(path).encode())
    entries = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for entry in entries:
        stat = entry.stat()
        digest.update(f"{entry.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _prepare(engine: str, precision: str, kind: str, model: Path,
             cache: Path) -> tuple[Path, float | None]:
    """The engine's copy of the model and the seconds its conversion took (None: cached or
    no conversion needed)."""
    if engine == "transformers" or engine == kind:
        return model, None
    target = cache / "converted" / f"{model.name}-{_fingerprint(model)}"
    if engine == OURS:
        output = target / f"pytransformer-{precision}-v{_CONVERSION_VERSION}.ptm"
        if output.exists():
            return output, None
        from pytransformer.convert import convert_ctranslate2, convert_marian

        convert = convert_marian if kind == "marian" else convert_ctranslate2
        quantize = None if precision == "float32" else precision
        return _atomic_convert(output, lambda tmp: convert(model, tmp, quantize=quantize))
    # CTranslate2 from a Marian directory
    output = target / f"ctranslate2-{precision}"
    if (output / "model.bin").exists():
        return output, None
    import ctranslate2.converters

    quantization = None if precision == "float32" else precision
    return _atomic_convert(output, lambda tmp: ctranslate2.converters.TransformersConverter(
        str(model)).convert(str(tmp), quantization=quantization, force=True))


def _atomic_convert(output: Path, convert: Callable[[Path], Any]) -> tuple[Path, float]:
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    log = io.StringIO()  # converters' progress bars and warnings, shown only on failure
    start = time.perf_counter()
    try:
        with contextlib.redirect_stderr(log), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            convert(staging)
    except Exception as error:
        raise RuntimeError(f"{error} {log.getvalue()[-2000:]}".strip()) from error
    seconds = time.perf_counter() - start
    os.replace(staging, output)
    return output, seconds


def _model_info(path: Path, kind: str, ours_file: Path) -> dict[str, Any]:
    from pytransformer import _core

    config = _core.Model(str(ours_file), threads=1).config
    shape = {key: config[key] for key in (
        "d_model", "encoder_layers", "decoder_layers", "encoder_heads", "decoder_heads",
        "encoder_ffn_dim", "decoder_ffn_dim", "source_vocab_size", "target_vocab_size",
        "max_positions")}
    name = path.stem if kind == "pytransformer" else path.name
    special = sorted({config[k] for k in ("pad_id", "eos_id", "unk_id", "decoder_start_id",
                                          "source_eos_id")})
    return {"name": name, **shape, "source_eos_id": config["source_eos_id"],
            "special_ids": special}


# ---------------------------------------------------------------------------------------------
# workload, workers, roofline, ratios


def _workload(settings: BenchmarkSettings, info: dict[str, Any], threads: int) -> dict[str, Any]:
    """The job every worker receives: random source ids (no special ids, EOS appended), the
    same for every engine. Batched sentences have lengths spread over [S/2, 3S/2]."""
    import numpy as np

    rng = np.random.default_rng(settings.seed)
    vocab = info["source_vocab_size"]
    ordinary = np.setdiff1d(np.arange(vocab), info["special_ids"])
    if ordinary.size == 0:
        raise BenchmarkError("the source vocabulary holds only special tokens")
    limit = info["max_positions"]

    def sentence(length: int) -> list[int]:
        length = max(2, min(length, limit))
        return [int(i) for i in rng.choice(ordinary, size=length - 1)] + [info["source_eos_id"]]

    lengths = rng.integers(max(2, settings.source_length // 2),
                           settings.source_length * 3 // 2 + 1, size=settings.batch_size)
    batch_sources = [sentence(int(n)) for n in lengths]
    greedy_length = min(settings.greedy_length, limit)
    batch_length = min(settings.batch_length, limit)
    chosen = set(settings.workloads)
    return {
        "threads": threads, "runs": settings.runs, "batch_runs": settings.batch_runs,
        "warmup": settings.warmup,
        "greedy": {"sources": [sentence(settings.source_length)], "length": greedy_length}
        if "greedy" in chosen else None,
        "batch": {"sources": batch_sources, "beam_size": settings.beam_size,
                  "length": batch_length} if "batch" in chosen else None,
        "encoder": {"sources": batch_sources} if "encoder" in chosen else None,
    }


def _run_worker(result: EngineResult, job: dict[str, Any], threads: int,
                timeout_s: float | None) -> None:
    from pytransformer.bench.engines import ENCODE_NOTES

    output = run_in_child("pytransformer.bench.worker", job, threads, timeout_s)
    if "error" in output:
        result.error = output["error"]
        return
    result.load_s = output["load_s"]
    result.baseline_rss_mb = output["baseline_rss_mb"]
    result.peak_rss_mb = output["peak_rss_mb"]
    for name, measured in output["workloads"].items():
        median = statistics.median(measured["times_s"])
        note = ENCODE_NOTES.get(result.engine) if name == "encoder" else None
        result.workloads[name] = WorkloadResult(
            name=name, tokens=measured["tokens"], times_s=measured["times_s"], median_s=median,
            tokens_per_s=measured["tokens"] / median, note=note)


def decoder_bytes_per_token(model_file: Path) -> int:
    """Bytes of weights batch-1 greedy decoding reads per generated token: every decoder layer
    (self-attention, cross-attention query and output, FFN, LayerNorms), the output projection
    and one embedding row. Cross-attention keys and values are projected once per sentence,
    not per token, so their weights are left out. Tied tensors are counted once."""
    from pytransformer import _core
    from pytransformer.format import stored_bytes

    file = _core.ModelFile(str(model_file))
    counted: set[int] = set()
    total = 0
    embed_row = 0
    for name in file.tensor_names():
        dtype, shape = file.tensor_info(name)
        size = stored_bytes(dtype, tuple(shape))
        if name.startswith("dec.embed."):
            embed_row += size // shape[0]  # the weight row (or its scale) of one token
            continue
        if not name.startswith("dec.") or ".attn_cross_k." in name or ".attn_cross_v." in name:
            continue
        offset = file.tensor_offset(name)
        if offset not in counted:
            counted.add(offset)
            total += size
    return total + embed_row


def _roofline(ours_file: Path, result: EngineResult, info: dict[str, Any],
              settings: BenchmarkSettings, bandwidth_gbs: float) -> Roofline:
    greedy = result.workloads["greedy"]
    weights = decoder_bytes_per_token(ours_file)
    d, layers = info["d_model"], info["decoder_layers"]
    steps = greedy.tokens
    mean_position = (steps + 1) / 2
    cache = int(2 * layers * d * 4 * (settings.source_length + mean_position))  # float32 K/V
    min_s = (weights + cache) / (bandwidth_gbs * 1e9)
    measured_s = greedy.median_s / steps
    return Roofline(weight_bytes_per_token=weights, cache_bytes_per_token=cache,
                    bandwidth_gbs=bandwidth_gbs, min_ms_per_token=min_s * 1e3,
                    measured_ms_per_token=measured_s * 1e3, fraction_of_limit=min_s / measured_s)


def _ratios(results: list[EngineResult]) -> list[Ratio]:
    ratios: list[Ratio] = []
    for ours in (r for r in results if r.engine == OURS and not r.error):
        other_precision = _OTHER_PRECISION.get(ours.precision, ours.precision)
        differs = other_precision if other_precision != ours.precision else ""
        for other in (r for r in results if r.engine != OURS and not r.error
                      and r.precision == other_precision):
            for name, mine in ours.workloads.items():
                theirs = other.workloads.get(name)
                if theirs:
                    ratios.append(Ratio(other.engine, ours.precision, name,
                                        mine.tokens_per_s / theirs.tokens_per_s, differs))
            if ours.load_s and other.load_s:
                ratios.append(Ratio(other.engine, ours.precision, "load",
                                    other.load_s / ours.load_s, differs))
            if ours.peak_rss_mb and other.peak_rss_mb:
                ratios.append(Ratio(other.engine, ours.precision, "peak_rss",
                                    other.peak_rss_mb / ours.peak_rss_mb, differs))
    return ratios

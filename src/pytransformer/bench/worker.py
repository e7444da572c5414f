"""One engine's benchmark, run in a child process of its own (so peak RSS and load time are that
engine's alone): `python -m pytransformer.bench.worker` reads a job (JSON) on stdin and writes
its result as one JSON line after RESULT_MARKER on stdout.

Job: {"engine", "precision", "artifact", "threads", "runs", "batch_runs", "warmup",
      "greedy": {"sources", "length"} | null, "batch": {"sources", "beam_size", "length"} | null,
      "encoder": {"sources"} | null}
Result: {"load_s", "baseline_rss_mb", "peak_rss_mb", "workloads": {name: {"times_s",
         "tokens"}}} or {"error": message}.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import traceback
from typing import Any, Callable

RESULT_MARKER = "PYTRANSFORMER_BENCH_RESULT "


def peak_rss_mb() -> float:
    """This process's peak resident set size in MB. Linux: VmHWM, the high-water mark of this
    process's own memory map (ru_maxrss would also count the parent's memory at fork time)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    # ru_maxrss is in kilobytes on Linux, bytes on macOS.
    scale = 1 << 20 if sys.platform == "darwin" else 1 << 10
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _timed(function: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from pytransformer.bench.engines import ENGINES

    engine = ENGINES[job["engine"]](job["artifact"], job["threads"], job["precision"])
    baseline = peak_rss_mb()
    load_s, _ = _timed(engine.load)
    result: dict[str, Any] = {"load_s": load_s, "baseline_rss_mb": baseline, "workloads": {}}

    greedy, batch, encoder = job.get("greedy"), job.get("batch"), job.get("encoder")
    warm_source = (greedy or batch or encoder)["sources"][:1]
    for _ in range(job.get("warmup", 1)):  # pages in the weights, starts the thread pools
        engine.generate(warm_source, 1, 4)

    def repeat(name: str, runs: int, expected: int | None, function: Callable[[], Any]) -> None:
        times, tokens = [], None
        for _ in range(runs):
            seconds, tokens = _timed(function)
            times.append(seconds)
            if expected is not None and tokens != expected:
                raise RuntimeError(f"{name}: produced {tokens} tokens, expected {expected} "
                                   "(the forced output length was not honoured)")
        result["workloads"][name] = {"times_s": times, "tokens": tokens}

    if greedy:
        expected = greedy["length"] * len(greedy["sources"])
        repeat("greedy", job["runs"], expected,
               lambda: engine.generate(greedy["sources"], 1, greedy["length"]))
    if batch:
        expected = batch["length"] * len(batch["sources"])
        repeat("batch", job["batch_runs"], expected,
               lambda: engine.generate(batch["sources"], batch["beam_size"], batch["length"]))
    if encoder:
        repeat("encoder", job["runs"], None, lambda: engine.encode(encoder["sources"]))
        result["workloads"]["encoder"]["tokens"] = sum(len(s) for s in encoder["sources"])
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main() -> None:
    job = json.loads(sys.stdin.read())
    try:
        result = run_job(job)
    except Exception as error:  # reported to the parent, which shows it for this engine
        traceback.print_exc(file=sys.stderr)
        result = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()

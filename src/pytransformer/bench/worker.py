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


def serve(run: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """A worker process's main: the job from stdin through `run`, its result (or the error it
    raised) as one line after RESULT_MARKER on stdout."""
    job = json.loads(sys.stdin.read())
    try:
        result = run(job)
    except Exception as error:  # reported to the parent, which shows it for this engine
        traceback.print_exc(file=sys.stderr)
        result = {"error": f"{type(error).__name__}: {error}"}
    sys.stdout.write(RESULT_MARKER + json.dumps(result) + "\n")
    sys.stdout.flush()


def run_in_child(module: str, job: dict[str, Any], threads: int,
                 timeout_s: float | None) -> dict[str, Any]:
    """Runs the worker `python -m module` (one that calls serve()) on `job` in a process of its
    own and returns its result, or {"error": why} when it timed out, died or reported one."""
    import os
    import subprocess
    from pathlib import Path

    import pytransformer

    # From the directory holding the imported package, so the child imports the same
    # pytransformer (with its compiled core) whatever the current directory holds.
    package_root = Path(pytransformer.__file__).resolve().parent.parent
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    try:
        completed = subprocess.run(
            [sys.executable, "-m", module], input=json.dumps(job), capture_output=True,
            text=True, cwd=package_root, env=env, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout_s:g} s"}
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        tail = completed.stderr.strip().splitlines()[-1:] or [f"exit status {completed.returncode}"]
        return {"error": f"worker failed: {tail[0]}"}
    return json.loads(lines[-1][len(RESULT_MARKER):])


def main() -> None:
    serve(run_job)


if __name__ == "__main__":
    main()

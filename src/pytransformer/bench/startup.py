"""Cold start-up of the command line (issue 17): `pytransformer translate hello` timed in fresh
processes, against the goal of STARTUP_GOAL_S, beside the interpreter's own start-up in the
same run (what no change of ours can remove).

    report = measure_startup(model=None, runs=7)
    print(format_startup_report(report)); report.within_goal

`pytransformer bench --startup` prints it and exits 1 when the median is over the goal, so a
release script can keep it there; it is a benchmark, never a timed test.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

STARTUP_GOAL_S = 0.3
STARTUP_REPORT_KIND = "pytransformer-startup"
STARTUP_TEXT = "hello"
_PATIENCE_S = 120.0  # one cold translation, on a machine as loaded as it may be


class StartupBenchError(RuntimeError):
    """The translation being timed failed: its exit status and what it printed."""


@dataclass
class StartupReport:
    command: list[str]
    runs: int
    seconds: list[float]              # each cold translation, wall clock, in order
    interpreter_seconds: list[float]  # `python -c pass`, interleaved with them
    output: str                       # what the translation printed (the last run)
    goal_s: float = STARTUP_GOAL_S
    kind: str = field(default=STARTUP_REPORT_KIND)

    @property
    def median_s(self) -> float:
        return statistics.median(self.seconds)

    @property
    def best_s(self) -> float:
        return min(self.seconds)

    @property
    def interpreter_median_s(self) -> float:
        return statistics.median(self.interpreter_seconds)

    @property
    def within_goal(self) -> bool:
        return self.median_s <= self.goal_s

    def to_json(self) -> str:
        data = asdict(self)
        data.update(median_s=self.median_s, best_s=self.best_s,
                    interpreter_median_s=self.interpreter_median_s,
                    within_goal=self.within_goal)
        return json.dumps(data, indent=2, ensure_ascii=False)


def translate_command(model: str | None) -> list[str]:
    """The command timed: this interpreter running the CLI on STARTUP_TEXT."""
    command = [sys.executable, "-m", "pytransformer", "translate"]
    if model is not None:
        command += ["--model", model]
    return command + [STARTUP_TEXT]


def _timed(command: list[str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                               timeout=_PATIENCE_S, env=dict(os.environ, NO_COLOR="1"))
    return time.perf_counter() - start, completed


def measure_startup(model: str | None = None, runs: int = 7, warmup: int = 1) -> StartupReport:
    """Times `runs` cold translations (after `warmup` untimed ones, which fill the file cache),
    each followed by a bare interpreter start. Raises StartupBenchError if one fails."""
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be >= 1 and warmup >= 0, got {runs} and {warmup}")
    command = translate_command(model)
    bare = [sys.executable, "-c", "pass"]
    seconds, interpreter = [], []
    completed = None
    for index in range(warmup + runs):
        elapsed, completed = _timed(command)
        if completed.returncode != 0 or not completed.stdout.strip():
            raise StartupBenchError(
                f"{' '.join(command)} exited with status {completed.returncode}: "
                f"{completed.stderr.strip() or 'no output'}")
        if index >= warmup:
            seconds.append(elapsed)
            interpreter.append(_timed(bare)[0])
    assert completed is not None
    return StartupReport(command=command, runs=runs, seconds=seconds,
                         interpreter_seconds=interpreter, output=completed.stdout.strip())


def format_startup_report(report: StartupReport) -> str:
    verdict = "within the goal" if report.within_goal else "OVER the goal"
    return "\n".join([
        f"start-up: python {' '.join(report.command[1:])}",
        f"  median {report.median_s:.3f} s, best {report.best_s:.3f} s over {report.runs} cold "
        f"runs: {verdict} of {report.goal_s:.2f} s",
        f"  of which the bare interpreter (python -c pass): {report.interpreter_median_s:.3f} s",
        f"  output: {report.output}",
    ])


def format_startup_markdown(report: StartupReport) -> str:
    return "\n".join([
        "| command | median s | best s | interpreter s | goal s | within goal |",
        "|---|---|---|---|---|---|",
        f"| `python {' '.join(report.command[1:])}` | {report.median_s:.3f} | "
        f"{report.best_s:.3f} | "
        f"{report.interpreter_median_s:.3f} | {report.goal_s:.2f} | "
        f"{'yes' if report.within_goal else 'no'} |",
    ])

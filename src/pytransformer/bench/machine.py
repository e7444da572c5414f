"""Facts about the machine a benchmark runs on: CPU model, cores, load, memory bandwidth."""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported where it is used: the CLI loads this module for
    import numpy as np  # every command, and numpy alone costs ~0.15 s of start-up (issue 17)


@dataclass
class MachineInfo:
    cpu_model: str
    physical_cores: int
    logical_cpus: int
    load_average: tuple[float, float, float]  # 1, 5 and 15 minutes, when the run started
    memory_bandwidth_gbs: float                # measured read bandwidth, GB/s (1e9 bytes)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def physical_cores() -> int:
    """Physical cores this process may use (hyper-threads counted once), at least 1."""
    allowed = set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    cores: set[tuple[str, str]] = set()
    processor = physical_id = core_id = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in list(file) + [""]:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "processor":
                    processor = int(value)
                elif key == "physical id":
                    physical_id = value
                elif key == "core id":
                    core_id = value
                elif not key and processor is not None:  # end of one processor's block
                    if allowed is None or processor in allowed:
                        cores.add((physical_id or "0", core_id or str(processor)))
                    processor = physical_id = core_id = None
    except OSError:
        pass
    return max(1, min(len(cores) or usable_cpus(), usable_cpus()))


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def measure_memory_bandwidth(threads: int = 0, megabytes: int = 256, repeats: int = 5) -> float:
    """Read bandwidth of main memory in GB/s: the best pass over a `megabytes` float32 array
    (far larger than any cache) of two read-only kernels (numpy's SIMD maximum, and BLAS's dot
    product) split over 1 and over `threads` threads (0: the physical cores), `repeats` passes
    each. numpy and BLAS release the GIL, so the threads run in parallel. The best pass is
    taken because other processes share the memory bus: this estimates what the hardware can
    do, the bound of batch-1 decoding, which streams every decoder weight once per token."""
    import numpy as np

    threads = threads or physical_cores()
    data = np.ones(megabytes * (1 << 20) // 4, dtype=np.float32)
    best = float("inf")
    for count in sorted({1, threads}):
        parts = np.array_split(data, count)
        for kernel in (np.max, lambda part: np.dot(part, part)):
            for _ in range(repeats):
                workers = [threading.Thread(target=kernel, args=(part,)) for part in parts]
                start = time.perf_counter()
                for worker in workers:
                    worker.start()
                for worker in workers:
                    worker.join()
                best = min(best, time.perf_counter() - start)
    return data.nbytes / best / 1e9


def machine_info() -> MachineInfo:
    """The machine now; the bandwidth is measured with every physical core, whatever number of
    threads the engines use: the roofline is the hardware's limit."""
    return MachineInfo(cpu_model=cpu_model(), physical_cores=physical_cores(),
                       logical_cpus=usable_cpus(), load_average=load_average(),
                       memory_bandwidth_gbs=measure_memory_bandwidth())

"""Facts about the machine a benchmark runs on: CPU model, cores, load, memory bandwidth."""

from __future__ import annotations

import os
import platform
import threading
import time
from dataclasses import dataclass

import numpy as np


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
    """Read bandwidth of main memory in GB/s: the best of `repeats` passes of `threads` threads
    (0: the physical cores) each taking the maximum of its share of a `megabytes` float32 array
    (numpy's SIMD reduction; it releases the GIL). The array is far larger than any cache, so
    this is the rate at which weights can stream from memory, the bound of batch-1 decoding."""
    threads = threads or physical_cores()
    data = np.ones(megabytes * (1 << 20) // 4, dtype=np.float32)
    parts = np.array_split(data, threads)
    best = float("inf")
    for _ in range(repeats):
        workers = [threading.Thread(target=np.max, args=(part,)) for part in parts]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        best = min(best, time.perf_counter() - start)
    return data.nbytes / best / 1e9


def machine_info(bandwidth_threads: int = 0) -> MachineInfo:
    return MachineInfo(cpu_model=cpu_model(), physical_cores=physical_cores(),
                       logical_cpus=usable_cpus(), load_average=load_average(),
                       memory_bandwidth_gbs=measure_memory_bandwidth(bandwidth_threads))

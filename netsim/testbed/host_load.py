"""How busy this host is besides the testbed: runnable processes per core, sampled from /proc/stat
(`procs_running`, which counts the sampler itself), and CPU pressure (/proc/pressure/cpu, 'some' over
10 s: the share of time some runnable task waited for a core). Measured just before the devices start
and right after they exit, when nothing of the run is computing, so it is the host's own load."""

from __future__ import annotations

import os
import time
from pathlib import Path

BUSY_RUNNABLE_PER_CORE = 0.5
"""Above this many runnable processes per core besides the sampler, other work competes with the
devices for the cores (the profile cache's bound, learning.profile.LOADED_PER_CPU)."""


def _procs_running() -> int | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _cpu_pressure_some_avg10() -> float | None:
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    fields = dict(item.split("=") for item in first.split()[1:])
    return float(fields["avg10"]) if "avg10" in fields else None


def sample(seconds: float = 1.0, every_s: float = 0.05) -> dict:
    """{'runnable_per_core', 'cpu_pressure_pct', 'busy'}: the mean runnable processes per core other than
    this one over `seconds`, the CPU pressure ('some', 10 s average; None without PSI) and whether the
    host counts as busy."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    counts = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        running = _procs_running()
        if running is not None:
            counts.append(max(running - 1, 0))  # the sampler is running while it reads
        time.sleep(every_s)
    runnable = sum(counts) / len(counts) / cores if counts else None
    return {"runnable_per_core": runnable, "cpu_pressure_pct": _cpu_pressure_some_avg10(),
            "busy": runnable is not None and runnable > BUSY_RUNNABLE_PER_CORE}

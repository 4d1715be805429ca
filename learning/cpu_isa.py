"""Keep oneDNN off AMX unless the user asks for it: some virtual machines advertise AMX and crash on it.

On such hosts (seen on this project's 2-core CI machines: Sapphire Rapids flags, a Firecracker
guest) the first bfloat16 or float16 matmul on the CPU dies with SIGILL, although the kernel grants
the AMX state. oneDNN reads `ONEDNN_MAX_CPU_ISA` at its first use, so setting it here, before any
matmul, caps it at AVX-512 with FP16 — identical results, slower only for bf16 matmuls on real AMX
hosts. Set `ONEDNN_MAX_CPU_ISA=ALL` (or any value) to decide for yourself.
"""

from __future__ import annotations

import os
from pathlib import Path

SAFE_ISA = "AVX512_CORE_FP16"


def cpu_flags() -> set[str]:
    """The CPU flags of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="ignore")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cap_onednn_isa() -> str | None:
    """Cap oneDNN below AMX when the CPU advertises AMX and the user set nothing; return the cap."""
    if "ONEDNN_MAX_CPU_ISA" in os.environ or "amx_tile" not in cpu_flags():
        return None
    os.environ["ONEDNN_MAX_CPU_ISA"] = SAFE_ISA
    return SAFE_ISA

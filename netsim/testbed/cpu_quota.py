"""A slower device: a process under a CPU quota (Linux cgroups), emulating a phone slower than this host.

`CpuQuotas` puts a device process in its own cgroup whose CFS bandwidth is `share` of one core per
`PERIOD_US` (cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, or v2 `cpu.max`). The period is
short (10 ms) so that a step of tens of milliseconds is slowed evenly rather than run at full speed
and then stopped. The simulator needs no separate factor: the devices calibrate it themselves, under
their quota (netsim.testbed.launch). Needs root; every cgroup made is removed on close (its processes
gone first) and at interpreter exit.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

PERIOD_US = 10_000
ROOTS_V1 = (Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup/cpu,cpuacct"))
ROOT_V2 = Path("/sys/fs/cgroup")


def _hierarchy() -> tuple[Path, int] | None:
    """(the cpu controller's root, cgroup version) or None."""
    for root in ROOTS_V1:
        if (root / "cpu.cfs_quota_us").exists():
            return root, 1
    controllers = ROOT_V2 / "cgroup.controllers"
    if controllers.exists() and "cpu" in controllers.read_text().split():
        return ROOT_V2, 2
    return None


def unavailable_reason() -> str | None:
    """Why CPU quotas cannot be set here (None: they can)."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "CPU quotas need Linux cgroups"
    if _hierarchy() is None:
        return "no cgroup cpu controller is mounted"
    if os.geteuid() != 0:
        return "setting a CPU quota needs root"
    return None


class CpuQuotas:
    def __init__(self, tag: str | None = None):
        found = _hierarchy()
        if found is None or os.geteuid() != 0:
            raise RuntimeError(unavailable_reason())
        self.root, self.version = found
        self.tag = tag or f"splitsim-{os.getpid()}"
        self.groups: list[Path] = []
        atexit.register(self.close)

    def limit(self, name: str, pid: int, share: float) -> None:
        """Run process `pid` (and the threads it starts) at `share` of one core."""
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        group = self.root / f"{self.tag}-{name}"
        group.mkdir(exist_ok=True)
        self.groups.append(group)
        quota = max(1000, int(round(share * PERIOD_US)))
        if self.version == 1:
            (group / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (group / "cpu.cfs_quota_us").write_text(str(quota))
        else:
            (group / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        (group / "cgroup.procs").write_text(str(pid))

    def close(self) -> None:
        """Remove the cgroups (call after their processes ended; a group still in use is left)."""
        for group in self.groups:
            try:
                group.rmdir()
            except OSError:
                pass
        self.groups.clear()

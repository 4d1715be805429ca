"""Kernel-shaped links: one network namespace per device, veth pairs between them, a `tc` token
bucket (tbf) on each end. Needs root (CAP_NET_ADMIN); everything it creates is removed on close, at
interpreter exit, and by `remove_stale` for the leftovers of a killed run. Traffic stays inside the
namespaces it created.

tbf counts whole Ethernet frames, so the qdisc's rate is the target payload rate times
`payload_rate_scale()` (a full 1514-byte frame carries 1448 bytes of TCP payload); its queue is long
(`QUEUE_SECONDS` of traffic) so that TCP is paced by the bucket, not by drops. netem (delay) may be
missing from the kernel: a link's latency is added by the application (shaper.ShapedSender).
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from .shaper import payload_rate_scale

PREFIX = "sst"  # every namespace and interface this module creates starts with it (then the pid)
QUEUE_SECONDS = 4.0
BURST_BYTES = 32 * 1024


class KernelShaperError(RuntimeError):
    """The kernel shaper cannot run here; the message says why (one line)."""


def _ip(*args: str) -> str:
    result = subprocess.run(["ip", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise KernelShaperError(f"`ip {' '.join(args)}` failed: {result.stderr.strip() or result.returncode}")
    return result.stdout


def _tc(namespace: str, *args: str) -> None:
    result = subprocess.run(["ip", "netns", "exec", namespace, "tc", *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise KernelShaperError(f"`tc {' '.join(args)}` in {namespace} failed: {result.stderr.strip()}")


def unavailable_reason() -> str | None:
    """Why namespaces and tc cannot be used here (None: they can)."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (CAP_NET_ADMIN); use the application-level shaper"
    missing = [tool for tool in ("ip", "tc") if shutil.which(tool) is None]
    if missing:
        return f"{' and '.join(missing)} not found (Debian: apt install iproute2)"
    return None


@dataclass
class KernelLinks:
    """Devices (namespaces) and shaped links between them. Use as a context manager."""

    tag: str = field(default_factory=lambda: f"{PREFIX}{os.getpid()}")
    namespaces: dict[str, str] = field(default_factory=dict)  # device -> namespace
    addresses: dict[tuple[str, str], str] = field(default_factory=dict)  # (device, peer) -> its address there
    _links: int = 0
    _closed: bool = False

    def __post_init__(self) -> None:
        reason = unavailable_reason()
        if reason:
            raise KernelShaperError(reason)
        atexit.register(self.close)

    def add_device(self, device: str) -> str:
        namespace = f"{self.tag}-{len(self.namespaces)}"
        _ip("netns", "add", namespace)
        self.namespaces[device] = namespace
        subprocess.run(["ip", "netns", "exec", namespace, "ip", "link", "set", "lo", "up"], check=True)
        return namespace

    def link(self, a: str, b: str, rate_ab_bps: float, rate_ba_bps: float) -> tuple[str, str]:
        """A veth pair between devices a and b, a -> b shaped to rate_ab_bps of TCP payload and
        b -> a to rate_ba_bps; returns (a's address, b's address) on it."""
        i = self._links
        self._links += 1
        if i >= 16_000:
            raise KernelShaperError("too many links")
        end_a, end_b = f"{self.tag}a{i}"[-15:], f"{self.tag}b{i}"[-15:]
        _ip("link", "add", end_a, "type", "veth", "peer", "name", end_b)
        base = f"10.{77 + i // 16384}.{(i // 64) % 256}.{4 * (i % 64)}"
        octets = base.split(".")
        addr_a = ".".join(octets[:3] + [str(int(octets[3]) + 1)])
        addr_b = ".".join(octets[:3] + [str(int(octets[3]) + 2)])
        for end, device, addr, rate in ((end_a, a, addr_a, rate_ab_bps), (end_b, b, addr_b, rate_ba_bps)):
            namespace = self.namespaces[device]
            _ip("link", "set", end, "netns", namespace)
            _ip("netns", "exec", namespace, "ip", "addr", "add", f"{addr}/30", "dev", end)
            _ip("netns", "exec", namespace, "ip", "link", "set", end, "up")
            frame_rate = rate * payload_rate_scale()
            limit = max(int(frame_rate / 8 * QUEUE_SECONDS), 4 * BURST_BYTES)
            _tc(namespace, "qdisc", "add", "dev", end, "root", "tbf", "rate", f"{int(frame_rate)}bit",
                "burst", str(BURST_BYTES), "limit", str(limit))
        self.addresses[(a, b)], self.addresses[(b, a)] = addr_a, addr_b
        return addr_a, addr_b

    def command(self, device: str, argv: list[str]) -> list[str]:
        """`argv` run inside the device's namespace."""
        return ["ip", "netns", "exec", self.namespaces[device], *argv]

    def close(self) -> None:
        """Delete every namespace this made (their veth ends go with them). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        for namespace in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
        self.namespaces.clear()

    def __enter__(self) -> KernelLinks:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def remove_stale() -> list[str]:
    """Delete the namespaces of runs whose process is gone (a run killed with SIGKILL); their names."""
    removed = []
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.strip() else ""
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX):].split("-")[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            removed.append(name)
    return removed

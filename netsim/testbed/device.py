"""A device of the testbed: one OS process, its sockets, its shaped links and its measured events.

Every device (a user, the main or fed server, an edge, the cloud, the aggregator) is its own process,
`python -m splitsim.analysis.testbed.device SPEC CONTROL` (started by netsim.testbed.launch, inside its network
namespace when the kernel shaps the links), talking to the coordinator over a Unix socket (which
crosses network namespaces). It builds its tier of the model and warms it up, opens
its listening socket if it serves, reports ready, times its share of a step when the coordinator asks
(one device at a time: the simulator's calibration), waits for the coordinator's go (with every
server's address), connects to its peers, runs its role (analysis/testbed/roles.py) and reports its
events; an exception is reported with the device's name before the process exits with status 1.

Events are the simulator's schema (netsim.engine.EventLog.to_frame): (time_s, end_s, node, kind,
user, bytes, round) with kind one of netsim.engine.ACTIVITIES, times on the host's monotonic clock
(one clock for every process on the host). A transfer is recorded by its receiver, from the moment
the sender started it (`sent_at`, carried in the message's header) to its last byte's arrival; its
bytes are the message's bytes on the wire (netsim.testbed.wire: the tensors plus the header).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field

import torch

from . import wire
from .shaper import ShapedSender

HOST = "127.0.0.1"


@dataclass(frozen=True)
class LinkSpec:
    """One direction of a link: its payload rate (bit/s; inf: unshaped) and per-message latency (s)."""

    rate_bps: float
    latency_s: float = 0.0


@dataclass(frozen=True)
class DeviceSpec:
    """What a device process needs: its name (the simulator's node name), its role, the model
    (a scenarios.ModelConfig as a dict) and the protocol's sizes, and its outgoing links by peer."""

    name: str
    role: str
    user: int  # the user's index; -1 for the servers
    model: dict
    cuts: tuple[int, ...]
    users: int
    rounds: int
    local_steps: int
    links: dict[str, LinkSpec] = field(default_factory=dict)  # peer name -> the link towards it
    groups: dict[str, tuple[int, ...]] = field(default_factory=dict)  # SplitLLM: edge name -> its users
    seed: int = 0
    warmup_steps: int = 5
    listen_host: str = HOST  # kernel shaper: 0.0.0.0 inside the device's namespace
    compute_share: float = 1.0  # this device computes at this share of the host's pace (a slower phone: < 1)


class Device:
    """The running device: its spec, the coordinator's connection, its events and its sockets."""

    def __init__(self, spec: DeviceSpec, control):
        self.spec, self.control = spec, control
        self.events: list[tuple] = []
        self.server: socket.socket | None = None
        self.addresses: dict[str, tuple[str, int]] = {}
        self._calibrate = None

    # ---- set-up ----------------------------------------------------------------------------------
    def listen(self) -> None:
        self.server = socket.create_server((self.spec.listen_host, 0), backlog=256)

    def ready_and_wait(self, calibrate=None) -> None:
        """Report ready (with the listening address), time this device's work when the coordinator
        asks (`calibrate(steps)` -> {phase: [seconds per step]}, sent back as they are: one device at a
        time, so that no other device computes meanwhile), then block until the go."""
        self._calibrate = calibrate
        self.control.send(("ready", self.spec.name, self.server.getsockname() if self.server else None))
        message = self._serve_calibration()
        if message[0] != "go":
            raise RuntimeError(f"unexpected message from the coordinator: {message[0]}")
        self.addresses = message[1]  # peer name -> (host, port) as this device reaches it

    def _serve_calibration(self) -> tuple:
        """Answer the coordinator's calibration requests; return its first other message."""
        while True:
            message = self.control.recv()
            if message[0] != "calibrate":
                return message
            times = self._calibrate(message[1]) if self._calibrate is not None else {}
            times = {phase: [self.stretch(seconds) for seconds in steps] for phase, steps in times.items()}
            self.control.send(("calibrated", self.spec.name, times))

    def after_run(self) -> None:
        """After its events went out: time its work again when asked (the coordinator calibrates
        before and after the run, so that a host whose speed drifts is taken at its average), until
        told to exit."""
        message = self._serve_calibration()
        if message[0] != "exit":
            raise RuntimeError(f"unexpected message from the coordinator: {message[0]}")

    def connect(self, peer: str) -> socket.socket:
        """A connection to `peer`, introduced by a hello (unshaped, not timed)."""
        sock = socket.create_connection(tuple(self.addresses[peer]))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        wire.send(sock, "hello", {}, name=self.spec.name, user=self.spec.user)
        return sock

    def accept(self, count: int) -> dict[str, socket.socket]:
        """`count` connections by the name their hello gives."""
        conns = {}
        for _ in range(count):
            conn, _ = self.server.accept()
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            header, _, _ = wire.receive(conn)
            conns[header["name"]] = conn
        return conns

    def sender(self, sock: socket.socket, peer: str) -> ShapedSender:
        link = self.spec.links[peer]
        return ShapedSender(sock, link.rate_bps, latency_s=link.latency_s)

    # ---- work and messages -------------------------------------------------------------------------
    def stretch(self, compute_s: float) -> float:
        """Slow this device to `spec.compute_share` of the host's pace: after `compute_s` seconds of
        work, wait until the work has taken compute_s / share in all; return the seconds it took in all
        (measured, so a late wake-up counts). Each step is slowed by the same factor, whatever the
        host's load or the gaps between steps (a CPU quota caps only the average over its period)."""
        share = self.spec.compute_share
        if share >= 1:
            return compute_s
        start = time.monotonic()
        time.sleep(compute_s * (1 / share - 1))
        return compute_s + time.monotonic() - start

    def record(self, start: float, end: float, node: str, kind: str, user: int, nbytes: int, round_index: int) -> None:
        self.events.append((start, end, node, kind, user, nbytes, round_index))

    def timed(self, node: str, kind: str, user: int, round_index: int):
        """Context manager recording the block it wraps as one activity."""
        return _Timed(self, node, kind, user, round_index)

    def send(self, sender, kind: str, tensors: dict[str, torch.Tensor], link: str, user: int, round_index: int,
             **fields) -> int:
        """One message of activity `kind` on `link` (a node name "a->b"); the sender's start time goes
        in its header, so that its receiver records the transfer."""
        return wire.send(sender, kind, tensors, link=link, user=user, round=round_index, sent_at=time.monotonic(),
                         **fields)

    def receive(self, sock: socket.socket) -> tuple[dict, dict[str, torch.Tensor]]:
        """One message, recorded as the transfer it was."""
        header, tensors, nbytes = wire.receive(sock)
        self.record(header["sent_at"], time.monotonic(), header["link"], header["kind"], header["user"], nbytes,
                    header["round"])
        return header, tensors

    def done(self) -> None:
        self.control.send(("done", self.spec.name, self.events))


class _Timed:
    __slots__ = ("device", "node", "kind", "user", "round", "start")

    def __init__(self, device, node, kind, user, round_index):
        self.device, self.node, self.kind, self.user, self.round = device, node, kind, user, round_index

    def __enter__(self):
        self.start = time.monotonic()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.device.stretch(time.monotonic() - self.start)
            self.device.record(self.start, time.monotonic(), self.node, self.kind, self.user, 0, self.round)


def run_device(spec: DeviceSpec, control, roles: dict) -> bool:
    """Run `roles[spec.role]` (analysis/testbed/roles.py) with `control` (send/recv to the coordinator:
    a Unix socket's Connection, or a Ray actor's queues); report a failure with the device's name.
    True when the device finished."""
    try:
        device = Device(spec, control)
        roles[spec.role](device)
        device.done()
        device.after_run()
        return True
    except BaseException as err:  # noqa: BLE001 - reported; the caller exits non-zero
        message = f"{type(err).__name__}: {err}".strip().splitlines()[0]
        try:
            control.send(("error", spec.name, message))
        except OSError:
            pass
        return False


COORDINATOR_PID_ENV = "SPLITSIM_COORDINATOR_PID"
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_coordinator() -> None:
    """Ask the kernel to kill this process when the coordinator that started it dies (a SIGKILLed
    `splitsim emulate` leaves no device behind), and exit now if it already has. Linux only; elsewhere
    the control socket's end stops the device at its next message."""
    import ctypes
    import signal

    expected = os.environ.get(COORDINATOR_PID_ENV)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if expected is not None and os.getppid() != int(expected):  # the coordinator died before the prctl
        os._exit(1)


def main(spec_path: str, control_path: str, roles: dict) -> None:
    """A device process (`python -m splitsim.analysis.testbed.device SPEC CONTROL`): read its spec, connect to
    the coordinator, run its role; exit with status 1 after a failure (reported with the device's name)."""
    import pickle
    from multiprocessing.connection import Client

    die_with_coordinator()

    with open(spec_path, "rb") as f:
        spec: DeviceSpec = pickle.load(f)
    control = Client(control_path, family="AF_UNIX")
    control.send(("hello", spec.name, None))
    if not run_device(spec, control, roles):
        raise SystemExit(1)

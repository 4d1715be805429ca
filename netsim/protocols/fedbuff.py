"""FL with buffered asynchronous aggregation (FedBuff: Nguyen et al., "Federated Learning with
Buffered Asynchronous Aggregation", AISTATS 2022, Algorithm 1).

The fed server holds a global version v. At most `concurrency` users train at once; each starts on
the current v (its adapter comes down, optional), trains its local epoch, uploads its update; the
server keeps the updates in a buffer and, when `buffer_size` are in, steps: v + 1 (after
`aggregation_s`; updates that arrive meanwhile fill the next buffer). An update's staleness is the server's v when it arrives less the v it started on.
A user that has uploaded trains again only on a newer version than the one it trained on (so with
buffer = concurrency = all users the run is synchronous FedAvg round by round). Free training slots
are filled once everything that happened at that instant has been processed (a dispatch at the end
of the instant): from the eligible idle users (sorted), uniformly at random (the plan's seed), so
the order of simultaneous events does not change the run. The run ends at the server step that
aggregates the last of `updates` updates.

SFL's asynchronous form (`split`: the per-user times of SFL's local iteration) follows SplitFed's
first variant (Thapa et al., "SplitFed: When Federated Learning Meets Split Learning", AAAI 2022,
SFLV1, the form FedsLLM's main server takes and `learning.train` trains): the main server keeps a
server-side copy of the adapter per training. A training that starts on version v takes the
client-side adapter of v from the fed server and the server-side adapter of v on the main server;
its V local iterations (forward, activations up on its share of the main band, the main server's
forward and backward on that training's own copy, gradients down, backward) never meet another
training's copy, so activations from users on different versions are never mixed. When its client
adapter reaches the fed server, its server-side copy joins the main server's buffer at the same
instant (the servers are wired: no radio time), and both sides take FedBuff's server step together,
with the same staleness weights: version v + 1 is a pair (client side, server side).

Two engines run it: SimPy (`run_fedbuff`: processes per training, the dispatch a zero-delay event
after the instant's arrivals) and an event list (`run_fedbuff_event_list`: a heap of phase ends),
equal on every run (tests/test_fedbuff.py).

Bandwidth: each user training holds an equal share of the fed band and of the downlink for its
concurrency slot, B_c / concurrency (the plan's `adapter_up_s` are at that share), and in SFL of the
main band, B_s / concurrency: a slot's band idles between a user's upload and the next user's
download only at the instant of the hand-over.

A cell that moves (the plan's `track`: netsim.dynamics.ChannelTrack): each transfer is priced from
the instant it starts over the channel as it then is, block by block (`ChannelTrack.transfer_s`, the
same rule as the synchronous protocols'), so a user in a deep fade now uploads slowly now.
Drop-outs (`dropout_probability`): each training started drops out with that probability, after a
uniformly drawn number of its local steps (0 ... n - 1), as a synchronous round's participant does
(netsim.participation); it never uploads, its slot is free at once (taken, like any free slot, by an
eligible idle user drawn at random), and it may train again on the version it left (it delivered
nothing on it) — so a buffer that needs every user still fills. The draws are one pair per training
started, in the order they start (the same in both engines), from the plan's `dropout_seed`.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, EventLog
from ..topology import FED_SERVER, MAIN_SERVER, user_node
from .common import Accounts
from .rounds import finish_accounts, recorder

_DOWN, _TRAIN, _UP, _AGG = KIND["downlink_adapter"], KIND["client_train"], KIND["uplink_adapter"], KIND["aggregation"]
_FWD, _BWD, _SRV = KIND["client_forward"], KIND["client_backward"], KIND["server_compute"]
_ACT_UP, _GRAD_DOWN = KIND["uplink_activation"], KIND["downlink_gradient"]


@dataclass(frozen=True)
class SplitSteps:
    """SFL's local iteration per user (K,) seconds: the client's forward and backward, the activations'
    upload at a slot's share of the main band, the main server's forward and backward, the gradients'
    download (None: the downlink is not simulated)."""

    client_forward_s: np.ndarray
    client_backward_s: np.ndarray
    server_s: np.ndarray
    activation_up_s: np.ndarray
    gradient_down_s: np.ndarray | None
    activation_bits: float
    gradient_bits: float

    def iteration(self, k: int) -> list[tuple[float, int, str, float]]:
        """User k's one local iteration: (seconds, activity kind, node, bits) per phase."""
        me = user_node(k)
        out = [(float(self.client_forward_s[k]), _FWD, me, 0.0),
               (float(self.activation_up_s[k]), _ACT_UP, f"{me}->{MAIN_SERVER}", self.activation_bits),
               (float(self.server_s[k]), _SRV, MAIN_SERVER, 0.0)]
        if self.gradient_down_s is not None:
            out.append((float(self.gradient_down_s[k]), _GRAD_DOWN, f"{MAIN_SERVER}->{me}", self.gradient_bits))
        return out + [(float(self.client_backward_s[k]), _BWD, me, 0.0)]


@dataclass(frozen=True)
class FedBuffPlan:
    updates: int  # client updates to aggregate in all: server steps x buffer_size
    batches: np.ndarray  # (K,) local steps of one user's training
    train_s: float  # FL: one local step of the whole model (forward + backward); SFL: unused (0)
    adapter_up_s: np.ndarray  # (K,) seconds of one adapter upload at a concurrency slot's share of B_c
    adapter_down_s: np.ndarray | None  # (K,) seconds of one adapter download, or None (no downlink)
    adapter_bits: float
    buffer_size: int
    concurrency: int
    seed: int  # the order in which free slots take users
    aggregation_s: float = 0.0
    track: object | None = None  # netsim.dynamics.ChannelTrack: a time-varying channel
    links: dict | None = None  # with a track: {kind: (bandwidth_hz (K,), c (K,), bits, link model)}
    dropout_probability: float = 0.0
    dropout_seed: int = 0
    split: SplitSteps | None = None  # SFL's local iteration; None: FL

    @property
    def scheme(self) -> str:
        return "fl" if self.split is None else "sfl"

    @property
    def users(self) -> int:
        return int(self.batches.shape[0])

    @property
    def server_steps(self) -> int:
        return self.updates // self.buffer_size

    def phases(self, k: int, stop: int | None = None) -> list[tuple[float, int, str, float]]:
        """One training of user k: (seconds, activity kind, node, bits) per phase — or, when it drops
        out after `stop` of its local steps, the phases up to there (no upload)."""
        me = user_node(k)
        out = []
        if self.adapter_down_s is not None:
            out.append((float(self.adapter_down_s[k]), _DOWN, f"{FED_SERVER}->{me}", self.adapter_bits))
        steps = int(self.batches[k]) if stop is None else stop
        if self.split is None:
            out.append((steps * self.train_s, _TRAIN, me, 0.0))
        else:
            out += self.split.iteration(k) * steps
        if stop is None:
            out.append((float(self.adapter_up_s[k]), _UP, f"{me}->{FED_SERVER}", self.adapter_bits))
        return out

    def seconds(self, k: int, phase: tuple[float, int, str, float], start_s: float) -> float:
        """How long `phase` (one of phases(k)) of user k takes when it starts at `start_s`: on a moving
        cell a transfer is priced over the channel from then on; otherwise the planned seconds."""
        seconds, kind, _, bits = phase
        if self.track is None or kind not in self.links:
            return seconds
        bandwidth, c, _, link = self.links[kind]
        return float(self.track.transfer_s(np.array([bits]), bandwidth[k:k + 1], c[k:k + 1], np.array([start_s]),
                                           np.array([k]), link)[0])


@dataclass
class FedBuffRun:
    """What a FedBuff run did: per-user accounts (round_end_s: the server steps' times) and one row per
    update (user, the version it started on, the version at its arrival, its staleness, arrival s)."""

    accounts: Accounts
    updates: list[tuple[int, int, int, int, float]]
    end_s: float
    dropped: list[tuple[int, int, float]]  # (user, version it started on, time it left)


class _Server:
    """The fed server's state, shared by both engines: version, buffer, slots, who may train."""

    def __init__(self, plan: FedBuffPlan):
        self.plan = plan
        self.rng = np.random.default_rng(plan.seed)
        self.drop_rng = np.random.default_rng(plan.dropout_seed)
        self.dropped: list[tuple[int, int, float]] = []  # (user, version it started on, time it left)
        self.version = 0  # the global version users start on (steps done)
        self.buffer = 0  # updates in the buffer being filled
        self.filled = 0  # buffers filled (server steps due, done or being aggregated)
        self.started = 0
        self.training = 0
        self.last_version = np.full(plan.users, -1)  # the version each user last trained on
        self.busy = np.zeros(plan.users, dtype=bool)
        self.updates: list[tuple[int, int, int, int, float]] = []

    def arrive(self, k: int, started_on: int, now: float) -> bool:
        """User k's update arrived; True when it fills the buffer (a server step is due). It goes into the
        buffer being filled, the one server step `filled` aggregates — while an earlier full buffer is
        still being aggregated (aggregation_s), that is the next one — and its staleness is that step
        less the version it started on."""
        self.busy[k] = False
        self.training -= 1
        self.updates.append((k, started_on, self.filled, self.filled - started_on, now))
        self.buffer += 1
        if self.buffer < self.plan.buffer_size:
            return False
        self.buffer = 0  # full: later arrivals fill the next buffer
        self.filled += 1
        return True

    def drop_point(self, k: int) -> int | None:
        """Local steps user k's training just started does before it drops out (None: it does not)."""
        u = self.drop_rng.random(2)  # one pair per training started, drawn whatever the probability
        if u[0] >= self.plan.dropout_probability:
            return None
        return int(u[1] * int(self.plan.batches[k]))

    def leave(self, k: int, started_on: int, now: float) -> None:
        """User k dropped out: no update; its slot is free and another training may take its place."""
        self.busy[k] = False
        self.training -= 1
        self.started -= 1
        self.last_version[k] = started_on - 1  # it delivered nothing on that version: it may try it again
        self.dropped.append((k, started_on, now))

    def step(self) -> None:
        """The server step of the oldest full buffer is done: the new version is out."""
        self.version += 1

    def picks(self) -> list[int]:
        """Users to start now: free slots filled from the eligible idle users, uniformly at random."""
        out = []
        while self.training < self.plan.concurrency and self.started < self.plan.updates:
            eligible = np.flatnonzero(~self.busy & (self.last_version < self.version))
            if not eligible.size:
                break
            k = int(eligible[self.rng.integers(eligible.size)])
            self.busy[k] = True
            self.last_version[k] = self.version
            self.training += 1
            self.started += 1
            out.append(k)
        return out

    @property
    def done(self) -> bool:
        return self.version == self.plan.server_steps


def _book(acc: Accounts, record, k: int, start: float, seconds: float, kind: int, node: str, bits: float,
          version: int) -> None:
    acc.busy_s[kind, k] += seconds
    record((start, seconds, node, kind, k, bits, version))


def run_fedbuff(env: simpy.Environment, plan: FedBuffPlan, log: EventLog,
                on_round: Callable[[int, float], None] | None = None) -> FedBuffRun:
    """FedBuff on SimPy: one process per training; arrivals at an instant, then one dispatch."""
    acc = Accounts.zeros(plan.users)
    record = recorder(log)
    server = _Server(plan)
    pending = {"dispatch": False}

    def training(k: int, version: int):
        began = env.now
        stop = server.drop_point(k)
        for phase in plan.phases(k, stop):
            start, (_, kind, node, bits) = env.now, phase
            seconds = plan.seconds(k, phase, start)
            yield env.timeout(seconds)
            _book(acc, record, k, start, seconds, kind, node, bits, version)
        if stop is not None:  # it left after `stop` of its local steps
            acc.wasted_s[k] += env.now - began
            server.leave(k, version, env.now)
            ask_dispatch()
            return
        full = server.arrive(k, version, env.now)
        ask_dispatch()  # its slot is free now
        if full:
            yield from aggregate()
            ask_dispatch()  # the new version: users who trained on the last may go again

    def aggregate():
        if plan.aggregation_s > 0:
            start = env.now
            yield env.timeout(plan.aggregation_s)
            record((start, plan.aggregation_s, FED_SERVER, _AGG, -1, 0.0, server.version))
        server.step()
        acc.round_end_s.append(env.now)
        if on_round is not None:
            on_round(server.version - 1, env.now)

    def ask_dispatch():
        if not pending["dispatch"]:
            pending["dispatch"] = True
            env.process(dispatch())

    def dispatch():
        yield env.timeout(0)  # after every arrival already due at this instant
        pending["dispatch"] = False
        for k in server.picks():
            env.process(training(k, server.version))

    for k in server.picks():
        env.process(training(k, server.version))
    env.run()
    _check_finished(server)
    acc.rounds_joined[:] = np.bincount([u[0] for u in server.updates], minlength=plan.users)
    return FedBuffRun(finish_accounts(acc), server.updates, float(env.now), server.dropped)


def run_fedbuff_event_list(plan: FedBuffPlan, log: EventLog,
                           on_round: Callable[[int, float], None] | None = None) -> FedBuffRun:
    """FedBuff on an event list (a heap of phase ends, FIFO among equal times): the second engine."""
    acc = Accounts.zeros(plan.users)
    record = recorder(log)
    server = _Server(plan)
    heap: list[tuple[float, int, str, tuple]] = []
    seq = 0
    now = 0.0

    def push(t: float, what: str, data: tuple) -> None:
        nonlocal seq
        heapq.heappush(heap, (t, seq, what, data))
        seq += 1

    def start(k: int, t: float) -> None:
        stop = server.drop_point(k)
        phases = plan.phases(k, stop)
        if phases:
            push_phase(k, server.version, phases, 0, t, t, stop is not None)
        else:  # it leaves before its first phase
            push(t, "leave", (k, server.version, t))

    def push_phase(k: int, version: int, phases: list, i: int, t: float, began: float, drops: bool) -> None:
        seconds = plan.seconds(k, phases[i], t)
        push(t + seconds, "phase", (k, version, phases, i, t, began, drops, seconds))

    for k in server.picks():
        start(k, now)
    while heap:
        now = heap[0][0]
        dispatch = False
        while heap and heap[0][0] == now:
            _, _, what, data = heapq.heappop(heap)
            if what == "leave":
                k, version, began = data
                acc.wasted_s[k] += now - began
                server.leave(k, version, now)
                dispatch = True
            elif what == "phase":
                k, version, phases, i, t0, began, drops, seconds = data
                _, kind, node, bits = phases[i]
                _book(acc, record, k, t0, seconds, kind, node, bits, version)
                if i + 1 < len(phases):
                    push_phase(k, version, phases, i + 1, now, began, drops)
                    continue
                dispatch = True  # its slot is free now
                if drops:  # it left after its last phase (its `stop` local steps)
                    acc.wasted_s[k] += now - began
                    server.leave(k, version, now)
                    continue
                if server.arrive(k, version, now):
                    if plan.aggregation_s > 0:
                        push(now + plan.aggregation_s, "step", (now,))
                        continue
                    server.step()
                    acc.round_end_s.append(now)
                    if on_round is not None:
                        on_round(server.version - 1, now)
            else:  # a server step that took aggregation_s
                record((data[0], plan.aggregation_s, FED_SERVER, _AGG, -1, 0.0, server.version))
                server.step()
                acc.round_end_s.append(now)
                if on_round is not None:
                    on_round(server.version - 1, now)
                dispatch = True
        if dispatch:
            for k in server.picks():
                start(k, now)
    _check_finished(server)
    acc.rounds_joined[:] = np.bincount([u[0] for u in server.updates], minlength=plan.users)
    return FedBuffRun(finish_accounts(acc), server.updates, now, server.dropped)


def _check_finished(server: _Server) -> None:
    """Every server step was taken (it always is: a dropped training is replaced by another)."""
    if not server.done:
        raise RuntimeError(f"FedBuff stopped after {server.version} of {server.plan.server_steps} server steps")

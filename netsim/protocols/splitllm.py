"""SplitLLM (Alg. 1 of Zhang et al.): cloud, M edge servers, N users; user | edge | cloud split.

Per round the cloud sends the latest user and edge adapters down the backhaul; the edges work in
parallel, each serving its users in turn. Per mini-batch: user forward, activations up to the
edge (wireless), edge forward, activations up the backhaul, cloud forward + backward (a shared
resource), gradient down the backhaul, edge backward, gradient down to the user (optional
downlink), user backward. After its epoch a user uploads its adapter to the edge; when all its
users are done, the edge sends their adapters and its own up to the cloud, which aggregates once
every edge is in.

With users who come and go or a time-varying channel the rounds run through `_cloud_rounds`: each
edge serves its participants in turn; a user who stops (drop-out, offline, deadline) stops its
edge's and the cloud's work on its batch too, and only the adapters that reached the edge go up.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, Barrier, ComputeNode, EventLog
from ..topology import CLOUD, edge_node, user_node
from .common import Accounts, Recorder, close_rounds, round_gates
from .rounds import (LINK_ADAPTER_DOWN, LINK_ADAPTER_UP, LINK_GRAD_DOWN, LINK_UP, RoundClient, Stop, all_users,
                     close_round, finish_accounts)


@dataclass(frozen=True)
class SplitLlmPlan:
    """Durations of one SplitLLM run: per batch (s) unless noted; per-user-round arrays (R, K)."""

    rounds: int
    edge_users: list[list[int]]  # users of each edge, in the order they take turns
    batches: np.ndarray  # (K,) mini-batches per round
    user_forward_s: float
    user_backward_s: float
    edge_forward_s: float
    edge_backward_s: float
    cloud_s: float  # forward + backward
    uplink_s: np.ndarray  # (R, K) activations user -> edge
    downlink_gradient_s: np.ndarray | None  # (R, K) gradient edge -> user
    user_adapter_up_s: np.ndarray  # (R, K)
    user_adapter_down_s: np.ndarray | None  # (R, K)
    backhaul_activation_s: float
    backhaul_gradient_s: float
    backhaul_adapters_up_s: list[float]  # per edge: its users' adapters and its own
    backhaul_adapters_down_s: float  # user + edge adapters, cloud -> each edge
    bits: dict  # activation, gradient, backhaul_activation, backhaul_gradient, user_adapter, edge_adapter
    cloud_concurrency: int | None = None
    aggregation_s: float = 0.0
    slowdown: np.ndarray | None = None  # (R, K)
    backhaul_rate_bps: float = float("inf")  # to price the adapters of the users who made it
    backhaul_latency_s: float = 0.0
    track: object | None = None  # netsim.dynamics.ChannelTrack of the user-edge links
    links: dict | None = None  # with a track: per link index (netsim.protocols.rounds) (bandwidth_hz, c, bits)
    participation: object | None = None  # netsim.participation.Participation: who trains each round

    @property
    def users(self) -> int:
        return int(self.batches.shape[0])

    def table(self, link: int) -> np.ndarray | None:
        return {LINK_UP: self.uplink_s, LINK_GRAD_DOWN: self.downlink_gradient_s,
                LINK_ADAPTER_UP: self.user_adapter_up_s, LINK_ADAPTER_DOWN: self.user_adapter_down_s}[link]


def splitllm_turn(client: RoundClient, m: int, stop_after: float):
    """Process: one user's turn at its edge (user, edge, backhaul and cloud work, all cut at the
    user's cutoff); True when its adapter reached the edge."""
    plan, k, r, env = client.plan, client.k, client.r, client.env
    if env.now >= client.cutoff:
        return False
    user, edge, bits = user_node(k), edge_node(m), plan.bits
    up, down, up_haul, down_haul = f"{user}->{edge}", f"{edge}->{user}", f"{edge}->{CLOUD}", f"{CLOUD}->{edge}"
    hold = client.hold
    try:
        slow = 1.0 if plan.slowdown is None else plan.slowdown[r, k]
        if plan.user_adapter_down_s is not None:
            yield from hold(client.transfer(LINK_ADAPTER_DOWN, 1.0), down, KIND["downlink_adapter"],
                            bits["user_adapter"])
        for batch in range(int(plan.batches[k])):
            if batch >= stop_after:
                raise Stop
            yield from hold(plan.user_forward_s * slow, user, KIND["client_forward"], 0.0)
            yield from hold(client.transfer(LINK_UP, 1.0), up, KIND["uplink_activation"], bits["activation"])
            yield from hold(plan.edge_forward_s, edge, KIND["edge_compute"], 0.0)
            yield from hold(plan.backhaul_activation_s, up_haul, KIND["backhaul_activation"],
                            bits["backhaul_activation"])
            if client.server is None:
                yield from hold(plan.cloud_s, CLOUD, KIND["cloud_compute"], 0.0)
            else:
                yield from client.shared_server(plan.cloud_s, CLOUD, KIND["cloud_compute"])
            yield from hold(plan.backhaul_gradient_s, down_haul, KIND["backhaul_gradient"], bits["backhaul_gradient"])
            yield from hold(plan.edge_backward_s, edge, KIND["edge_compute"], 0.0)
            if plan.downlink_gradient_s is not None:
                yield from hold(client.transfer(LINK_GRAD_DOWN, 1.0), down, KIND["downlink_gradient"],
                                bits["gradient"])
            yield from hold(plan.user_backward_s * slow, user, KIND["client_backward"], 0.0)
        yield from hold(client.transfer(LINK_ADAPTER_UP, 1.0), up, KIND["uplink_adapter"], bits["user_adapter"])
    except Stop:
        return False
    return True


def _edge_round(env, m: int, r: int, plan: SplitLlmPlan, draw, record, cloud, out: dict):
    """Process: edge m's round under users who come and go: adapters down the backhaul, its
    participants in turn, then the adapters that made it (and its own) up the backhaul."""
    bits = plan.bits
    t, d = env.now, plan.backhaul_adapters_down_s
    yield env.timeout(d)
    record((t, d, f"{CLOUD}->{edge_node(m)}", KIND["backhaul_adapter"], -1, bits["user_adapter"] + bits["edge_adapter"],
            r))
    mine = set(plan.edge_users[m])
    arrived = 0
    for j, (k, cutoff, stop) in enumerate(zip(draw.users, draw.cutoff_s, draw.stop_after_iterations)):
        if int(k) not in mine:
            continue
        client = RoundClient(env, int(k), r, plan, record, float(cutoff), cloud)
        ok = yield env.process(splitllm_turn(client, m, stop))
        out[j] = (ok, client.busy)
        arrived += ok
    up_bits = arrived * bits["user_adapter"] + bits["edge_adapter"]
    t, d = env.now, plan.backhaul_latency_s + up_bits / plan.backhaul_rate_bps
    yield env.timeout(d)
    record((t, d, f"{edge_node(m)}->{CLOUD}", KIND["backhaul_adapter"], -1, up_bits, r))


def _cloud_rounds(env, plan: SplitLlmPlan, log: EventLog, acc: Accounts, on_round):
    """Process: the cloud's loop under users who come and go (netsim.participation)."""
    record = log.rows.append if log.enabled else deque(maxlen=0).append
    cloud = simpy.Resource(env, capacity=plan.cloud_concurrency) if plan.cloud_concurrency else None
    kinds = acc.busy_s.shape[0]
    for r in range(plan.rounds):
        draw = plan.participation.draw(env.now) if plan.participation is not None else all_users(plan.users, env.now)
        if draw.start_s > env.now:
            yield env.timeout(draw.start_s - env.now)
        out: dict = {}
        yield env.all_of([env.process(_edge_round(env, m, r, plan, draw, record, cloud, out))
                          for m in range(len(plan.edge_users))])
        busy = np.zeros((kinds, draw.users.size))
        arrived = np.zeros(draw.users.size, dtype=bool)
        for j, (ok, seconds_by_kind) in out.items():
            arrived[j] = ok
            for kind, seconds in seconds_by_kind.items():
                busy[kind, j] = seconds
        close_round(acc, draw.users, arrived, busy)
        if plan.aggregation_s > 0:
            t, d = env.now, plan.aggregation_s
            yield env.timeout(d)
            record((t, d, CLOUD, KIND["aggregation"], -1, 0.0, r))
        acc.round_end_s.append(env.now)
        if plan.track is not None:
            plan.track.discard_before(env.now)
        if on_round is not None:
            on_round(r, env.now)


def _edge(env, m: int, plan: SplitLlmPlan, cloud: ComputeNode, rec: Recorder, log: EventLog,
          barriers: list[Barrier], released: list[simpy.Event], acc: Accounts):
    me, bits = edge_node(m), plan.bits
    up_haul, down_haul = f"{me}->{CLOUD}", f"{CLOUD}->{me}"
    for r in range(plan.rounds):
        yield from rec.hold(plan.backhaul_adapters_down_s, down_haul, KIND["backhaul_adapter"], -1,
                            bits["user_adapter"] + bits["edge_adapter"], r)
        for k in plan.edge_users[m]:
            user = user_node(k)
            slow = 1.0 if plan.slowdown is None else plan.slowdown[r, k]
            if plan.user_adapter_down_s is not None:
                yield from rec.hold(plan.user_adapter_down_s[r, k], f"{me}->{user}", KIND["downlink_adapter"], k,
                                    bits["user_adapter"], r, acc.downlink_s)
            for _ in range(int(plan.batches[k])):
                yield from rec.hold(plan.user_forward_s * slow, user, KIND["client_forward"], k, 0.0, r, acc.compute_s)
                yield from rec.hold(plan.uplink_s[r, k], f"{user}->{me}", KIND["uplink_activation"], k,
                                    bits["activation"], r, acc.uplink_s)
                yield from rec.hold(plan.edge_forward_s, me, KIND["edge_compute"], k, 0.0, r)
                yield from rec.hold(plan.backhaul_activation_s, up_haul, KIND["backhaul_activation"], k,
                                    bits["backhaul_activation"], r)
                yield from cloud.run(plan.cloud_s, log, KIND["cloud_compute"], k, r)
                yield from rec.hold(plan.backhaul_gradient_s, down_haul, KIND["backhaul_gradient"], k,
                                    bits["backhaul_gradient"], r)
                yield from rec.hold(plan.edge_backward_s, me, KIND["edge_compute"], k, 0.0, r)
                if plan.downlink_gradient_s is not None:
                    yield from rec.hold(plan.downlink_gradient_s[r, k], f"{me}->{user}", KIND["downlink_gradient"],
                                        k, bits["gradient"], r, acc.downlink_s)
                yield from rec.hold(plan.user_backward_s * slow, user, KIND["client_backward"], k, 0.0, r, acc.compute_s)
            yield from rec.hold(plan.user_adapter_up_s[r, k], f"{user}->{me}", KIND["uplink_adapter"], k,
                                bits["user_adapter"], r, acc.uplink_s)
        n_users = len(plan.edge_users[m])
        yield from rec.hold(plan.backhaul_adapters_up_s[m], up_haul, KIND["backhaul_adapter"], -1,
                            n_users * bits["user_adapter"] + bits["edge_adapter"], r)
        barriers[r].arrive()
        yield released[r]


def run_splitllm(env: simpy.Environment, plan: SplitLlmPlan, log: EventLog,
                 on_round: Callable[[int, float], None] | None = None) -> Accounts:
    acc = Accounts.zeros(plan.users)
    if plan.participation is not None or plan.track is not None:
        env.process(_cloud_rounds(env, plan, log, acc, on_round))
        env.run()
        return finish_accounts(acc, ("client_forward", "client_backward"))
    rec = Recorder(env, log, acc.busy_s)
    cloud = ComputeNode(env, CLOUD, 1.0, plan.cloud_concurrency)
    barriers, released = round_gates(env, plan.rounds, len(plan.edge_users))
    for m in range(len(plan.edge_users)):
        env.process(_edge(env, m, plan, cloud, rec, log, barriers, released, acc))
    env.process(close_rounds(env, plan.rounds, rec, barriers, released, acc, on_round, CLOUD, plan.aggregation_s))
    env.run()
    return acc

"""SplitLLM (Alg. 1 of Zhang et al.): cloud, M edge servers, N users; user | edge | cloud split.

Per round the cloud sends the latest user and edge adapters down the backhaul; the edges work in
parallel, each serving its users in turn. Per mini-batch: user forward, activations up to the
edge (wireless), edge forward, activations up the backhaul, cloud forward + backward (a shared
resource), gradient down the backhaul, edge backward, gradient down to the user (optional
downlink), user backward. After its epoch a user uploads its adapter to the edge; when all its
users are done, the edge sends their adapters and its own up to the cloud, which aggregates once
every edge is in.

Under users who come and go (netsim.participation) each edge serves only the round's participants;
a user who stops (drop-out, offline, deadline) stops its edge's and the cloud's work on its batch
too, and only the adapters that reached the edge go up. The channel may vary in time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, EventLog
from ..topology import CLOUD, edge_node, user_node
from .common import Accounts
from .rounds import (LINK_ADAPTER_DOWN, LINK_ADAPTER_UP, LINK_GRAD_DOWN, LINK_UP, RoundClient, Stop, begin_round,
                     busy_of, close_round, end_round, finish_accounts, recorder)


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
    bits: dict  # activation, gradient, backhaul_activation, backhaul_gradient, user_adapter, edge_adapter
    backhaul_rate_bps: float  # edge <-> cloud, per edge
    backhaul_latency_s: float
    cloud_concurrency: int | None = None
    aggregation_s: float = 0.0
    slowdown: np.ndarray | None = None  # (R, K)
    track: object | None = None  # netsim.dynamics.ChannelTrack of the user-edge links
    links: dict | None = None  # with a track: netsim.protocols.rounds.track_links
    participation: object | None = None  # netsim.participation.Participation: who trains each round

    @property
    def users(self) -> int:
        return int(self.batches.shape[0])

    def backhaul_s(self, bits: float) -> float:
        """One backhaul transfer: latency + bits / rate (s)."""
        return self.backhaul_latency_s + bits / self.backhaul_rate_bps

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


def _edge_round(env, m: int, r: int, plan: SplitLlmPlan, draw, record, cloud, clients: list, arrived: np.ndarray):
    """Process: edge m's round: adapters down the backhaul, its participants in turn (filling their
    places of `clients` and `arrived`), then the adapters that made it (and its own) up."""
    bits = plan.bits
    down_bits = bits["user_adapter"] + bits["edge_adapter"]
    t, d = env.now, plan.backhaul_s(down_bits)
    yield env.timeout(d)
    record((t, d, f"{CLOUD}->{edge_node(m)}", KIND["backhaul_adapter"], -1, down_bits, r))
    mine = set(plan.edge_users[m])
    for j, (k, cutoff, stop) in enumerate(zip(draw.users, draw.cutoff_s, draw.stop_after_iterations)):
        if int(k) in mine:
            clients[j] = RoundClient(env, int(k), r, plan, record, float(cutoff), cloud)
            arrived[j] = yield env.process(splitllm_turn(clients[j], m, stop))
    up_bits = int(arrived[np.isin(draw.users, plan.edge_users[m])].sum()) * bits["user_adapter"] + bits["edge_adapter"]
    t, d = env.now, plan.backhaul_s(up_bits)
    yield env.timeout(d)
    record((t, d, f"{edge_node(m)}->{CLOUD}", KIND["backhaul_adapter"], -1, up_bits, r))


def _cloud_rounds(env, plan: SplitLlmPlan, log: EventLog, acc: Accounts, on_round):
    """Process: the cloud's rounds: every edge at once, then aggregation."""
    record = recorder(log)
    cloud = simpy.Resource(env, capacity=plan.cloud_concurrency) if plan.cloud_concurrency else None
    for r in range(plan.rounds):
        draw = yield from begin_round(env, plan)
        clients, arrived = [None] * draw.users.size, np.zeros(draw.users.size, dtype=bool)
        yield env.all_of([env.process(_edge_round(env, m, r, plan, draw, record, cloud, clients, arrived))
                          for m in range(len(plan.edge_users))])
        close_round(acc, draw.users, arrived, busy_of(clients, acc.busy_s.shape[0]))
        yield from end_round(env, plan, acc, r, 1.0, record, CLOUD, on_round)


def run_splitllm(env: simpy.Environment, plan: SplitLlmPlan, log: EventLog,
                 on_round: Callable[[int, float], None] | None = None) -> Accounts:
    """Run SplitLLM to completion on `env`: the cloud's rounds (`_cloud_rounds`)."""
    acc = Accounts.zeros(plan.users)
    env.process(_cloud_rounds(env, plan, log, acc, on_round))
    env.run()
    return finish_accounts(acc, ("client_forward", "client_backward"))

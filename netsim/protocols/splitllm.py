"""SplitLLM (Alg. 1 of Zhang et al.): cloud, M edge servers, N users; user | edge | cloud split.

Per round the cloud sends the latest user and edge adapters down the backhaul; the edges work in
parallel, each serving its users in turn. Per mini-batch: user forward, activations up to the
edge (wireless), edge forward, activations up the backhaul, cloud forward + backward (a shared
resource), gradient down the backhaul, edge backward, gradient down to the user (optional
downlink), user backward. After its epoch a user uploads its adapter to the edge; when all its
users are done, the edge sends their adapters and its own up to the cloud, which aggregates once
every edge is in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, Barrier, ComputeNode, EventLog
from ..topology import CLOUD, edge_node, user_node
from .common import Accounts, Recorder, close_rounds, round_gates


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

    @property
    def users(self) -> int:
        return int(self.batches.shape[0])


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
    rec = Recorder(env, log, acc.busy_s)
    cloud = ComputeNode(env, CLOUD, 1.0, plan.cloud_concurrency)
    barriers, released = round_gates(env, plan.rounds, len(plan.edge_users))
    for m in range(len(plan.edge_users)):
        env.process(_edge(env, m, plan, cloud, rec, log, barriers, released, acc))
    env.process(close_rounds(env, plan.rounds, rec, barriers, released, acc, on_round, CLOUD, plan.aggregation_s))
    env.run()
    return acc

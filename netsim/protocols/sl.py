"""SL: vanilla split learning. Users take turns with one shared server-side model.

Each round the users train one after another (a token, the server-side model, passes in user
order). In its turn a user receives the user-side adapter of the previous user (optional downlink),
trains its local epoch batch by batch (forward, activations up on the whole band, server forward
+ backward, gradient down (optional), backward) and hands its adapter back to the server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, Barrier, EventLog
from ..topology import MAIN_SERVER, user_node
from .common import Accounts, Recorder, close_rounds, round_gates


@dataclass(frozen=True)
class SlPlan:
    rounds: int
    batches: np.ndarray  # (K,)
    user_forward_s: float
    user_backward_s: float
    server_s: float  # forward + backward per batch
    uplink_s: np.ndarray  # (R, K) activations, the whole band for the active user
    downlink_gradient_s: np.ndarray | None  # (R, K)
    user_adapter_up_s: np.ndarray  # (R, K)
    user_adapter_down_s: np.ndarray | None  # (R, K)
    bits: dict  # activation, gradient, user_adapter
    slowdown: np.ndarray | None = None

    @property
    def users(self) -> int:
        return int(self.batches.shape[0])


def _user(env, k: int, plan: SlPlan, token: simpy.Resource, rec: Recorder, barriers: list[Barrier],
          released: list[simpy.Event], acc: Accounts):
    me, bits = user_node(k), plan.bits
    up, down = f"{me}->{MAIN_SERVER}", f"{MAIN_SERVER}->{me}"
    for r in range(plan.rounds):
        slow = 1.0 if plan.slowdown is None else plan.slowdown[r, k]
        with token.request() as turn:
            yield turn
            if plan.user_adapter_down_s is not None:
                yield from rec.hold(plan.user_adapter_down_s[r, k], down, KIND["downlink_adapter"], k,
                                    bits["user_adapter"], r, acc.downlink_s)
            for _ in range(int(plan.batches[k])):
                yield from rec.hold(plan.user_forward_s * slow, me, KIND["client_forward"], k, 0.0, r, acc.compute_s)
                yield from rec.hold(plan.uplink_s[r, k], up, KIND["uplink_activation"], k, bits["activation"], r,
                                    acc.uplink_s)
                yield from rec.hold(plan.server_s, MAIN_SERVER, KIND["server_compute"], k, 0.0, r)
                if plan.downlink_gradient_s is not None:
                    yield from rec.hold(plan.downlink_gradient_s[r, k], down, KIND["downlink_gradient"], k,
                                        bits["gradient"], r, acc.downlink_s)
                yield from rec.hold(plan.user_backward_s * slow, me, KIND["client_backward"], k, 0.0, r, acc.compute_s)
            yield from rec.hold(plan.user_adapter_up_s[r, k], up, KIND["uplink_adapter"], k, bits["user_adapter"], r,
                                acc.uplink_s)
        barriers[r].arrive()
        yield released[r]


def run_sl(env: simpy.Environment, plan: SlPlan, log: EventLog,
           on_round: Callable[[int, float], None] | None = None) -> Accounts:
    acc = Accounts.zeros(plan.users)
    rec = Recorder(env, log, acc.busy_s)
    token = simpy.Resource(env, capacity=1)  # the one server-side model
    barriers, released = round_gates(env, plan.rounds, plan.users)
    for k in range(plan.users):
        env.process(_user(env, k, plan, token, rec, barriers, released, acc))
    env.process(close_rounds(env, plan.rounds, rec, barriers, released, acc, on_round, MAIN_SERVER))
    env.run()
    return acc

"""SFL / FedsLLM: clients in parallel, one main server, one fed server (FedsLLM Alg. 1-2).

Per local iteration a client runs its forward pass, uploads the activations (s bits), the main
server runs forward and backward, the gradients come back (downlink, optional) and the client runs
its backward pass. After V local iterations the client uploads its adapter (s_c bits) to the fed
server; when all K adapters are in, the fed server aggregates and the next round starts (with the
broadcast of the new adapter on the downlink, optional). I0 rounds.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, Barrier, ComputeNode, EventLog
from ..topology import FED_SERVER, MAIN_SERVER, user_node
from .common import Accounts

_FWD, _BWD, _SRV = KIND["client_forward"], KIND["client_backward"], KIND["server_compute"]
_UP, _ADAPTER_UP = KIND["uplink_activation"], KIND["uplink_adapter"]
_GRAD_DOWN, _ADAPTER_DOWN = KIND["downlink_gradient"], KIND["downlink_adapter"]
_AGG = KIND["aggregation"]


@dataclass(frozen=True)
class SflPlan:
    """Precomputed durations of one SFL run. Per-user arrays (K,); per-round arrays (R, K).

    `rounds` and each user's `iterations` are work fractions (see engine.work_fractions): all ones,
    except a final partial step when I0 or V is fractional. `slowdown` (R, K) multiplies a user's
    compute in a round (stragglers); None means 1.
    """

    rounds: list[float]
    iterations: list[list[float]]  # per user
    client_forward_s: np.ndarray
    client_backward_s: np.ndarray
    server_s: np.ndarray
    uplink_activation_s: np.ndarray  # (R, K), per local iteration
    uplink_adapter_s: np.ndarray  # (R, K), per round
    downlink_gradient_s: np.ndarray | None  # (R, K), per local iteration; None = not simulated
    downlink_adapter_s: np.ndarray | None  # (R, K), per round (broadcast at the round start)
    activation_bits: float
    adapter_bits: float
    gradient_bits: float
    server_concurrency: int | None = None
    aggregation_s: float = 0.0
    slowdown: np.ndarray | None = None

    @property
    def users(self) -> int:
        return int(self.server_s.shape[0])


def _client(env: simpy.Environment, k: int, plan: SflPlan, server: ComputeNode | None, log: EventLog,
            barriers: list[Barrier], released: list[simpy.Event], acc: Accounts):
    timeout = env.timeout
    record = log.rows.append if log.enabled else deque(maxlen=0).append
    me, up_link = user_node(k), f"{user_node(k)}->{MAIN_SERVER}"
    fed_link, down_link = f"{user_node(k)}->{FED_SERVER}", f"{MAIN_SERVER}->{user_node(k)}"
    fwd, bwd, srv = plan.client_forward_s[k], plan.client_backward_s[k], plan.server_s[k]
    s_bits, sc_bits, g_bits = plan.activation_bits, plan.adapter_bits, plan.gradient_bits
    compute = uplink = downlink = 0.0
    fwd_s = bwd_s = srv_s = up_s = adapter_up_s = grad_down_s = adapter_down_s = 0.0  # per activity kind
    for r, round_work in enumerate(plan.rounds):
        if plan.downlink_adapter_s is not None:
            t, d = env.now, plan.downlink_adapter_s[r, k] * round_work
            yield timeout(d)
            record((t, d, down_link, _ADAPTER_DOWN, k, sc_bits * round_work, r))
            downlink += d
            adapter_down_s += d
        up = plan.uplink_activation_s[r, k]
        grad = plan.downlink_gradient_s[r, k] if plan.downlink_gradient_s is not None else None
        slow = 1.0 if plan.slowdown is None else plan.slowdown[r, k]
        for iteration_work in plan.iterations[k]:
            w = iteration_work * round_work
            t, d = env.now, fwd * w * slow
            yield timeout(d)
            record((t, d, me, _FWD, k, 0.0, r))
            t, d2 = env.now, up * w
            yield timeout(d2)
            record((t, d2, up_link, _UP, k, s_bits * w, r))
            d3 = srv * w
            if server is None:
                t = env.now
                yield timeout(d3)
                record((t, d3, MAIN_SERVER, _SRV, k, 0.0, r))
            else:
                yield from server.run(d3, log, _SRV, k, r)
            if grad is not None:
                t, d4 = env.now, grad * w
                yield timeout(d4)
                record((t, d4, down_link, _GRAD_DOWN, k, g_bits * w, r))
                downlink += d4
                grad_down_s += d4
            t, d5 = env.now, bwd * w * slow
            yield timeout(d5)
            record((t, d5, me, _BWD, k, 0.0, r))
            compute += d + d3 + d5
            uplink += d2
            fwd_s += d
            srv_s += d3
            bwd_s += d5
            up_s += d2
        t, d = env.now, plan.uplink_adapter_s[r, k] * round_work
        yield timeout(d)
        record((t, d, fed_link, _ADAPTER_UP, k, sc_bits * round_work, r))
        uplink += d
        adapter_up_s += d
        barriers[r].arrive()
        yield released[r]
    acc.compute_s[k], acc.uplink_s[k], acc.downlink_s[k] = compute, uplink, downlink
    for kind, seconds in ((_FWD, fwd_s), (_BWD, bwd_s), (_SRV, srv_s), (_UP, up_s), (_ADAPTER_UP, adapter_up_s),
                          (_GRAD_DOWN, grad_down_s), (_ADAPTER_DOWN, adapter_down_s)):
        acc.busy_s[kind, k] = seconds


def _fed_server(env: simpy.Environment, plan: SflPlan, log: EventLog, barriers: list[Barrier],
                released: list[simpy.Event], acc: Accounts, on_round: Callable[[int, float], None] | None):
    for r, round_work in enumerate(plan.rounds):
        yield barriers[r].event
        if plan.aggregation_s > 0:
            t, d = env.now, plan.aggregation_s * round_work
            yield env.timeout(d)
            if log.enabled:
                log.rows.append((t, d, FED_SERVER, _AGG, -1, 0.0, r))
        acc.round_end_s.append(env.now)
        released[r].succeed()
        if on_round is not None:
            on_round(r, env.now)


def run_sfl(env: simpy.Environment, plan: SflPlan, log: EventLog,
            on_round: Callable[[int, float], None] | None = None) -> Accounts:
    """Run the SFL protocol to completion on `env`; return the per-user accounts."""
    k_users = plan.users
    acc = Accounts.zeros(k_users)
    server = ComputeNode(env, MAIN_SERVER, 1.0, plan.server_concurrency) if plan.server_concurrency else None
    barriers = [Barrier(env, k_users) for _ in plan.rounds]
    released = [env.event() for _ in plan.rounds]
    for k in range(k_users):
        env.process(_client(env, k, plan, server, log, barriers, released, acc))
    env.process(_fed_server(env, plan, log, barriers, released, acc, on_round))
    env.run()
    return acc

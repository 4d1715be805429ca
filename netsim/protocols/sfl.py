"""SFL / FedsLLM: clients in parallel, one main server, one fed server (FedsLLM Alg. 1-2).

Per local iteration a client runs its forward pass, uploads the activations (s bits), the main
server runs forward and backward, the gradients come back (downlink, optional) and the client runs
its backward pass. After V local iterations the client uploads its adapter (s_c bits) to the fed
server; when all participants are in (or have stopped: see netsim.participation), the fed server
aggregates and the next round starts (with the broadcast of the new adapter on the downlink,
optional). I0 rounds.

Transfer times come from the plan's per-round tables, or, on a time-varying channel
(netsim.dynamics), from the channel at the moment each transfer starts. `transfer_s` is the one
place both engines (this SimPy one and netsim.fast_sfl) get them from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, EventLog
from ..topology import MAIN_SERVER
from .common import Accounts
from .rounds import (LINK_ADAPTER_DOWN, LINK_ADAPTER_UP, LINK_GRAD_DOWN, LINK_UP, RoundClient, Stop, drive_rounds,
                     finish_accounts)

_FWD, _BWD, _SRV = KIND["client_forward"], KIND["client_backward"], KIND["server_compute"]
_UP, _ADAPTER_UP = KIND["uplink_activation"], KIND["uplink_adapter"]
_GRAD_DOWN, _ADAPTER_DOWN = KIND["downlink_gradient"], KIND["downlink_adapter"]


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
    track: object | None = None  # netsim.dynamics.ChannelTrack: a time-varying channel
    links: dict | None = None  # with a track: netsim.protocols.rounds.track_links
    participation: object | None = None  # netsim.participation.Participation: who trains each round
    replan: object | None = None  # netsim.replanning.Replanning: the base station re-plans during the run

    @property
    def users(self) -> int:
        return int(self.server_s.shape[0])

    @property
    def iteration_work(self) -> np.ndarray:
        """(K, max iterations) work fraction of every local iteration, 0-padded."""
        width = max((len(w) for w in self.iterations), default=0)
        out = np.zeros((self.users, width))
        for k, work in enumerate(self.iterations):
            out[k, :len(work)] = work
        return out

    def table(self, link: int) -> np.ndarray | None:
        return (self.uplink_activation_s, self.uplink_adapter_s, self.downlink_gradient_s,
                self.downlink_adapter_s)[link]

    def round_shape(self) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """One round at unit work: each user's compute seconds (K,), and its transfers as (link, work
        fractions (K, n): one column per transfer on that link, 0 where a user has none)."""
        work = self.iteration_work
        compute = work.sum(axis=1) * (self.client_forward_s + self.client_backward_s + self.server_s)
        once = np.ones((self.users, 1))
        transfers = [(LINK_UP, work)]
        if self.downlink_gradient_s is not None:
            transfers.append((LINK_GRAD_DOWN, work))
        if self.downlink_adapter_s is not None:
            transfers.append((LINK_ADAPTER_DOWN, once))
        return compute, transfers + [(LINK_ADAPTER_UP, once)]


def sfl_round(client: RoundClient, round_work: float, stop_after: float):
    """Process: one user's SFL round (see the module docstring); returns True when its adapter arrived."""
    plan, k, r = client.plan, client.k, client.r
    me, up_link, fed_link, down_link = client.names
    hold, transfer = client.hold, client.transfer
    try:
        if plan.downlink_adapter_s is not None:
            yield from hold(transfer(LINK_ADAPTER_DOWN, round_work), down_link, _ADAPTER_DOWN,
                            plan.adapter_bits * round_work)
        fwd, bwd, srv = plan.client_forward_s[k], plan.client_backward_s[k], plan.server_s[k]
        slow = 1.0 if plan.slowdown is None else plan.slowdown[r, k]
        for i, iteration_work in enumerate(plan.iterations[k]):
            if i >= stop_after:
                raise Stop
            w = iteration_work * round_work
            yield from hold(fwd * w * slow, me, _FWD, 0.0)
            yield from hold(transfer(LINK_UP, w), up_link, _UP, plan.activation_bits * w)
            if client.server is None:
                yield from hold(srv * w, MAIN_SERVER, _SRV, 0.0)
            else:
                yield from client.shared_server(srv * w, MAIN_SERVER, _SRV)
            if plan.downlink_gradient_s is not None:
                yield from hold(transfer(LINK_GRAD_DOWN, w), down_link, _GRAD_DOWN, plan.gradient_bits * w)
            yield from hold(bwd * w * slow, me, _BWD, 0.0)
        yield from hold(transfer(LINK_ADAPTER_UP, round_work), fed_link, _ADAPTER_UP, plan.adapter_bits * round_work)
    except Stop:
        return False
    return True


def run_sfl(env: simpy.Environment, plan: SflPlan, log: EventLog,
            on_round: Callable[[int, float], None] | None = None) -> Accounts:
    """Run the SFL protocol to completion on `env`; return the per-user accounts."""
    acc = Accounts.zeros(plan.users)
    if plan.replan is not None:
        plan.replan.start(plan)
    env.process(drive_rounds(env, plan, plan.rounds, log, acc, on_round, sfl_round))
    env.run()
    return finish_accounts(acc)

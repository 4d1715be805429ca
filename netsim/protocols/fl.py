"""FL: every user trains the whole model (LoRA) on its own data, uploads its adapter, FedAvg.

Users work in parallel: the new global adapter comes down (optional downlink, FDMA shares), each
user trains its local epoch batch by batch, then uploads its adapter on its FDMA share of the
uplink; when all are in, the server aggregates and the next round starts. Rounds run through
netsim.protocols.rounds (users who come and go, a time-varying channel); a drop-out stops after a
uniform number of its local batches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, EventLog
from ..topology import FED_SERVER
from .common import Accounts
from .rounds import LINK_ADAPTER_DOWN, LINK_ADAPTER_UP, RoundClient, Stop, drive_rounds, finish_accounts


@dataclass(frozen=True)
class FlPlan:
    rounds: int
    batches: np.ndarray  # (K,)
    train_s: float  # one local step of the whole model (forward + backward) per batch
    adapter_up_s: np.ndarray  # (R, K)
    adapter_down_s: np.ndarray | None  # (R, K)
    adapter_bits: float
    aggregation_s: float = 0.0
    slowdown: np.ndarray | None = None
    track: object | None = None  # netsim.dynamics.ChannelTrack: a time-varying channel
    links: dict | None = None  # with a track: netsim.protocols.rounds.track_links
    participation: object | None = None  # netsim.participation.Participation: who trains each round
    replan: object | None = None  # netsim.replanning.Replanning: the base station re-plans the adapter uplink

    @property
    def users(self) -> int:
        return int(self.batches.shape[0])

    def table(self, link: int) -> np.ndarray | None:
        return {LINK_ADAPTER_UP: self.adapter_up_s, LINK_ADAPTER_DOWN: self.adapter_down_s}[link]

    def round_shape(self) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """One round: each user's compute seconds (K,) (its epoch), and its transfers as (link, work
        fractions (K, 1))."""
        once = np.ones((self.users, 1))
        down = [(LINK_ADAPTER_DOWN, once)] if self.adapter_down_s is not None else []
        return self.batches * self.train_s, down + [(LINK_ADAPTER_UP, once)]


def fl_round(client: RoundClient, round_work: float, stop_after: float):
    """Process: one user's FL round; True when its adapter arrived."""
    plan, k, r = client.plan, client.k, client.r
    me, fed_link = client.names[0], client.names[2]
    try:
        slow = 1.0 if plan.slowdown is None else plan.slowdown[r, k]
        if plan.adapter_down_s is not None:
            yield from client.hold(client.transfer(LINK_ADAPTER_DOWN, 1.0), f"{FED_SERVER}->{me}",
                                   KIND["downlink_adapter"], plan.adapter_bits)
        for batch in range(int(plan.batches[k])):
            if batch >= stop_after:
                raise Stop
            yield from client.hold(plan.train_s * slow, me, KIND["client_train"], 0.0)
        yield from client.hold(client.transfer(LINK_ADAPTER_UP, 1.0), fed_link, KIND["uplink_adapter"],
                               plan.adapter_bits)
    except Stop:
        return False
    return True


def run_fl(env: simpy.Environment, plan: FlPlan, log: EventLog,
           on_round: Callable[[int, float], None] | None = None) -> Accounts:
    """Run FL to completion on `env` (the fed server's rounds, netsim.protocols.rounds)."""
    acc = Accounts.zeros(plan.users)
    if plan.replan is not None:
        plan.replan.start(plan)
    env.process(drive_rounds(env, plan, [1.0] * plan.rounds, log, acc, on_round, fl_round))
    env.run()
    return finish_accounts(acc)

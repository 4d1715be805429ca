"""SL: vanilla split learning. Users take turns with one shared server-side model.

Each round the users train one after another (a token, the server-side model, passes in user
order). In its turn a user receives the user-side adapter of the previous user (optional downlink),
trains its local epoch batch by batch (forward, activations up on the whole band, server forward
+ backward, gradient down (optional), backward) and hands its adapter back to the server.

Under users who come and go (netsim.participation) only the round's participants take their turns,
in user order; a user who drops out (after a uniform number of its batches), goes offline or meets
the deadline stops there and the next takes over; a user whose turn comes after its cutoff is
skipped. The channel may vary in time (netsim.dynamics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, EventLog
from ..topology import MAIN_SERVER
from .common import Accounts
from .rounds import (LINK_ADAPTER_DOWN, LINK_ADAPTER_UP, LINK_GRAD_DOWN, LINK_UP, RoundClient, Stop, begin_round,
                     busy_of, close_round, end_round, finish_accounts, recorder)


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
    aggregation_s: float = 0.0
    track: object | None = None  # netsim.dynamics.ChannelTrack: a time-varying channel
    links: dict | None = None  # with a track: netsim.protocols.rounds.track_links
    participation: object | None = None  # netsim.participation.Participation: who trains each round

    @property
    def users(self) -> int:
        return int(self.batches.shape[0])

    def table(self, link: int) -> np.ndarray | None:
        return {LINK_UP: self.uplink_s, LINK_GRAD_DOWN: self.downlink_gradient_s,
                LINK_ADAPTER_UP: self.user_adapter_up_s, LINK_ADAPTER_DOWN: self.user_adapter_down_s}[link]


def sl_turn(client: RoundClient, stop_after: float):
    """Process: one user's turn with the server-side model; True when its adapter is back."""
    plan, k, r, env = client.plan, client.k, client.r, client.env
    me, up, _, down = client.names
    bits = plan.bits
    if env.now >= client.cutoff:  # offline or past the deadline before its turn came
        return False
    try:
        slow = 1.0 if plan.slowdown is None else plan.slowdown[r, k]
        if plan.user_adapter_down_s is not None:
            yield from client.hold(client.transfer(LINK_ADAPTER_DOWN, 1.0), down, KIND["downlink_adapter"],
                                   bits["user_adapter"])
        for batch in range(int(plan.batches[k])):
            if batch >= stop_after:
                raise Stop
            yield from client.hold(plan.user_forward_s * slow, me, KIND["client_forward"], 0.0)
            yield from client.hold(client.transfer(LINK_UP, 1.0), up, KIND["uplink_activation"], bits["activation"])
            yield from client.hold(plan.server_s, MAIN_SERVER, KIND["server_compute"], 0.0)
            if plan.downlink_gradient_s is not None:
                yield from client.hold(client.transfer(LINK_GRAD_DOWN, 1.0), down, KIND["downlink_gradient"],
                                       bits["gradient"])
            yield from client.hold(plan.user_backward_s * slow, me, KIND["client_backward"], 0.0)
        yield from client.hold(client.transfer(LINK_ADAPTER_UP, 1.0), up, KIND["uplink_adapter"],
                               bits["user_adapter"])
    except Stop:
        return False
    return True


def _turns(env: simpy.Environment, plan: SlPlan, log: EventLog, acc: Accounts,
           on_round: Callable[[int, float], None] | None):
    """Process: the rounds of turns; the server-side model passes from participant to participant."""
    record = recorder(log)
    for r in range(plan.rounds):
        draw = yield from begin_round(env, plan)
        clients, arrived = [], np.zeros(draw.users.size, dtype=bool)
        for j, (k, cutoff, stop) in enumerate(zip(draw.users, draw.cutoff_s, draw.stop_after_iterations)):
            clients.append(RoundClient(env, int(k), r, plan, record, float(cutoff), None))
            arrived[j] = yield env.process(sl_turn(clients[-1], stop))
        close_round(acc, draw.users, arrived, busy_of(clients, acc.busy_s.shape[0]))
        yield from end_round(env, plan, acc, r, 1.0, record, MAIN_SERVER, on_round)


def run_sl(env: simpy.Environment, plan: SlPlan, log: EventLog,
           on_round: Callable[[int, float], None] | None = None) -> Accounts:
    """Run SL to completion on `env`: rounds of turns (`_turns`)."""
    acc = Accounts.zeros(plan.users)
    env.process(_turns(env, plan, log, acc, on_round))
    env.run()
    return finish_accounts(acc, ("client_forward", "client_backward"))

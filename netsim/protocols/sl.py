"""SL: vanilla split learning. Users take turns with one shared server-side model.

Each round the users train one after another (a token, the server-side model, passes in user
order). In its turn a user receives the user-side adapter of the previous user (optional downlink),
trains its local epoch batch by batch (forward, activations up on the whole band, server forward
+ backward, gradient down (optional), backward) and hands its adapter back to the server.

With users who come and go or a time-varying channel (netsim.participation, netsim.dynamics) the
rounds run through `_turns`: the participants take their turns in user order; a user who drops
out (after a uniform number of its batches), goes offline or meets the deadline stops there and
the next takes over; a user whose turn comes after its cutoff is skipped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, Barrier, EventLog
from ..topology import MAIN_SERVER, user_node
from .common import Accounts, Recorder, close_rounds, round_gates
from .rounds import (LINK_ADAPTER_DOWN, LINK_ADAPTER_UP, LINK_GRAD_DOWN, LINK_UP, RoundClient, Stop, all_users,
                     close_round, finish_accounts)


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
    track: object | None = None  # netsim.dynamics.ChannelTrack: a time-varying channel
    links: dict | None = None  # with a track: per link index (netsim.protocols.rounds) (bandwidth_hz, c, bits)
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
    """Process: rounds of turns under users who come and go (netsim.participation): the participants
    take their turns in user order; one that drops out or goes offline hands the model on."""
    record = log.rows.append if log.enabled else deque(maxlen=0).append
    kinds = acc.busy_s.shape[0]
    for r in range(plan.rounds):
        draw = plan.participation.draw(env.now) if plan.participation is not None else all_users(plan.users, env.now)
        if draw.start_s > env.now:
            yield env.timeout(draw.start_s - env.now)
        busy = np.zeros((kinds, draw.users.size))
        arrived = np.zeros(draw.users.size, dtype=bool)
        for j, (k, cutoff, stop) in enumerate(zip(draw.users, draw.cutoff_s, draw.stop_after_iterations)):
            client = RoundClient(env, int(k), r, plan, record, float(cutoff), None)
            arrived[j] = yield env.process(sl_turn(client, stop))
            for kind, seconds in client.busy.items():
                busy[kind, j] = seconds
        close_round(acc, draw.users, arrived, busy)
        acc.round_end_s.append(env.now)
        if plan.track is not None:
            plan.track.discard_before(env.now)
        if on_round is not None:
            on_round(r, env.now)


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
    if plan.participation is not None or plan.track is not None:
        env.process(_turns(env, plan, log, acc, on_round))
        env.run()
        return finish_accounts(acc, ("client_forward", "client_backward"))
    rec = Recorder(env, log, acc.busy_s)
    token = simpy.Resource(env, capacity=1)  # the one server-side model
    barriers, released = round_gates(env, plan.rounds, plan.users)
    for k in range(plan.users):
        env.process(_user(env, k, plan, token, rec, barriers, released, acc))
    env.process(close_rounds(env, plan.rounds, rec, barriers, released, acc, on_round, MAIN_SERVER))
    env.run()
    return acc

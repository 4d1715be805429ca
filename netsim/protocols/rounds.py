"""Rounds in which users come and go: the fed server's loop and one user's round as SimPy processes.

Every protocol's round is built from these pieces. `begin_round` asks the plan's `participation`
(netsim.participation) who trains and until when; each participant's round is a process on a
`RoundClient`, whose activities are cut at its cutoff (offline, deadline; a `Stop` ends its round
early); `close_round` and `end_round` book it. `drive_rounds` is the whole loop for the protocols
whose users train in parallel between two aggregations (SFL, FL); SL and SplitLLM, whose users
take turns, have their own loops (netsim.protocols.sl, .splitllm).

Transfer times come from the plan's per-round tables, or on a time-varying channel
(netsim.dynamics) from the channel at the moment each transfer starts: `transfer_s` is the one
place both engines (SimPy, and netsim.fast_sfl) get them from.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np
import simpy

from splitsim.scenarios.types import SHANNON

from ..engine import CATEGORY_OF_KIND, KIND, EventLog
from ..participation import RoundDraw
from ..topology import FED_SERVER, MAIN_SERVER, user_node
from .common import Accounts

__all__ = ["LINK_UP", "LINK_ADAPTER_UP", "LINK_GRAD_DOWN", "LINK_ADAPTER_DOWN", "Stop", "RoundClient", "transfer_s",
           "track_links", "all_users", "begin_round", "busy_of", "close_round", "end_round", "recorder", "drive_rounds",
           "finish_accounts"]

LINK_UP, LINK_ADAPTER_UP, LINK_GRAD_DOWN, LINK_ADAPTER_DOWN = range(4)
_AGG, _QUEUE, _REPLAN = KIND["aggregation"], KIND["server_queue"], KIND["replan"]


def transfer_s(plan, link: int, r: int, users: np.ndarray, work: np.ndarray, start_s: np.ndarray) -> np.ndarray:
    """Seconds of `work` (fractions) of one transfer on `link` for `users` starting at `start_s` (n,).

    `plan` has `table(link)` ((R, K) seconds per unit of work), `track` and `links` (with a track:
    per link (bandwidth_hz (K,), snr_coeff_hz (K,), bits, link model))."""
    if plan.track is None:
        return plan.table(link)[r, users] * work
    bandwidth_hz, snr_coeff_hz, bits, rate = plan.links[link]
    return plan.track.transfer_s(bits * work, bandwidth_hz[users], snr_coeff_hz[users], start_s, users, rate)


def track_links(up: tuple, adapter_up: tuple, down: tuple | None, bits: dict, uplink_rate=SHANNON,
                downlink_rate=SHANNON) -> dict:
    """What `transfer_s` prices a transfer from on a time-varying channel, per link index:
    (bandwidth_hz (K,), c = g·p/N0 (K,) of the planned channel, bits, link model).

    `up`, `adapter_up`, `down`: (bandwidth_hz (K,), c (K,)) of the activation uplink, the adapter
    uplink and the downlink (None: not simulated); `bits`: activation, gradient, adapter; the link
    models (Shannon's, or the NR link: scenarios.nr_link.NrRate) of the uplinks and the downlink."""
    links = {LINK_UP: (*up, bits["activation"], uplink_rate),
             LINK_ADAPTER_UP: (*adapter_up, bits["adapter"], uplink_rate)}
    if down is not None:
        links[LINK_GRAD_DOWN] = (*down, bits["gradient"], downlink_rate)
        links[LINK_ADAPTER_DOWN] = (*down, bits["adapter"], downlink_rate)
    return links


class Stop(Exception):
    """Raised inside a user's round when it stops (drop-out, offline, deadline)."""


class RoundClient:
    """One user's round: `hold` spends time on an activity (cut at the cutoff), `transfer` prices one."""

    __slots__ = ("env", "k", "r", "plan", "record", "cutoff", "busy", "names", "server")

    def __init__(self, env, k, r, plan, record, cutoff, server):
        self.env, self.k, self.r, self.plan, self.record, self.cutoff = env, k, r, plan, record, cutoff
        self.busy = {}
        self.server = server
        me = user_node(k)
        self.names = (me, f"{me}->{MAIN_SERVER}", f"{me}->{FED_SERVER}", f"{MAIN_SERVER}->{me}")

    def hold(self, seconds, node, kind, bits):
        """Spend `seconds` (cut at the cutoff) on an activity and record it; raise Stop when cut."""
        now = self.env.now
        cut = now + seconds > self.cutoff
        d = self.cutoff - now if cut else seconds
        yield self.env.timeout(d)
        if cut and seconds > 0:
            bits = bits * (d / seconds)
        self.record((now, d, node, kind, self.k, bits, self.r))
        self.busy[kind] = self.busy.get(kind, 0.0) + d
        if cut:
            raise Stop

    def transfer(self, link, work):
        k = self.k
        if self.plan.track is None:
            return self.plan.table(link)[self.r, k] * work
        return float(transfer_s(self.plan, link, self.r, np.array([k]), np.array([work]),
                                np.array([self.env.now]))[0])

    def shared_server(self, seconds, node, kind):
        """Hold a slot of the shared server (queueing recorded as server_queue), cut at the cutoff."""
        env, res = self.env, self.server
        with res.request() as req:
            asked = env.now
            if asked >= self.cutoff:
                raise Stop
            if self.cutoff == np.inf:
                yield req
            else:
                got = yield req | env.timeout(self.cutoff - asked)
            waited = env.now - asked
            if waited > 0:
                self.record((asked, waited, node, _QUEUE, self.k, 0.0, self.r))
            if self.cutoff != np.inf and req not in got:
                raise Stop
            yield from self.hold(seconds, node, kind, 0.0)


def all_users(users: int, start_s: float) -> RoundDraw:
    """Everyone, from `start_s`, to the end (no participation model)."""
    return RoundDraw(start_s=start_s, users=np.arange(users), stop_after_iterations=np.full(users, np.inf),
                     cutoff_s=np.full(users, np.inf))


def close_round(acc: Accounts, users: np.ndarray, arrived: np.ndarray, busy: np.ndarray) -> None:
    """Book one round: `busy` (kinds, n) seconds of `users`, wasted where the update did not arrive."""
    acc.busy_s[:, users] += busy
    acc.rounds_joined[users] += 1
    acc.wasted_s[users] += np.where(arrived, 0.0, busy.sum(axis=0))
    acc.round_updates.append(int(arrived.sum()))
    acc.round_delivered.append(np.asarray(users)[np.asarray(arrived, dtype=bool)])
    acc.round_participants.append(int(users.size))


def begin_round(env: simpy.Environment, plan):
    """Process: who trains in the next round (netsim.participation, or everyone), once it may start."""
    draw = plan.participation.draw(env.now) if plan.participation is not None else all_users(plan.users, env.now)
    if draw.start_s > env.now:
        yield env.timeout(draw.start_s - env.now)
    return draw


def busy_of(clients: list[RoundClient | None], kinds: int) -> np.ndarray:
    """(kinds, n) seconds each client spent in each activity kind this round (None: did not run)."""
    busy = np.zeros((kinds, len(clients)))
    for j, client in enumerate(clients):
        if client is not None:
            for kind, seconds in client.busy.items():
                busy[kind, j] = seconds
    return busy


def end_round(env: simpy.Environment, plan, acc: Accounts, r: int, round_work: float, record, node: str,
              on_round: Callable[[int, float], None] | None):
    """Process: aggregate (plan.aggregation_s x round_work at `node`), book the round's end, forget
    the channel blocks no one will ask for again, report."""
    if plan.aggregation_s > 0:
        t, d = env.now, plan.aggregation_s * round_work
        yield env.timeout(d)
        record((t, d, node, _AGG, -1, 0.0, r))
    acc.round_end_s.append(env.now)
    if plan.track is not None:
        plan.track.discard_before(env.now)
    if on_round is not None:
        on_round(r, env.now)


def recorder(log: EventLog):
    """The function that appends one record to `log` (a no-op when records are off)."""
    return log.rows.append if log.enabled else deque(maxlen=0).append


def drive_rounds(env: simpy.Environment, plan, rounds: list[float], log: EventLog, acc: Accounts,
                 on_round: Callable[[int, float], None] | None, user_round):
    """Process: the fed server's loop over `rounds` (work fractions: 1, or less for a final partial one),
    the participants in parallel.

    `user_round(client, round_work, stop_after)` is the protocol's process for one user's round;
    it returns True when the user's update arrived. With `plan.server_concurrency`, the users'
    `client.server` is one shared resource (the main server)."""
    record = recorder(log)
    concurrency = getattr(plan, "server_concurrency", None)
    server = simpy.Resource(env, capacity=concurrency) if concurrency else None
    r = 0
    while r < len(rounds):  # a base station that re-chooses eta changes the rounds left (netsim.replanning)
        round_work = rounds[r]
        draw = yield from begin_round(env, plan)
        replan = getattr(plan, "replan", None)
        if replan is not None:  # the base station may re-plan before the round's users start
            hold = replan.before_round(plan, r, env.now, draw.users, round_work, plan.aggregation_s)
            round_work = rounds[r]
            if hold > 0:
                t = env.now
                yield env.timeout(hold)
                record((t, hold, FED_SERVER, _REPLAN, -1, 0.0, r))
        clients = [RoundClient(env, int(k), r, plan, record, float(c), server)
                   for k, c in zip(draw.users, draw.cutoff_s)]
        procs = [env.process(user_round(c, round_work, stop)) for c, stop in zip(clients, draw.stop_after_iterations)]
        yield env.all_of(procs)
        close_round(acc, draw.users, np.array([p.value for p in procs], dtype=bool),
                    busy_of(clients, acc.busy_s.shape[0]))
        yield from end_round(env, plan, acc, r, round_work, record, FED_SERVER, on_round)
        r += 1


def finish_accounts(acc: Accounts, compute_kinds: tuple[str, ...] | None = None) -> Accounts:
    """Per-category totals from the per-kind tallies; `compute_kinds` (names) restricts what counts
    as the user's compute (SL: its own forward and backward, not the server's turn)."""
    cat = np.asarray(CATEGORY_OF_KIND)
    if compute_kinds is None:
        acc.compute_s[:] = acc.busy_s[cat == "compute"].sum(axis=0)
    else:
        acc.compute_s[:] = acc.busy_s[[KIND[name] for name in compute_kinds]].sum(axis=0)
    acc.uplink_s[:] = acc.busy_s[cat == "uplink"].sum(axis=0)
    acc.downlink_s[:] = acc.busy_s[cat == "downlink"].sum(axis=0)
    return acc

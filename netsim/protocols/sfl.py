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

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import simpy

from ..engine import KIND, EventLog
from ..topology import FED_SERVER, MAIN_SERVER, user_node
from .common import Accounts

_FWD, _BWD, _SRV = KIND["client_forward"], KIND["client_backward"], KIND["server_compute"]
_UP, _ADAPTER_UP = KIND["uplink_activation"], KIND["uplink_adapter"]
_GRAD_DOWN, _ADAPTER_DOWN = KIND["downlink_gradient"], KIND["downlink_adapter"]
_AGG, _QUEUE = KIND["aggregation"], KIND["server_queue"]
LINK_UP, LINK_ADAPTER_UP, LINK_GRAD_DOWN, LINK_ADAPTER_DOWN = range(4)


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
    links: tuple | None = None  # with a track: per link (bandwidth_hz (K,), snr_coeff_hz (K,), bits)
    participation: object | None = None  # netsim.participation.Participation: who trains each round

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


def transfer_s(plan: SflPlan, link: int, r: int, users: np.ndarray, work: np.ndarray, start_s: np.ndarray) -> np.ndarray:
    """Seconds of `work` (fractions) of one transfer on `link` for `users` starting at `start_s` (n,)."""
    if plan.track is None:
        return plan.table(link)[r, users] * work
    bandwidth_hz, snr_coeff_hz, bits = plan.links[link]
    return plan.track.transfer_s(bits * work, bandwidth_hz[users], snr_coeff_hz[users], start_s, users)


class _Stop(Exception):
    """Raised inside a client's round when it stops (drop-out, offline, deadline)."""


class _ClientRound:
    """One user's round as a SimPy process; `run` returns whether its adapter arrived."""

    __slots__ = ("env", "k", "r", "plan", "record", "cutoff", "busy", "names", "server")

    def __init__(self, env, k, r, plan, record, cutoff, server):
        self.env, self.k, self.r, self.plan, self.record, self.cutoff = env, k, r, plan, record, cutoff
        self.busy = {}
        self.server = server
        me = user_node(k)
        self.names = (me, f"{me}->{MAIN_SERVER}", f"{me}->{FED_SERVER}", f"{MAIN_SERVER}->{me}")

    def hold(self, seconds, node, kind, bits):
        """Spend `seconds` (cut at the cutoff) on an activity and record it; raise _Stop when cut."""
        now = self.env.now
        cut = now + seconds > self.cutoff
        d = self.cutoff - now if cut else seconds
        yield self.env.timeout(d)
        if cut and seconds > 0:
            bits = bits * (d / seconds)
        self.record((now, d, node, kind, self.k, bits, self.r))
        self.busy[kind] = self.busy.get(kind, 0.0) + d
        if cut:
            raise _Stop

    def transfer(self, link, work):
        k = self.k
        if self.plan.track is None:
            return self.plan.table(link)[self.r, k] * work
        return float(transfer_s(self.plan, link, self.r, np.array([k]), np.array([work]),
                                np.array([self.env.now]))[0])

    def shared_server(self, seconds):
        """Hold a slot of the main server (queueing recorded as server_queue), cut at the cutoff."""
        env, res = self.env, self.server
        with res.request() as req:
            asked = env.now
            if asked + 0.0 >= self.cutoff:
                raise _Stop
            if self.cutoff == np.inf:
                yield req
            else:
                got = yield req | env.timeout(self.cutoff - asked)
            waited = env.now - asked
            if waited > 0:
                self.record((asked, waited, MAIN_SERVER, _QUEUE, self.k, 0.0, self.r))
            if self.cutoff != np.inf and req not in got:
                raise _Stop
            yield from self.hold(seconds, MAIN_SERVER, _SRV, 0.0)

    def run(self, round_work, stop_after):
        plan, k, r = self.plan, self.k, self.r
        me, up_link, fed_link, down_link = self.names
        try:
            if plan.downlink_adapter_s is not None:
                yield from self.hold(self.transfer(LINK_ADAPTER_DOWN, round_work), down_link, _ADAPTER_DOWN,
                                     plan.adapter_bits * round_work)
            fwd, bwd, srv = plan.client_forward_s[k], plan.client_backward_s[k], plan.server_s[k]
            slow = 1.0 if plan.slowdown is None else plan.slowdown[r, k]
            for i, iteration_work in enumerate(plan.iterations[k]):
                if i >= stop_after:
                    raise _Stop
                w = iteration_work * round_work
                yield from self.hold(fwd * w * slow, me, _FWD, 0.0)
                yield from self.hold(self.transfer(LINK_UP, w), up_link, _UP, plan.activation_bits * w)
                if self.server is None:
                    yield from self.hold(srv * w, MAIN_SERVER, _SRV, 0.0)
                else:
                    yield from self.shared_server(srv * w)
                if plan.downlink_gradient_s is not None:
                    yield from self.hold(self.transfer(LINK_GRAD_DOWN, w), down_link, _GRAD_DOWN,
                                         plan.gradient_bits * w)
                yield from self.hold(bwd * w * slow, me, _BWD, 0.0)
            yield from self.hold(self.transfer(LINK_ADAPTER_UP, round_work), fed_link, _ADAPTER_UP,
                                 plan.adapter_bits * round_work)
        except _Stop:
            return False
        return True


def _all_users(plan: SflPlan, start_s: float):
    from ..participation import RoundDraw

    k = plan.users
    return RoundDraw(start_s=start_s, users=np.arange(k), stop_after_iterations=np.full(k, np.inf),
                     cutoff_s=np.full(k, np.inf))


def close_round(acc: Accounts, users: np.ndarray, arrived: np.ndarray, busy: np.ndarray) -> None:
    """Book one round: `busy` (kinds, n) seconds of `users`, wasted where the adapter did not arrive."""
    acc.busy_s[:, users] += busy
    acc.rounds_joined[users] += 1
    acc.wasted_s[users] += np.where(arrived, 0.0, busy.sum(axis=0))
    acc.round_updates.append(int(arrived.sum()))
    acc.round_participants.append(int(users.size))


def _fed_server(env: simpy.Environment, plan: SflPlan, log: EventLog, acc: Accounts,
                on_round: Callable[[int, float], None] | None):
    record = log.rows.append if log.enabled else deque(maxlen=0).append
    server = simpy.Resource(env, capacity=plan.server_concurrency) if plan.server_concurrency else None
    kinds = acc.busy_s.shape[0]
    for r, round_work in enumerate(plan.rounds):
        draw = plan.participation.draw(env.now) if plan.participation is not None else _all_users(plan, env.now)
        if draw.start_s > env.now:
            yield env.timeout(draw.start_s - env.now)
        clients = [_ClientRound(env, int(k), r, plan, record, float(c), server)
                   for k, c in zip(draw.users, draw.cutoff_s)]
        procs = [env.process(c.run(round_work, stop)) for c, stop in zip(clients, draw.stop_after_iterations)]
        yield env.all_of(procs)
        busy = np.zeros((kinds, len(clients)))
        for j, c in enumerate(clients):
            for kind, seconds in c.busy.items():
                busy[kind, j] = seconds
        close_round(acc, draw.users, np.array([p.value for p in procs], dtype=bool), busy)
        if plan.aggregation_s > 0:
            t, d = env.now, plan.aggregation_s * round_work
            yield env.timeout(d)
            record((t, d, FED_SERVER, _AGG, -1, 0.0, r))
        acc.round_end_s.append(env.now)
        if plan.track is not None:
            plan.track.discard_before(env.now)
        if on_round is not None:
            on_round(r, env.now)


def finish_accounts(acc: Accounts) -> Accounts:
    """Per-category totals from the per-kind tallies."""
    from ..engine import CATEGORY_OF_KIND

    cat = np.asarray(CATEGORY_OF_KIND)
    acc.compute_s[:] = acc.busy_s[cat == "compute"].sum(axis=0)
    acc.uplink_s[:] = acc.busy_s[cat == "uplink"].sum(axis=0)
    acc.downlink_s[:] = acc.busy_s[cat == "downlink"].sum(axis=0)
    return acc


def run_sfl(env: simpy.Environment, plan: SflPlan, log: EventLog,
            on_round: Callable[[int, float], None] | None = None) -> Accounts:
    """Run the SFL protocol to completion on `env`; return the per-user accounts."""
    acc = Accounts.zeros(plan.users)
    env.process(_fed_server(env, plan, log, acc, on_round))
    env.run()
    return finish_accounts(acc)

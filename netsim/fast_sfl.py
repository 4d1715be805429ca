"""The SFL protocol computed for all users at once with numpy: the fast path of `simulate_sfl`.

When users do not interact inside a round (no shared main-server queue), each participant's
round is a fixed sequence of activities whose durations depend only on its own state and the
channel at the moment each starts; the rounds are coupled only by the fed server's barrier. So
one round is a short loop over activity steps (V iterations x 5 activities), each step a few
numpy operations over the participants, and the round ends at the latest participant. Same
rules, same draws and the same float operations as the SimPy engine (netsim.protocols.sfl),
which stays the oracle: totals, breakdowns and event rows agree to rounding (tested).

Records go to `sink(frame)` one round at a time when a sink is given (memory bounded by one
round), else they are kept and returned as one table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from .engine import ACTIVITIES, CATEGORIES, CATEGORY_OF_KIND, KIND
from .protocols.common import Accounts
from .protocols.rounds import (LINK_ADAPTER_DOWN, LINK_ADAPTER_UP, LINK_GRAD_DOWN, LINK_UP, all_users, close_round,
                               finish_accounts, transfer_s)
from .protocols.sfl import SflPlan
from .topology import FED_SERVER, MAIN_SERVER

__all__ = ["run_sfl_vectorised", "EVENT_COLUMNS", "records_frame", "node_names"]

_FWD, _BWD, _SRV = KIND["client_forward"], KIND["client_backward"], KIND["server_compute"]
_UP, _ADAPTER_UP = KIND["uplink_activation"], KIND["uplink_adapter"]
_GRAD_DOWN, _ADAPTER_DOWN = KIND["downlink_gradient"], KIND["downlink_adapter"]
_AGG, _REPLAN = KIND["aggregation"], KIND["replan"]
EVENT_COLUMNS = ["time_s", "end_s", "duration_s", "node", "kind", "category", "user", "round", "bits", "bytes"]
# node codes per user: the user itself, its uplinks to the main and fed server, its downlink
_ME, _UP_LINK, _FED_LINK, _DOWN_LINK, _MAIN, _FED = range(6)


def node_names(users: int) -> list[str]:
    """Node names by code: 4 per user (k, k->main, k->fed, main->k), then the two servers."""
    names = []
    for k in range(users):
        me = f"user{k}"
        names += [me, f"{me}->{MAIN_SERVER}", f"{me}->{FED_SERVER}", f"{MAIN_SERVER}->{me}"]
    return names + [MAIN_SERVER, FED_SERVER]


def _node_code(kind_of_node: int, users: np.ndarray, k_users: int) -> np.ndarray:
    if kind_of_node == _MAIN:
        return np.full(users.shape, 4 * k_users, dtype=np.int64)
    if kind_of_node == _FED:
        return np.full(users.shape, 4 * k_users + 1, dtype=np.int64)
    return 4 * users + kind_of_node


def records_frame(columns: dict[str, np.ndarray], names: list[str]) -> pd.DataFrame:
    """The event table (as EventLog.to_frame) from column arrays; `node` holds codes into `names`."""
    kinds = columns["kind"]
    frame = pd.DataFrame({
        "time_s": columns["time_s"], "duration_s": columns["duration_s"],
        "node": pd.Categorical.from_codes(columns["node"], categories=names),
        "kind": pd.Categorical.from_codes(kinds, categories=[n for n, _ in ACTIVITIES]),
        "category": pd.Categorical.from_codes(
            np.asarray([list(CATEGORIES).index(c) for c in CATEGORY_OF_KIND])[kinds], categories=list(CATEGORIES)),
        "user": columns["user"], "round": columns["round"], "bits": columns["bits"]})
    frame["end_s"] = frame["time_s"] + frame["duration_s"]
    frame["bytes"] = frame["bits"] / 8.0
    frame["node"] = frame["node"].cat.remove_unused_categories()
    return frame[EVENT_COLUMNS]


def _no_records() -> dict[str, np.ndarray]:
    """Empty record columns, with their dtypes."""
    return {c: np.zeros(0, dtype=float if c in ("time_s", "duration_s", "bits") else np.int64)
            for c in ("time_s", "duration_s", "node", "kind", "user", "bits", "round")}


def _aggregation_record(start_s: float, seconds: float, r: int, k_users: int, kind: int = _AGG) -> dict[str, np.ndarray]:
    """The fed server's aggregation (or re-plan: `kind`) as one record (node code: the fed server)."""
    return {"time_s": np.array([start_s]), "duration_s": np.array([seconds]), "node": np.array([4 * k_users + 1]),
            "kind": np.array([kind]), "user": np.array([-1]), "bits": np.array([0.0]), "round": np.array([r])}


class _Round:
    """The participants' clocks and records during one round."""

    def __init__(self, r: int, users: np.ndarray, start_s: float, cutoff_s: np.ndarray, kinds: int, record: bool):
        self.r, self.users = r, users
        self.t = np.full(users.size, start_s)
        self.cutoff = cutoff_s
        self.alive = np.ones(users.size, dtype=bool)
        self.busy = np.zeros((kinds, users.size))
        self.record = record
        self.rows: list[tuple] = []

    def hold(self, sel: np.ndarray, seconds: np.ndarray, kind: int, node: int, bits: np.ndarray | float,
             k_users: int) -> None:
        """The activity for participants `sel` (indices into this round), cut at their cutoffs."""
        now = self.t[sel]
        cut = now + seconds > self.cutoff[sel]
        d = np.where(cut, self.cutoff[sel] - now, seconds)
        self.t[sel] = now + d
        self.busy[kind, sel] += d
        if self.record:
            bits = np.broadcast_to(np.asarray(bits, dtype=float), sel.shape)
            with np.errstate(invalid="ignore", divide="ignore"):
                sent = np.where(cut & (seconds > 0), bits * (d / np.where(seconds > 0, seconds, 1.0)), bits)
            users = self.users[sel]
            self.rows.append((now, d, _node_code(node, users, k_users), kind, users, sent))
        if cut.any():
            self.alive[sel[cut]] = False

    def columns(self) -> dict[str, np.ndarray]:
        if not self.rows:
            return _no_records()
        n = [len(row[0]) for row in self.rows]
        return {"time_s": np.concatenate([row[0] for row in self.rows]),
                "duration_s": np.concatenate([row[1] for row in self.rows]),
                "node": np.concatenate([row[2] for row in self.rows]),
                "kind": np.repeat([row[3] for row in self.rows], n),
                "user": np.concatenate([row[4] for row in self.rows]),
                "bits": np.concatenate([row[5] for row in self.rows]),
                "round": np.full(sum(n), self.r, dtype=np.int64)}


def run_sfl_vectorised(plan: SflPlan, record: bool = True, on_round: Callable[[int, float], None] | None = None,
                       sink: Callable[[dict[str, np.ndarray]], None] | None = None
                       ) -> tuple[Accounts, float, list[dict[str, np.ndarray]]]:
    """Run SFL to completion; return (accounts, total delay s, kept record columns per round)."""
    if plan.server_concurrency:
        raise ValueError("the vectorised engine needs users that do not interact (server_concurrency: null)")
    k_users = plan.users
    acc = Accounts.zeros(k_users)
    kinds = acc.busy_s.shape[0]
    work_matrix = plan.iteration_work
    n_iterations = np.array([len(w) for w in plan.iterations])
    kept: list[dict[str, np.ndarray]] = []
    now = 0.0
    if plan.replan is not None:
        plan.replan.start(plan)
    r = 0
    while r < len(plan.rounds):  # a base station that re-chooses eta changes the rounds left (netsim.replanning)
        round_work = plan.rounds[r]
        draw = plan.participation.draw(now) if plan.participation is not None else all_users(plan.users, now)
        if draw.start_s > now:
            now = now + (draw.start_s - now)
        users = draw.users
        replanned = None
        if plan.replan is not None:  # the base station may re-plan before the round's users start
            hold = plan.replan.before_round(plan, r, now, users, round_work, plan.aggregation_s)
            round_work = plan.rounds[r]
            if plan.replan.take_iterations_changed():  # it re-chose V
                work_matrix = plan.iteration_work
                n_iterations = np.array([len(w) for w in plan.iterations])
            if hold > 0:
                replanned = _aggregation_record(now, hold, r, k_users, _REPLAN) if record else None
                now = now + hold
        rd = _Round(r, users, now, draw.cutoff_s, kinds, record)
        everyone = np.arange(users.size)
        if plan.downlink_adapter_s is not None:
            rd.hold(everyone, transfer_s(plan, LINK_ADAPTER_DOWN, r, users, np.full(users.size, round_work), rd.t),
                    _ADAPTER_DOWN, _DOWN_LINK, plan.adapter_bits * round_work, k_users)
        fwd, bwd, srv = plan.client_forward_s[users], plan.client_backward_s[users], plan.server_s[users]
        slow = np.ones(users.size) if plan.slowdown is None else plan.slowdown[r, users]
        n_mine, stop_after = n_iterations[users], draw.stop_after_iterations
        steps = (  # one local iteration: (seconds of participants g at work w, kind, node, bits per unit of work)
            (lambda g, w_: fwd[g] * w_ * slow[g], _FWD, _ME, 0.0),
            (lambda g, w_: transfer_s(plan, LINK_UP, r, users[g], w_, rd.t[g]), _UP, _UP_LINK, plan.activation_bits),
            (lambda g, w_: srv[g] * w_, _SRV, _MAIN, 0.0),
            *(((lambda g, w_: transfer_s(plan, LINK_GRAD_DOWN, r, users[g], w_, rd.t[g]), _GRAD_DOWN, _DOWN_LINK,
                plan.gradient_bits),) if plan.downlink_gradient_s is not None else ()),
            (lambda g, w_: bwd[g] * w_ * slow[g], _BWD, _ME, 0.0),
        )
        for i in range(int(n_mine.max(initial=0))):
            active = rd.alive & (i < n_mine)
            rd.alive[active & (i >= stop_after)] = False  # drop-outs leave before iteration i
            go = np.flatnonzero(active & (i < stop_after))
            if go.size == 0:
                continue
            w = work_matrix[users[go], i] * round_work
            for seconds_of, kind, node, bits in steps:
                keep = rd.alive[go]
                go, w = go[keep], w[keep]
                if go.size == 0:
                    break
                rd.hold(go, seconds_of(go, w), kind, node, bits * w if bits else 0.0, k_users)
        go = np.flatnonzero(rd.alive)  # drop-outs stopped in the loop, before their iteration stop_after
        if go.size:
            rd.hold(go, transfer_s(plan, LINK_ADAPTER_UP, r, users[go], np.full(go.size, round_work), rd.t[go]),
                    _ADAPTER_UP, _FED_LINK, plan.adapter_bits * round_work, k_users)
        close_round(acc, users, rd.alive.copy(), rd.busy)
        now = float(rd.t.max())
        cols = rd.columns() if record else None
        if replanned is not None:
            cols = {c: np.concatenate([replanned[c], cols[c]]) for c in cols}
        if plan.aggregation_s > 0:
            d = plan.aggregation_s * round_work
            if record:
                agg = _aggregation_record(now, d, r, k_users)
                cols = {c: np.concatenate([cols[c], agg[c]]) for c in cols}
            now = now + d
        acc.round_end_s.append(now)
        if plan.track is not None:
            plan.track.discard_before(now)
        if record:
            if sink is not None:
                sink(cols)
            else:
                kept.append(cols)
        if on_round is not None:
            on_round(r, now)
        r += 1
    return finish_accounts(acc), now, kept


class ColumnLog:
    """The vectorised engine's records (column arrays per round), with EventLog's interface."""

    def __init__(self, chunks: list[dict[str, np.ndarray]], names: list[str], enabled: bool = True):
        self.chunks, self.names, self.enabled = chunks, names, enabled

    def __len__(self) -> int:
        return sum(len(c["time_s"]) for c in self.chunks)

    def to_frame(self) -> pd.DataFrame:
        if not self.chunks:
            return records_frame(_no_records(), self.names)
        return records_frame({c: np.concatenate([ch[c] for ch in self.chunks]) for c in self.chunks[0]}, self.names)

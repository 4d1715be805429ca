"""Users who come and go: availability, partial participation, dropouts and a round deadline.

Rules (one source for both engines, so the SimPy and the vectorised runs see the same draws):

* **Availability.** A user is online during the intervals of a trace (a CSV file, or synthetic
  exponential on/off spells). It joins a round only if online when the round starts, and stops
  when it goes offline. If nobody is online, the round starts when the first user comes online.
* **Participation.** C users are sampled uniformly without replacement among those online
  (all of them when fewer than C are).
* **Dropouts.** Each participant drops out with `dropout_probability`, after a uniformly drawn
  number of its local iterations (0 ... n-1): it never uploads its adapter.
* **Deadline.** Every participant stops `round_deadline_s` after the round start.

A user that stops (offline, deadline) cuts its current activity short at that instant; its work
that round is wasted, as is a dropped user's. The fed server closes the round when the last
participant has uploaded or stopped (it learns of a drop-out when the user leaves), and
aggregates the adapters that arrived.

Draws are fixed-size per round (K uniforms each for sampling, dropout and its point) from one
Generator, in round order.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splitsim.scenarios import SimulationConfig

from .errors import NetsimError

__all__ = ["RoundDraw", "Participation", "TraceAvailability", "SyntheticAvailability", "read_availability_trace",
           "availability_for"]

TRACE_FIELD = "simulation.availability_trace"


@dataclass(frozen=True)
class RoundDraw:
    """Who trains in one round and when each must stop. Arrays are over `users` (sorted indices)."""

    start_s: float
    users: np.ndarray  # (n,) int
    stop_after_iterations: np.ndarray  # (n,) local iterations done before dropping out; inf: no dropout
    cutoff_s: np.ndarray  # (n,) absolute time the user stops (offline or deadline); inf: never


class TraceAvailability:
    """Online intervals [start_s, end_s) of a trace, as flat arrays (one row per interval).

    Users with no interval in the trace are always online."""

    def __init__(self, users: int, user: np.ndarray, start_s: np.ndarray, end_s: np.ndarray):
        self.users = users
        self.user, self.start_s, self.end_s = user, start_s, end_s
        self._listed = np.zeros(users, dtype=bool)
        self._listed[user] = True

    def online_until(self, time_s: float) -> np.ndarray:
        """(K,) end of the online spell containing `time_s`; -inf when offline then."""
        out = np.where(self._listed, -np.inf, np.inf)
        now = (self.start_s <= time_s) & (time_s < self.end_s)
        out[self.user[now]] = self.end_s[now]
        return out

    def next_online_s(self, time_s: float) -> float:
        """Earliest start of an online spell after `time_s` (inf: nobody comes back)."""
        later = self.start_s[self.start_s > time_s]
        return float(later.min()) if later.size else math.inf


class SyntheticAvailability:
    """Alternating exponential online/offline spells per user, started in the stationary state.

    Queried at non-decreasing times (round starts); spells are drawn as time passes them."""

    def __init__(self, users: int, mean_on_s: float, mean_off_s: float, rng: np.random.Generator):
        self.mean_on_s, self.mean_off_s, self._rng = mean_on_s, mean_off_s, rng
        self.online = rng.random(users) < mean_on_s / (mean_on_s + mean_off_s)
        mean = np.where(self.online, mean_on_s, mean_off_s)
        self.spell_end_s = rng.exponential(1.0, users) * mean  # memoryless: residual = a whole spell
        self._last_s = 0.0

    def _advance(self, time_s: float) -> None:
        if time_s < self._last_s:
            raise ValueError("synthetic availability is queried at non-decreasing times")
        self._last_s = time_s
        while True:
            due = self.spell_end_s <= time_s
            if not due.any():
                return
            draws = self._rng.exponential(1.0, self.online.size)  # fixed-size draw
            self.online = np.where(due, ~self.online, self.online)
            mean = np.where(self.online, self.mean_on_s, self.mean_off_s)
            self.spell_end_s = np.where(due, self.spell_end_s + draws * mean, self.spell_end_s)

    def online_until(self, time_s: float) -> np.ndarray:
        self._advance(time_s)
        return np.where(self.online, self.spell_end_s, -np.inf)

    def next_online_s(self, time_s: float) -> float:
        self._advance(time_s)
        off = ~self.online
        return float(self.spell_end_s[off].min()) if off.any() else math.inf


def read_availability_trace(path: str | Path, users: int) -> TraceAvailability:
    """Parse a trace CSV (columns user,start_s,end_s); bad content is a NetsimError naming the row."""
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise NetsimError(f"availability trace not found: {path}", field=TRACE_FIELD, value=str(path))
    try:
        frame = pd.read_csv(path)
    except (ValueError, pd.errors.ParserError) as err:
        raise NetsimError(f"availability trace {path} is not a CSV file ({str(err).splitlines()[0]})",
                          field=TRACE_FIELD, value=str(path)) from None
    if list(frame.columns) != ["user", "start_s", "end_s"]:
        raise NetsimError(f"availability trace {path} needs the header user,start_s,end_s, got "
                          f"{','.join(map(str, frame.columns))}", field=TRACE_FIELD, value=str(path))
    for col in frame.columns:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise NetsimError(f"availability trace {path} line {row + 2}: {col} = {frame[col].iloc[row]!r} is not a "
                              "finite number", field=TRACE_FIELD, value=str(path))
        frame[col] = values
    user = frame["user"].to_numpy(dtype=float)
    start, end = frame["start_s"].to_numpy(dtype=float), frame["end_s"].to_numpy(dtype=float)
    problems = [(user != np.floor(user)) | (user < 0) | (user >= users), "names a user outside 0 ... K-1 = "
                f"{users - 1}"], [(start < 0) | (end <= start), "needs 0 <= start_s < end_s"]
    for mask, what in problems:
        if mask.any():
            row = int(np.flatnonzero(mask)[0])
            raise NetsimError(f"availability trace {path} line {row + 2} (user {user[row]:g}, {start[row]:g} -> "
                              f"{end[row]:g} s) {what}", field=TRACE_FIELD, value=str(path))
    order = np.lexsort((start, user))  # by user, then start
    user, start, end = user[order].astype(np.int64), start[order], end[order]
    same_user = user[1:] == user[:-1]
    overlap = np.flatnonzero(same_user & (start[1:] < end[:-1]))
    if overlap.size:
        i = int(overlap[0])
        raise NetsimError(f"availability trace {path}: user {user[i]} has overlapping intervals starting at "
                          f"{start[i]:g} s and {start[i + 1]:g} s", field=TRACE_FIELD, value=str(path))
    return TraceAvailability(users, user, start, end)


@functools.lru_cache(maxsize=8)
def _cached_trace(path: str, modified_ns: int, size: int, users: int) -> TraceAvailability:
    return read_availability_trace(path, users)


def availability_for(sim: SimulationConfig, users: int, rng: np.random.Generator):
    """The scenario's availability model, or None when every user is always online.

    A trace is parsed once per file version (it is read-only once parsed) and shared by every
    simulation of a run: strategies, seeds."""
    if sim.availability_trace is not None:
        path = Path(sim.availability_trace)
        if not path.is_file():
            return read_availability_trace(path, users)  # raises, naming the field
        stat = path.stat()
        return _cached_trace(str(path.resolve()), stat.st_mtime_ns, stat.st_size, users)
    if sim.availability_mean_on_s is not None:
        return SyntheticAvailability(users, sim.availability_mean_on_s, sim.availability_mean_off_s, rng)
    return None


class Participation:
    """Draws each round's participants, drop-out points and cutoffs, in round order."""

    def __init__(self, sim: SimulationConfig, iterations_per_user: np.ndarray, rng: np.random.Generator,
                 availability=None):
        self.users = int(len(iterations_per_user))
        self._iterations = np.asarray(iterations_per_user, dtype=float)
        self._sim, self._rng, self._availability = sim, rng, availability

    def set_iterations(self, iterations_per_user: np.ndarray) -> None:
        """Local iterations per user from the next draw on (a base station that re-chose V)."""
        self._iterations = np.asarray(iterations_per_user, dtype=float)

    def draw(self, ready_s: float) -> RoundDraw:
        """The next round, the fed server being ready at `ready_s`."""
        sim, k_users = self._sim, self.users
        start = ready_s
        if self._availability is not None:
            until = self._availability.online_until(start)
            while not (until > start).any():
                start = self._availability.next_online_s(start)
                if not math.isfinite(start):
                    raise NetsimError(f"no user is online after t = {ready_s:.6g} s and none comes back: the trace "
                                      "ends before training does", field=TRACE_FIELD, value=sim.availability_trace)
                until = self._availability.online_until(start)
            online = until > start
        else:
            until = np.full(k_users, np.inf)
            online = np.ones(k_users, dtype=bool)
        chosen = np.flatnonzero(online)
        if sim.participants_per_round is not None:
            order = self._rng.random(k_users)
            if chosen.size > sim.participants_per_round:
                chosen = np.sort(chosen[np.argsort(order[chosen], kind="stable")[:sim.participants_per_round]])
        stop = np.full(chosen.size, np.inf)
        if sim.dropout_probability > 0:
            drops, points = self._rng.random(k_users), self._rng.random(k_users)
            dropped = drops[chosen] < sim.dropout_probability
            stop[dropped] = np.floor(points[chosen][dropped] * self._iterations[chosen][dropped])
        cutoff = until[chosen].copy()
        if sim.round_deadline_s is not None:
            cutoff = np.minimum(cutoff, start + sim.round_deadline_s)
        return RoundDraw(start_s=start, users=chosen, stop_after_iterations=stop, cutoff_s=cutoff)

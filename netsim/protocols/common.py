"""Pieces the epoch-based protocols share: per-user accounts and recorded activities."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np
import simpy

from ..engine import ACTIVITIES, KIND, Barrier, EventLog


@dataclass
class Accounts:
    """Per-user busy time by category (K,), and the end time of every round."""

    compute_s: np.ndarray
    uplink_s: np.ndarray
    downlink_s: np.ndarray
    round_end_s: list[float] = field(default_factory=list)
    busy_s: np.ndarray | None = None  # (len(ACTIVITIES), K): seconds of each activity kind per user
    wasted_s: np.ndarray | None = None  # (K,) busy seconds in rounds whose update was not aggregated
    rounds_joined: np.ndarray | None = None  # (K,) rounds each user took part in
    round_updates: list[int] = field(default_factory=list)  # adapters aggregated per round
    round_participants: list[int] = field(default_factory=list)  # users that started each round

    @classmethod
    def zeros(cls, users: int) -> Accounts:
        return cls(np.zeros(users), np.zeros(users), np.zeros(users), busy_s=np.zeros((len(ACTIVITIES), users)),
                   wasted_s=np.zeros(users), rounds_joined=np.zeros(users, dtype=np.int64))


class Recorder:
    """Runs and records one activity at a time: `yield from rec.hold(...)`."""

    def __init__(self, env: simpy.Environment, log: EventLog, busy_s: np.ndarray | None = None):
        self.env = env
        self.append = log.rows.append if log.enabled else deque(maxlen=0).append
        self.busy_s = busy_s  # (kinds, K) tally of every activity a user takes part in

    def hold(self, seconds: float, node: str, kind: int, user: int, bits: float, round_index: int,
             tally: np.ndarray | None = None):
        """Process: spend `seconds` on an activity and record it; add the time to `tally[user]` if given."""
        start = self.env.now
        if seconds > 0:
            yield self.env.timeout(seconds)
        self.append((start, seconds, node, kind, user, bits, round_index))
        if tally is not None:
            tally[user] += seconds
        if self.busy_s is not None and user >= 0:
            self.busy_s[kind, user] += seconds


def close_rounds(env: simpy.Environment, rounds: int, rec: Recorder, barriers: list, released: list[simpy.Event],
                 acc: Accounts, on_round, node: str, aggregation_s: float = 0.0):
    """Process: for each round, wait for every party, aggregate (`aggregation_s` at `node`), release."""
    for r in range(rounds):
        yield barriers[r].event
        if aggregation_s > 0:
            yield from rec.hold(aggregation_s, node, KIND["aggregation"], -1, 0.0, r)
        acc.round_end_s.append(env.now)
        released[r].succeed()
        if on_round is not None:
            on_round(r, env.now)


def round_gates(env: simpy.Environment, rounds: int, parties: int) -> tuple[list, list[simpy.Event]]:
    """Per round, a barrier for `parties` arrivals and the event that releases them."""
    return [Barrier(env, parties) for _ in range(rounds)], [env.event() for _ in range(rounds)]

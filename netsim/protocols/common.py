"""What every protocol's run books per user: busy time by category and kind, waste, rounds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..engine import ACTIVITIES


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
    round_delivered: list[np.ndarray] = field(default_factory=list)  # per round: the users whose update arrived

    @classmethod
    def zeros(cls, users: int) -> Accounts:
        return cls(np.zeros(users), np.zeros(users), np.zeros(users), busy_s=np.zeros((len(ACTIVITIES), users)),
                   wasted_s=np.zeros(users), rounds_joined=np.zeros(users, dtype=np.int64))

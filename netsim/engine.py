"""SimPy building blocks: compute nodes, FDMA links, a round barrier and append-only event records.

Protocols (netsim.protocols) are short generator functions per role that use these. Records are
plain tuples appended to a list during the run and turned into a table afterwards, so the hot
loop stays cheap; plotting and summaries live outside the simulator.
"""

from __future__ import annotations

import contextlib
import gc
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import simpy

from splitsim.scenarios import fdma_rate_bps

# Activity kinds: (name, category). The index is what a record stores.
ACTIVITIES: tuple[tuple[str, str], ...] = (
    ("client_forward", "compute"),
    ("client_backward", "compute"),
    ("client_train", "compute"),  # whole-model local training (FL)
    ("server_compute", "compute"),  # main server (SFL, SL) forward + backward
    ("edge_compute", "compute"),
    ("cloud_compute", "compute"),
    ("aggregation", "compute"),
    ("uplink_activation", "uplink"),
    ("uplink_adapter", "uplink"),
    ("downlink_gradient", "downlink"),
    ("downlink_adapter", "downlink"),
    ("backhaul_activation", "backhaul"),
    ("backhaul_gradient", "backhaul"),
    ("backhaul_adapter", "backhaul"),
    ("server_queue", "waiting"),
    ("replan", "waiting"),  # the base station re-solves the allocation and signals it (netsim.replanning)
)
KIND = {name: i for i, (name, _) in enumerate(ACTIVITIES)}
CATEGORY_OF_KIND = [category for _, category in ACTIVITIES]
CATEGORIES = ("compute", "uplink", "downlink", "backhaul", "waiting")


class EventLog:
    """Append-only activity records: (start_s, duration_s, node, kind, user, bits, round).

    `node` is where the activity happens (a device, or a link "a->b"); `kind` indexes ACTIVITIES.
    """

    __slots__ = ("rows", "enabled")

    def __init__(self, enabled: bool = True):
        self.rows: list[tuple] = []
        self.enabled = enabled

    def __len__(self) -> int:
        return len(self.rows)

    def to_frame(self) -> pd.DataFrame:
        """One row per activity: time_s (start), end_s, duration_s, node, kind, category, user, round, bits, bytes."""
        cols = ["time_s", "duration_s", "node", "kind", "user", "bits", "round"]
        df = pd.DataFrame.from_records(self.rows, columns=cols)
        kinds = np.asarray(df["kind"], dtype=np.int64)
        df["kind"] = pd.Categorical.from_codes(kinds, categories=[n for n, _ in ACTIVITIES])
        df["category"] = pd.Categorical([CATEGORY_OF_KIND[k] for k in kinds], categories=list(CATEGORIES))
        df["end_s"] = df["time_s"] + df["duration_s"]
        df["bytes"] = df["bits"] / 8.0
        df["node"] = df["node"].astype("category")
        return df[["time_s", "end_s", "duration_s", "node", "kind", "category", "user", "round", "bits", "bytes"]]


@dataclass(frozen=True)
class Link:
    """A point-to-point link: an FDMA sub-band of `bandwidth_hz` on a channel with c = g·p/N0 (Hz).

    `snr_coeff_hz` may be a scalar or one value per round; a fixed `rate_bps` (backhaul) overrides
    the Shannon rate. Transfer time = latency + bits / rate.
    """

    name: str
    bandwidth_hz: float = math.inf
    snr_coeff_hz: float | np.ndarray = 0.0
    rate_bps_fixed: float | None = None
    latency_s: float = 0.0

    def rate_bps(self, round_index: int = 0) -> float:
        if self.rate_bps_fixed is not None:
            return self.rate_bps_fixed
        c = self.snr_coeff_hz
        c = float(c[round_index]) if np.ndim(c) else float(c)
        return float(fdma_rate_bps(self.bandwidth_hz, c))

    def seconds(self, bits: float, round_index: int = 0) -> float:
        if bits <= 0:
            return 0.0
        rate = self.rate_bps(round_index)
        return self.latency_s + (bits / rate if rate > 0 else math.inf)


class ComputeNode:
    """A device that computes at `ops_per_s` (cycles or FLOP per second).

    With finite `concurrency` it is a shared `simpy.Resource`: jobs queue for a slot and the queueing
    time is recorded as `server_queue`; with None (the paper's assumption) jobs never wait.
    """

    def __init__(self, env: simpy.Environment, name: str, ops_per_s: float, concurrency: int | None = None):
        self.env = env
        self.name = name
        self.ops_per_s = ops_per_s
        self.resource = simpy.Resource(env, capacity=concurrency) if concurrency else None

    def seconds(self, ops: float) -> float:
        return ops / self.ops_per_s

    def run(self, seconds: float, log: EventLog, kind: int, user: int, round_index: int):
        """Process: hold one slot of this node for `seconds`; yields SimPy events."""
        env = self.env
        if self.resource is None:
            start = env.now
            yield env.timeout(seconds)
            if log.enabled:
                log.rows.append((start, seconds, self.name, kind, user, 0.0, round_index))
            return
        with self.resource.request() as req:
            asked = env.now
            yield req
            waited = env.now - asked
            if waited > 0 and log.enabled:
                log.rows.append((asked, waited, self.name, KIND["server_queue"], user, 0.0, round_index))
            start = env.now
            yield env.timeout(seconds)
            if log.enabled:
                log.rows.append((start, seconds, self.name, kind, user, 0.0, round_index))


class Barrier:
    """Counts arrivals; its `event` succeeds when the `expected`-th party arrives."""

    __slots__ = ("event", "expected", "arrived")

    def __init__(self, env: simpy.Environment, expected: int):
        self.event = env.event()
        self.expected = expected
        self.arrived = 0

    def arrive(self) -> simpy.Event:
        self.arrived += 1
        if self.arrived == self.expected:
            self.event.succeed()
        return self.event


def work_fractions(count: float) -> list[float]:
    """Split a (possibly fractional) count into unit steps plus a final partial step.

    4.0 -> [1, 1, 1, 1]; 3.25 -> [1, 1, 1, 0.25]. The continuous relaxation of the paper is simulated
    by letting the final partial iteration (or round) do that fraction of the work.
    """
    if not math.isfinite(count) or count < 0:
        raise ValueError(f"count must be finite and >= 0, got {count}")
    whole = math.floor(count)
    rest = count - whole
    steps = [1.0] * whole
    if rest > 1e-12:
        steps.append(rest)
    return steps


@contextlib.contextmanager
def gc_paused():
    """Pause Python's cyclic garbage collector during a run.

    A run allocates millions of small record tuples and SimPy events and frees them by reference
    counting; generation-2 collections over that growing heap would make the cost superlinear in K.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def scheduled_events(env: simpy.Environment) -> int:
    """Number of events SimPy scheduled during a finished run (reads its event-id counter once)."""
    return next(env._eid)  # noqa: SLF001 - simpy's monotone event counter; call once, at the end

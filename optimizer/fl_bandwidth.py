"""FL's uplink: the adapter bandwidths that minimise the slowest user's round, once or re-planned.

In an FL round user k first spends busy_k seconds (the new global adapter coming down, then its
local epoch) and then uploads its adapter, s_c bits, on its FDMA share b_k of the fed band B_c:

    round_k = busy_k + s_c / r_k(b_k),   r_k(b) = b·log2(1 + c_k/b)   (Shannon, c = g·p/N0).

The round ends with the slowest user, so the plan is

    minimise max_k round_k   s.t.  sum_k b_k = B_c,  b_k > 0,

a single pool: its optimum gives every user the same round time, the root of sum_k b_k(T) = B_c
(optimizer.structured.min_max_pool, exact). FedsLLM's problem (17) is SFL's; this is its FL
counterpart (FL sends one adapter per round and no activations, so there is no second pool and
no V to choose). EB is b_k = B_c/K.

For a channel that is not one number (fading around a known large-scale gain, or samples of the
gains a walking user will have), r_k is a planning rate (optimizer.ergodic) and the pool is
solved on the c that gives each user that rate at its bandwidth, until the bandwidths stop moving
(the fixed point of optimizer.replan.plan_bandwidth, on one pool).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .ergodic import effective_snr_coeff_hz, planning_rate_bps
from .errors import OptimizerError
from .replan import on_users
from .structured import min_max_pool

__all__ = ["FlBandwidthPlan", "FL_STRATEGIES", "fl_round_s", "fl_min_max_bandwidth", "fl_plan", "make_fl_planner"]

FL_STRATEGIES = ("EB", "proposed", "robust", "proposed_replan")  # FE and BA are SFL's (they fix eta or V)

_MAX_FIXED_POINT = 100
_FIXED_POINT_TOL = 1e-12


@dataclass(frozen=True)
class FlBandwidthPlan:
    """One FL allocation of the fed band: `bandwidth_hz` (K,), each user's predicted round seconds
    `round_s` (K,) on the channel it was planned for, and the rounds it is run for."""

    strategy: str
    bandwidth_hz: np.ndarray
    round_s: np.ndarray
    rounds: int
    details: dict = field(default_factory=dict)

    @property
    def round_T_s(self) -> float:
        """The predicted round: the slowest user's (s)."""
        return float(np.max(self.round_s))

    @property
    def T_s(self) -> float:
        """The predicted training delay: every round the slowest user's (s)."""
        return self.rounds * self.round_T_s


def fl_round_s(busy_s: np.ndarray, adapter_bits: float, bandwidth_hz: np.ndarray, snr_coeff_hz: np.ndarray,
               fading: str = "none", k_factor_db: float = 6.0, link=None) -> np.ndarray:
    """Each user's round seconds (K,): busy_s + adapter_bits / its planning rate (c (K,) or samples (K, S))
    on `link` (None: Shannon's); inf where the rate is 0."""
    rate = planning_rate_bps(bandwidth_hz, snr_coeff_hz, fading, k_factor_db, link)
    with np.errstate(divide="ignore"):
        return np.asarray(busy_s, dtype=float) + np.where(rate > 0, adapter_bits / rate, np.inf)


def on_link(link) -> bool:
    """Whether `link` is a link model of whole PRBs (the NR link), not Shannon's."""
    return link is not None and getattr(link, "name", "shannon") != "shannon"


def band_prbs(band_hz: float, link) -> int:
    """The whole PRBs of a band on a link of whole PRBs (scenarios.nr.band_prbs at its numerology)."""
    from splitsim.scenarios.nr import band_prbs as prbs_of_band

    return prbs_of_band(band_hz, int(round(link.prb_hz / 12e3)))


def fl_min_max_prbs(busy_s: np.ndarray, adapter_bits: float, snr_coeff_hz: np.ndarray, band_hz: float, link,
                    fading: str = "none", k_factor_db: float = 6.0) -> tuple[np.ndarray, np.ndarray]:
    """FL's min-max on a link of whole PRBs (the NR link): the bandwidths (K,) — whole PRBs of the fed
    band (`band_prbs`), every one handed out — that minimise the slowest user's round, and the round
    seconds (K,) there. One PRB each, then PRB by PRB to the user that is slowest now: with one pool and
    each user's round never longer with more PRBs this is optimal (the final slowest user got each of
    its PRBs while it was the slowest, so no split gives it more without starving one that then waits
    longer). Held against every split in tests/test_replan_fl.py."""
    busy = np.asarray(busy_s, dtype=float)
    c = np.asarray(snr_coeff_hz, dtype=float)
    k = busy.size
    prbs = band_prbs(band_hz, link)
    if prbs < k:
        raise OptimizerError(f"{k} users cannot each get one of the fed band's {prbs} PRBs", field="cell.users",
                             value=k)
    n = np.ones(k, dtype=np.int64)

    def seconds(counts: np.ndarray, users) -> np.ndarray:
        return fl_round_s(busy[users], adapter_bits, counts * link.prb_hz, c[users], fading, k_factor_db, link)

    rounds = seconds(n, slice(None))
    for _ in range(prbs - k):
        slowest = int(np.argmax(rounds))
        n[slowest] += 1
        rounds[slowest] = seconds(n[slowest:slowest + 1], slice(slowest, slowest + 1))[0]
    return n * link.prb_hz, rounds


def fl_min_max_bandwidth(busy_s: np.ndarray, adapter_bits: float, snr_coeff_hz: np.ndarray, band_hz: float,
                         fading: str = "none", k_factor_db: float = 6.0, link=None) -> tuple[np.ndarray, np.ndarray]:
    """The min-max bandwidths (K,) of the fed band and each user's round seconds (K,) at them.

    `snr_coeff_hz`: c = g·p/N0 (K,), or samples (K, S) of it (then the planning rate is the harmonic
    mean over them of the rate under `fading`, optimizer.ergodic). On a `link` of whole PRBs (the NR
    link): `fl_min_max_prbs`."""
    busy = np.asarray(busy_s, dtype=float)
    c = np.asarray(snr_coeff_hz, dtype=float)
    k = busy.size
    if c.shape[0] != k or not np.all(np.isfinite(busy)) or np.any(busy < 0):
        raise OptimizerError("FL's bandwidth plan needs one finite busy time >= 0 and one channel per user",
                             field="optimizer.strategies", value="proposed")
    if on_link(link):
        return fl_min_max_prbs(busy, adapter_bits, c, band_hz, link, fading, k_factor_db)
    if fading == "none" and c.ndim == 1:
        _, b = min_max_pool(adapter_bits, busy, c, band_hz)
        return b, fl_round_s(busy, adapter_bits, b, c)
    b = np.full(k, band_hz / k)
    eff = effective_snr_coeff_hz(b, planning_rate_bps(b, c, fading, k_factor_db))
    for _ in range(_MAX_FIXED_POINT):
        _, b = min_max_pool(adapter_bits, busy, eff, band_hz)
        new = effective_snr_coeff_hz(b, planning_rate_bps(b, c, fading, k_factor_db))
        moved = float(np.max(np.abs(new / eff - 1.0)))
        eff = new
        if moved <= _FIXED_POINT_TOL:
            break
    return b, fl_round_s(busy, adapter_bits, b, c, fading, k_factor_db)


def fl_plan(strategy: str, busy_s: np.ndarray, adapter_bits: float, snr_coeff_hz: np.ndarray, band_hz: float,
            rounds: int, fading: str = "none", k_factor_db: float = 6.0, details: dict | None = None,
            link=None) -> FlBandwidthPlan:
    """An FL allocation: 'EB' (equal shares; on a `link` of whole PRBs floor(N / K) PRBs each) or the
    min-max bandwidths ('proposed', 'robust', 'proposed_replan': what differs between them is the
    channel `snr_coeff_hz` and `fading` they are planned on)."""
    busy = np.asarray(busy_s, dtype=float)
    if strategy == "EB":
        share = band_hz / busy.size
        if on_link(link):
            share = (band_prbs(band_hz, link) // busy.size) * link.prb_hz
        b = np.full(busy.size, share)
        round_s = fl_round_s(busy, adapter_bits, b, snr_coeff_hz, fading, k_factor_db, link)
    elif strategy in FL_STRATEGIES:
        b, round_s = fl_min_max_bandwidth(busy, adapter_bits, snr_coeff_hz, band_hz, fading, k_factor_db, link)
    else:
        raise OptimizerError(f"FL allocates its fed band by {', '.join(FL_STRATEGIES)}", field="optimizer.strategies",
                             value=strategy)
    return FlBandwidthPlan(strategy, b, round_s, rounds, dict(details or {}))


def make_fl_planner(busy_s, adapter_bits: float, snr_coeff_hz: np.ndarray, band_hz: float, fading: str,
                    k_factor_db: float = 6.0, link=None):
    """FL's re-planner for netsim.replanning: known gain factors (K,) relative to the planned channel
    (or samples (K, S) of them: a forecast),
    and optionally the users to plan for (the round's participants; the others get no bandwidth)
    -> (bandwidth_hz (K,), predicted round seconds per user (K,)). `busy_s(known)` gives each user's
    seconds before its upload on that channel (the downlink depends on it) or is an array;
    `fading`: what the planner averages over ('none' when it knows the fading: full CSI)."""
    c = np.asarray(snr_coeff_hz, dtype=float)

    def planner(known: np.ndarray, users: np.ndarray | None = None):
        known = np.asarray(known, dtype=float)
        busy = np.asarray(busy_s(known) if callable(busy_s) else busy_s, dtype=float)
        c_known = c * known if known.ndim == 1 else c[:, None] * known  # values (K,) or samples (K, S)
        if users is None or len(users) == c.size:
            return fl_min_max_bandwidth(busy, adapter_bits, c_known, band_hz, fading, k_factor_db, link)
        users = np.asarray(users)
        b, round_s = fl_min_max_bandwidth(busy[users], adapter_bits, c_known[users], band_hz, fading, k_factor_db,
                                          link)
        return on_users(c.size, users, b, 0.0), on_users(c.size, users, round_s, np.inf)

    return planner

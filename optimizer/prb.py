"""OFDMA with whole physical resource blocks: the optimiser's continuous bandwidths rounded to PRBs.

A 5G NR PRB is 12 sub-carriers: 180 kHz at 15 kHz spacing, 360 kHz at 30, 720 kHz at 60. How many
fit a channel is 3GPP TS 38.101-1 (FR1) Table 5.3.2-1, "Maximum transmission bandwidth
configuration N_RB" (the rest is guard band): a 20 MHz channel carries 106, 51 or 24 PRBs.

Two rules (radio.prb_rule). 'largest_remainder' rounds the optimizer's answer; 'min_max' re-solves
over whole PRBs for the strategies whose bandwidth is optimised (`min_max_prbs`), so that the cost
it reports is that of the PRB granularity, not of the rounding.

Largest remainder (Hamilton's method, with a floor of one PRB): user k's quota is
q_k = N·b_k / B of the N PRBs of the channel B; each user first gets max(1, floor(q_k)); while
that is more than N, the user holding the most above its quota (n_k - q_k, among those with two
or more) gives one back; the PRBs left go one each to the largest remainders q_k - n_k. Exactly
N PRBs are used (the budget is kept and filled), each user within one PRB of its quota unless the
floor of one forces more. Ties go to the lower user index.
"""

from __future__ import annotations

import numpy as np

from splitsim.scenarios import Allocation, DelayInputs
from splitsim.scenarios.custom_strategies import is_custom
from splitsim.scenarios.nr import PRBS_PER_CHANNEL, prb_bandwidth_hz
from splitsim.scenarios.nr import prbs_in_channel as nr_prbs

from .allocation import allocation_with_counts
from .delay_model import compute_seconds_per_round
from .energy.model import upload_seconds_at_power
from .errors import OptimizerError

EQUAL_SHARE_STRATEGIES = ("EB", "BA")  # equal bandwidth by definition: rounded, never re-optimised


def keeps_its_shares(strategy: str) -> bool:
    """Whether a strategy's bandwidth shares are its answer, only rounded to whole PRBs (never replaced
    by the min-max PRBs): EB and BA (equal by definition) and a user's own (optimizer.custom)."""
    return strategy in EQUAL_SHARE_STRATEGIES or is_custom(strategy)

__all__ = ["PRBS_PER_CHANNEL", "prb_bandwidth_hz", "prbs_in_channel", "round_to_prbs", "min_max_prbs",
           "allocation_in_prbs"]

def prbs_in_channel(bandwidth_hz: float, scs_khz: int, field: str = "radio.uplink_main_bandwidth_hz") -> int:
    """N_RB of a channel of `bandwidth_hz` at `scs_khz` (TS 38.101-1 Table 5.3.2-1); OptimizerError if none."""
    prbs = nr_prbs(bandwidth_hz, scs_khz)
    if prbs is None:
        table = PRBS_PER_CHANNEL.get(int(scs_khz), {})
        raise OptimizerError(f"{bandwidth_hz / 1e6:g} MHz is not an NR channel bandwidth at {scs_khz} kHz spacing (TS "
                             f"38.101-1 Table 5.3.2-1: {', '.join(map(str, table))} MHz)", field=field,
                             value=bandwidth_hz)
    return prbs


def round_to_prbs(bandwidth_hz: np.ndarray, channel_hz: float, prbs: int) -> np.ndarray:
    """Whole PRBs per user (K,) for continuous shares `bandwidth_hz` of a channel of `channel_hz`."""
    b = np.asarray(bandwidth_hz, dtype=float)
    users = b.size
    if users > prbs:
        raise OptimizerError(f"{users} users cannot each get one of {prbs} PRBs", field="cell.users", value=users)
    quota = prbs * b / channel_hz
    n = np.maximum(1, np.floor(quota + 1e-9)).astype(np.int64)
    while n.sum() > prbs:
        surplus = np.where(n > 1, n - quota, -np.inf)
        n[int(np.argmax(surplus))] -= 1
    left = prbs - int(n.sum())
    if left > 0:
        order = np.argsort(-(quota - n), kind="stable")
        n[order[:left]] += 1
    return n


class _PrbDelays:
    """T_k (s) of an allocation's users as a function of their whole PRBs (eta, powers, clocks fixed)."""

    def __init__(self, inputs: DelayInputs, alloc: Allocation, prb_hz: float):
        p_s, p_c, _ = alloc.powers_and_clock()
        self.inputs, self.alloc, self.prb_hz, self.p_s, self.p_c = inputs, alloc, prb_hz, p_s, p_c
        self.tau = compute_seconds_per_round(inputs, alloc.V, alloc.cpu_fraction)  # (K,) once

    def __call__(self, n_main: np.ndarray, n_fed: np.ndarray, pick: slice = slice(None)) -> np.ndarray:
        """T_k of the users `pick` selects, with PRBs `n_main`, `n_fed` (already of those users)."""
        inputs, alloc = self.inputs, self.alloc
        t_s = upload_seconds_at_power(inputs.activation_bits, n_main * self.prb_hz, inputs.snr_coeff_main_hz[pick],
                                      self.p_s[pick], inputs.uplink_rate)
        t_c = upload_seconds_at_power(inputs.adapter_bits, n_fed * self.prb_hz, inputs.snr_coeff_fed_hz[pick],
                                      self.p_c[pick], inputs.uplink_rate)
        return alloc.I0 * (self.tau[pick] + t_c + alloc.V * inputs.weights[pick] * t_s)

    def parts(self, most_main: int, most_fed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """T_k = A[k, n_main - 1] + B[k, n_fed - 1] + C[k]: the main-pool part A (K, most_main), the
        fed-pool part B (K, most_fed) and the compute C (K,), for 1 ... most PRBs of each pool."""
        inputs, alloc = self.inputs, self.alloc
        main_hz = np.arange(1, most_main + 1)[None, :] * self.prb_hz
        fed_hz = np.arange(1, most_fed + 1)[None, :] * self.prb_hz
        t_s = upload_seconds_at_power(inputs.activation_bits, main_hz, inputs.snr_coeff_main_hz[:, None],
                                      self.p_s[:, None], inputs.uplink_rate)
        t_c = upload_seconds_at_power(inputs.adapter_bits, fed_hz, inputs.snr_coeff_fed_hz[:, None],
                                      self.p_c[:, None], inputs.uplink_rate)
        return alloc.I0 * alloc.V * inputs.weights[:, None] * t_s, alloc.I0 * t_c, alloc.I0 * self.tau


def min_max_prbs(inputs: DelayInputs, alloc: Allocation, prbs_main: int, prbs_fed: int,
                 prb_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """The whole PRBs of both pools that minimise the slowest user's T_k, at the allocation's eta,
    powers and clocks (exact, up to ties within 1e-12 of the delay).

    T_k = I0·(tau_k + t_c,k(n_fed,k) + V·w_k·t_s,k(n_main,k)) is a sum of one decreasing function of
    each pool's PRBs. For a target T, the least fed PRBs user k needs with n main PRBs is a lookup; a
    target is reachable iff the users' choices fit both pools, which a dynamic programme over users
    decides exactly (min-plus: the fewest fed PRBs for each count of main PRBs). The least reachable
    target is bisected between the slowest user with every spare PRB (below) and the rounded
    allocation's (above) until the bracket holds few of the values some user's T_k takes at some PRB
    counts (the optimum is one of them); those are then searched in order. (`_greedy_min_max`, PRB by
    PRB to the slowest user, is optimal with one pool and up to 1.8 % worse with two.)"""
    k = inputs.users
    delay = _PrbDelays(inputs, alloc, prb_hz)
    most_main, most_fed = prbs_main - k + 1, prbs_fed - k + 1  # the most one user can hold
    # per user and PRB count: the main-pool part A (K, most_main) and the fed-pool part B (K, most_fed) of T_k
    main_part, fed_part, C = delay.parts(most_main, most_fed)
    lower = float(np.max(main_part[:, -1] + fed_part[:, -1] + C))
    best = (round_to_prbs(alloc.b_s_hz, alloc.b_s_hz.sum(), prbs_main),
            round_to_prbs(alloc.b_c_hz, alloc.b_c_hz.sum(), prbs_fed))  # feasible: the bisection's first upper bound
    hi = _slowest(best, main_part, fed_part, C)
    lo = lower
    if hi <= lo * (1 + 1e-12):
        return best
    values = None
    while hi - lo > 1e-12 * hi:
        if values is None and hi - lo < 0.01 * hi:  # a narrow bracket: the optimum is one of few values
            values = main_part[:, :, None] + fed_part[:, None, :] + C[:, None, None]
        if values is not None:
            inside = values[(values >= lo) & (values < hi)]  # lo itself may be the optimum (the lower bound)
            if inside.size <= 4096:
                return _smallest_feasible(np.unique(inside), best, main_part, fed_part, C, prbs_main, prbs_fed)
        mid = 0.5 * (lo + hi)
        found = _fit_target(mid, main_part, fed_part, C, prbs_main, prbs_fed)
        if found is None:
            lo = mid
        else:  # what the found PRBs give is at most mid: the next upper bound
            best = found
            hi = min(mid, _slowest(found, main_part, fed_part, C))
    return best


def _smallest_feasible(candidates: np.ndarray, best: tuple[np.ndarray, np.ndarray], main_part: np.ndarray,
                       fed_part: np.ndarray, C: np.ndarray, prbs_main: int, prbs_fed: int):
    """The optimum when it is one of the sorted `candidates` (some user's T_k at some PRB counts) or
    the upper bound `best` gives: binary search for the smallest target the pools can meet."""
    low, high = 0, candidates.size  # candidates[high] (beyond the end: best) is feasible
    while low < high:
        middle = (low + high) // 2
        found = _fit_target(candidates[middle] * (1 + 1e-13), main_part, fed_part, C, prbs_main, prbs_fed)
        if found is None:
            low = middle + 1
        else:
            best, high = found, middle
    return best


def _slowest(prbs: tuple[np.ndarray, np.ndarray], main_part: np.ndarray, fed_part: np.ndarray,
             C: np.ndarray) -> float:
    """max_k T_k of whole PRBs (n_main, n_fed) from the parts."""
    users = np.arange(C.size)
    return float(np.max(main_part[users, prbs[0] - 1] + fed_part[users, prbs[1] - 1] + C))


def _fit_target(target: float, main_part: np.ndarray, fed_part: np.ndarray, C: np.ndarray, prbs_main: int,
                prbs_fed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """PRBs (main, fed) with every T_k <= target within both pools, or None when none exist.

    need[k, j]: the fewest fed PRBs user k needs with j + 1 main PRBs (fed_part[k] decreases: count the
    fed counts still too slow). Only the main counts where need drops are worth taking (more main
    PRBs for the same fed need are dominated), so the min-plus programme over users (dp[m]: the fewest
    fed PRBs for the users so far holding m main PRBs) runs over those few options per user."""
    most_fed = fed_part.shape[1]
    room = target - C[:, None] - main_part  # (K, most_main): what the fed upload may take
    need = 1 + (fed_part[:, None, :] > room[:, :, None]).sum(axis=2)  # (K, most_main)
    found = fit_needs(need, most_fed, prbs_main, prbs_fed)
    if found is None:
        return None
    n_main, n_fed = found
    k = need.shape[0]
    # spare PRBs go to the slowest users: never slower, and each pool used exactly
    n_main[np.argmax(main_part[np.arange(k), n_main - 1])] += prbs_main - int(n_main.sum())
    n_fed[np.argmax(fed_part[np.arange(k), n_fed - 1])] += prbs_fed - int(n_fed.sum())
    return n_main, n_fed


def fit_needs(need: np.ndarray, most_fed: int, prbs_main: int, prbs_fed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """PRBs (main, fed) (K,) within both pools such that user k with j main PRBs has at least
    need[k, j - 1] fed PRBs (need nonincreasing in j; above `most_fed`: j main PRBs are too few), or
    None when none exist; PRBs left over in either pool are not handed out here."""
    k, most_main = need.shape
    feasible = need <= most_fed
    if not feasible.any(axis=1).all():
        return None
    previous = np.concatenate([np.full((k, 1), most_fed + 1), need[:, :-1]], axis=1)
    useful = feasible & (need < previous)  # need drops here: the Pareto options of each user
    first = np.argmax(feasible, axis=1)  # the fewest main PRBs each user can do with
    if int(first.sum()) + k > prbs_main or int(need[:, -1].sum()) > prbs_fed:
        return None
    big = np.iinfo(np.int64).max // 4
    users, js0 = np.nonzero(useful)  # row-major: each user's options in order of main PRBs
    splits = np.cumsum(np.bincount(users, minlength=k))[:-1]
    all_js, all_costs = np.split(js0 + 1, splits), np.split(need[users, js0], splits)
    pad = most_main  # dp padded with `big` below 0 main PRBs: dp_padded[pad + m - j] = dp[m - j]
    dp_padded = np.full(pad + prbs_main + 1, big, dtype=np.int64)
    dp_padded[pad] = 0
    m_idx = np.arange(prbs_main + 1)[:, None] + pad
    rows = np.arange(prbs_main + 1)
    options, picks = [], []
    for user in range(k):
        js, cost = all_js[user], all_costs[user]
        cand = dp_padded[m_idx - js[None, :]] + cost[None, :]
        pick = np.argmin(cand, axis=1)
        dp_padded[pad:] = np.minimum(cand[rows, pick], big)
        options.append(js)
        picks.append(pick)
    dp = dp_padded[pad:]
    m = int(np.argmin(dp))
    if dp[m] > prbs_fed:
        return None
    n_main = np.empty(k, dtype=np.int64)
    for user in range(k - 1, -1, -1):
        n_main[user] = options[user][picks[user][m]]
        m -= n_main[user]
    n_fed = need[np.arange(k), n_main - 1]
    return n_main, n_fed


def _greedy_min_max(delay: _PrbDelays, k: int, prbs_main: int, prbs_fed: int) -> tuple[np.ndarray, np.ndarray]:
    """One PRB of each pool per user; then, PRB by PRB, the slowest user gets one more from the pool
    (with PRBs left) where it cuts its T_k the most."""
    n_main, n_fed = np.ones(k, dtype=np.int64), np.ones(k, dtype=np.int64)
    left = {"main": prbs_main - k, "fed": prbs_fed - k}
    delays = delay(n_main, n_fed)
    while left["main"] > 0 or left["fed"] > 0:
        user = int(np.argmax(delays))
        me = slice(user, user + 1)
        best, best_pool = np.inf, None
        for pool, n in (("main", n_main), ("fed", n_fed)):
            if left[pool] > 0:
                n[user] += 1
                t = float(delay(n_main[me], n_fed[me], me)[0])
                n[user] -= 1
                if t < best:
                    best, best_pool = t, pool
        (n_main if best_pool == "main" else n_fed)[user] += 1
        left[best_pool] -= 1
        delays[user] = best
    return n_main, n_fed


def allocation_in_prbs(inputs: DelayInputs, alloc: Allocation, scs_khz: int,
                       rule: str = "largest_remainder") -> Allocation:
    """`alloc` with both uplink bandwidths in whole PRBs; T recomputed from the delay model.

    rule 'largest_remainder' rounds the continuous bandwidths (`round_to_prbs`); 'min_max' gives
    the strategies whose bandwidth the optimizer chose (all but EB and BA, which keep equal shares,
    and a user's own strategy, which keeps its shares: `keeps_its_shares`; these are rounded) the
    whole PRBs of `min_max_prbs`, or the rounded ones when those are faster.
    details["prb"] records the PRBs per user, the continuous T and the relative delay cost."""
    prb_hz = prb_bandwidth_hz(scs_khz)
    total_main = prbs_in_channel(inputs.uplink_main_bandwidth_hz, scs_khz)
    total_fed = prbs_in_channel(inputs.uplink_fed_bandwidth_hz, scs_khz, "radio.uplink_fed_bandwidth_hz")
    if rule == "min_max" and not keeps_its_shares(alloc.strategy):
        if inputs.users > min(total_main, total_fed):
            raise OptimizerError(f"{inputs.users} users cannot each get one of {min(total_main, total_fed)} PRBs",
                                 field="cell.users", value=inputs.users)
        n_main, n_fed = min_max_prbs(inputs, alloc, total_main, total_fed, prb_hz)
        r_main = round_to_prbs(alloc.b_s_hz, inputs.uplink_main_bandwidth_hz, total_main)
        r_fed = round_to_prbs(alloc.b_c_hz, inputs.uplink_fed_bandwidth_hz, total_fed)
        delay = _PrbDelays(inputs, alloc, prb_hz)
        if delay(r_main, r_fed).max() < delay(n_main, n_fed).max():  # never worse than rounding
            n_main, n_fed = r_main, r_fed
    else:
        n_main = round_to_prbs(alloc.b_s_hz, inputs.uplink_main_bandwidth_hz, total_main)
        n_fed = round_to_prbs(alloc.b_c_hz, inputs.uplink_fed_bandwidth_hz, total_fed)
    details = {**alloc.details, "prb": {
        "subcarrier_spacing_khz": scs_khz, "prb_bandwidth_hz": prb_hz, "prbs_main": n_main, "prbs_fed": n_fed,
        "rule": rule if not keeps_its_shares(alloc.strategy) else "largest_remainder",
        "continuous_T_s": alloc.T_s}}
    rounded = allocation_with_counts(inputs, alloc.V, alloc.I0, n_main * prb_hz, n_fed * prb_hz, alloc.strategy,
                                     f"{alloc.solver} + whole PRBs ({details['prb']['rule']})", details, alloc.eta, alloc.power_main_fraction,
                                     alloc.power_fed_fraction, alloc.cpu_fraction)
    rounded.details["prb"]["rounding_cost_relative"] = rounded.T_s / alloc.T_s - 1.0
    return rounded

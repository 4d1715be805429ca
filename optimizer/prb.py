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

from scenarios import Allocation, DelayInputs
from scenarios.nr import PRBS_PER_CHANNEL, prb_bandwidth_hz
from scenarios.nr import prbs_in_channel as nr_prbs

from .allocation import allocation_with_counts
from .delay_model import compute_seconds_per_round
from .energy_model import upload_seconds_at_power
from .errors import OptimizerError

EQUAL_SHARE_STRATEGIES = ("EB", "BA")  # equal bandwidth by definition: rounded, never re-optimised

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
                                      self.p_s[pick])
        t_c = upload_seconds_at_power(inputs.adapter_bits, n_fed * self.prb_hz, inputs.snr_coeff_fed_hz[pick],
                                      self.p_c[pick])
        return alloc.I0 * (self.tau[pick] + t_c + alloc.V * inputs.weights[pick] * t_s)


def min_max_prbs(inputs: DelayInputs, alloc: Allocation, prbs_main: int, prbs_fed: int,
                 prb_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Whole PRBs that make the slowest user's T_k small, at the allocation's eta, powers and clocks.

    One PRB of each pool per user; then, PRB by PRB, the slowest user gets one more from the pool
    (with PRBs left) where it cuts its T_k the most. With one pool this greedy is optimal (T_k falls
    with the user's own PRBs only; tested by brute force)."""
    k = inputs.users
    delay = _PrbDelays(inputs, alloc, prb_hz)
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
    the strategies whose bandwidth the optimizer chose (all but EB and BA, which keep equal shares
    and are rounded) the whole PRBs of `min_max_prbs`, or the rounded ones when those are faster.
    details["prb"] records the PRBs per user, the continuous T and the relative delay cost."""
    prb_hz = prb_bandwidth_hz(scs_khz)
    total_main = prbs_in_channel(inputs.uplink_main_bandwidth_hz, scs_khz)
    total_fed = prbs_in_channel(inputs.uplink_fed_bandwidth_hz, scs_khz, "radio.uplink_fed_bandwidth_hz")
    if rule == "min_max" and alloc.strategy not in EQUAL_SHARE_STRATEGIES:
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
        "rule": rule if alloc.strategy not in EQUAL_SHARE_STRATEGIES else "largest_remainder",
        "continuous_T_s": alloc.T_s}}
    rounded = allocation_with_counts(inputs, alloc.V, alloc.I0, n_main * prb_hz, n_fed * prb_hz, alloc.strategy,
                                     f"{alloc.solver} + whole PRBs ({details['prb']['rule']})", details, alloc.eta, alloc.power_main_fraction,
                                     alloc.power_fed_fraction, alloc.cpu_fraction)
    rounded.details["prb"]["rounding_cost_relative"] = rounded.T_s / alloc.T_s - 1.0
    return rounded

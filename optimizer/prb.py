"""OFDMA with whole physical resource blocks: the optimiser's continuous bandwidths rounded to PRBs.

A 5G NR PRB is 12 sub-carriers: 180 kHz at 15 kHz spacing, 360 kHz at 30, 720 kHz at 60. How many
fit a channel is 3GPP TS 38.101-1 (FR1) Table 5.3.2-1, "Maximum transmission bandwidth
configuration N_RB" (the rest is guard band): a 20 MHz channel carries 106, 51 or 24 PRBs.

Rounding rule (largest remainder, Hamilton's method, with a floor of one PRB): user k's quota is
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

from .allocation import allocation_with_counts
from .errors import OptimizerError

__all__ = ["PRBS_PER_CHANNEL", "prb_bandwidth_hz", "prbs_in_channel", "round_to_prbs", "allocation_in_prbs"]

def prbs_in_channel(bandwidth_hz: float, scs_khz: int, field: str = "radio.uplink_main_bandwidth_hz") -> int:
    """N_RB of a channel of `bandwidth_hz` at `scs_khz` (TS 38.101-1 Table 5.3.2-1); OptimizerError if none."""
    table = PRBS_PER_CHANNEL.get(int(scs_khz))
    if table is None:
        raise OptimizerError(f"sub-carrier spacing {scs_khz} kHz is not 15, 30 or 60", field="radio.subcarrier_spacing_khz",
                             value=scs_khz)
    mhz = bandwidth_hz / 1e6
    if abs(mhz - round(mhz)) > 1e-9 or int(round(mhz)) not in table:
        raise OptimizerError(f"{mhz:g} MHz is not an NR channel bandwidth at {scs_khz} kHz spacing (TS 38.101-1 "
                             f"Table 5.3.2-1: {', '.join(map(str, table))} MHz)", field=field, value=bandwidth_hz)
    return table[int(round(mhz))]


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


def allocation_in_prbs(inputs: DelayInputs, alloc: Allocation, scs_khz: int) -> Allocation:
    """`alloc` with both uplink bandwidths rounded to whole PRBs; T recomputed from the delay model.

    details["prb"] records the PRBs per user, the continuous T and the relative delay cost."""
    prb_hz = prb_bandwidth_hz(scs_khz)
    n_main = round_to_prbs(alloc.b_s_hz, inputs.uplink_main_bandwidth_hz,
                           prbs_in_channel(inputs.uplink_main_bandwidth_hz, scs_khz))
    n_fed = round_to_prbs(alloc.b_c_hz, inputs.uplink_fed_bandwidth_hz,
                          prbs_in_channel(inputs.uplink_fed_bandwidth_hz, scs_khz, "radio.uplink_fed_bandwidth_hz"))
    details = {**alloc.details, "prb": {
        "subcarrier_spacing_khz": scs_khz, "prb_bandwidth_hz": prb_hz, "prbs_main": n_main, "prbs_fed": n_fed,
        "continuous_T_s": alloc.T_s}}
    rounded = allocation_with_counts(inputs, alloc.V, alloc.I0, n_main * prb_hz, n_fed * prb_hz, alloc.strategy,
                                     f"{alloc.solver} + PRB rounding", details, alloc.eta, alloc.power_main_fraction,
                                     alloc.power_fed_fraction, alloc.cpu_fraction)
    rounded.details["prb"]["rounding_cost_relative"] = rounded.T_s / alloc.T_s - 1.0
    return rounded

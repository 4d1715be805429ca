"""Problem (17) on a link model other than Shannon's (radio.link_model: nr).

The exact solvers stand on Shannon's rate b·log2(1 + c/b). On the NR link (scenarios.nr_link.NrRate)
they solve the link's attenuated-Shannon fit alpha·b·log2(1 + c/(Gamma·b)) — Shannon's rate on c/Gamma
with bits/alpha (DelayInputs.shannon_surrogate), fitted at the carrier's PRBs per user — and the
whole PRBs of both pools are then chosen on the NR goodput itself: exactly the ones that minimise the
slowest user for the optimised strategies (optimizer.prb.min_max_prbs), equal shares rounded for EB
and BA. Every delay reported is the NR link's.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from splitsim.scenarios import Allocation, DelayInputs
from splitsim.scenarios.nr import prbs_in_channel
from splitsim.scenarios.types import SHANNON

from .errors import OptimizerError


def on_shannon(inputs: DelayInputs) -> bool:
    return inputs.uplink_rate == SHANNON


def subcarrier_spacing_khz(inputs: DelayInputs) -> int:
    """The numerology of the inputs' NR link: its PRB is 12 sub-carriers."""
    return int(round(inputs.uplink_rate.prb_hz / 12e3))


class OutOfCoverage(OptimizerError):
    """Some user's link delivers nothing even on one PRB at full power (the NR link below its lowest MCS)."""

    def __init__(self, rate, snr_coeff_hz: np.ndarray, users: np.ndarray):
        sinr_db = rate.one_prb_sinr_db(snr_coeff_hz)
        control = getattr(rate, "power_control", None)
        if control is not None:  # the power open-loop control grants on one PRB
            sinr_db = sinr_db + 10.0 * np.log10(control.power_fraction(snr_coeff_hz, 1))
        worst = int(users[int(np.argmin(sinr_db[users]))])
        self.users = [int(u) for u in users]
        power, fix, field = ("at full power", "raise the transmit power or shrink the cell", "radio.max_tx_power_dbm") \
            if control is None else ("at the power open-loop control grants",
                                     "raise radio.nr.p0_dbm or the transmit power, or shrink the cell", "radio.nr.p0_dbm")
        super().__init__(f"{len(users)} user(s) out of coverage: on one PRB {power} their SINR is below the "
                         f"{rate.least_sinr_db():.2f} dB the lowest MCS needs at the BLER target (user {worst}: "
                         f"{sinr_db[worst]:.2f} dB); {fix}", field=field, value=None)


def check_coverage_of(rate, snr_coeff_hz: np.ndarray) -> None:
    """OutOfCoverage when a user with c = g·p/N0 `snr_coeff_hz` (K,) gets nothing from one PRB of `rate`."""
    if rate == SHANNON:
        return
    c = np.asarray(snr_coeff_hz, dtype=float)
    gaps = np.flatnonzero(rate.rate_bps(rate.prb_hz, c) <= 0)
    if gaps.size:
        raise OutOfCoverage(rate, c, gaps)


def check_coverage(inputs: DelayInputs) -> None:
    """OutOfCoverage when a user's uplink (either pool's) delivers nothing on one PRB at full power."""
    check_coverage_of(inputs.uplink_rate, np.minimum(inputs.snr_coeff_main_hz, inputs.snr_coeff_fed_hz))


def surrogate(inputs: DelayInputs) -> tuple[DelayInputs, dict]:
    """(Shannon inputs of the link's fit, what the fit was) at the main pool's PRBs per user."""
    scs = subcarrier_spacing_khz(inputs)
    prbs = prbs_in_channel(inputs.uplink_main_bandwidth_hz, scs)
    if prbs is None:
        raise OptimizerError(f"not an NR channel bandwidth at {scs} kHz spacing", field="radio.uplink_main_bandwidth_hz",
                             value=inputs.uplink_main_bandwidth_hz)
    per_user = prbs / inputs.users
    alpha, gamma = inputs.uplink_rate.shannon_fit(per_user)
    control = getattr(inputs.uplink_rate, "power_control", None)
    if control is not None:  # each user's power on its share of PRBs: the SNR the fit sees
        fed_prbs = prbs_in_channel(inputs.uplink_fed_bandwidth_hz, scs) or prbs
        inputs = replace(inputs, snr_coeff_main_hz=inputs.snr_coeff_main_hz * control.power_fraction(
                             inputs.snr_coeff_main_hz, max(1, round(per_user))),
                         snr_coeff_fed_hz=inputs.snr_coeff_fed_hz * control.power_fraction(
                             inputs.snr_coeff_fed_hz, max(1, round(fed_prbs / inputs.users))))
    return inputs.shannon_surrogate(alpha, gamma), {
        "link_model": inputs.link_model, "shannon_fit_alpha": alpha, "shannon_fit_gamma": gamma,
        "shannon_fit_prbs_per_user": per_user}


def on_link(inputs: DelayInputs, plan) -> dict[str, Allocation]:
    """`plan(shannon_inputs) -> {name: Allocation}` made on the fit, each allocation then in whole PRBs
    on the link itself (optimizer.prb, rule min_max; EB, BA and a user's own strategy keep their shares,
    rounded)."""
    from .prb import allocation_in_prbs

    check_coverage(inputs)
    shannon_inputs, fit = surrogate(inputs)
    out = {}
    for name, alloc in plan(shannon_inputs).items():
        rounded = allocation_in_prbs(inputs, alloc, subcarrier_spacing_khz(inputs), "min_max")
        rounded.details["link"] = fit
        out[name] = rounded
    return out

"""Every strategy's allocation for a realised scenario: the one function both doors call.

`splitsim optimize`, `simulate`, the studies that simulate SFL and `splitsim.optimise` all take
their allocations from `world_allocations`, so the Python API and the CLI cannot disagree on
whole PRBs or the energy budget.
"""

from __future__ import annotations

import logging
import time

from splitsim.optimizer.energy.strategies import allocation_energy_j, optimise_with_energy
import numpy as np

from splitsim.scenarios import Allocation, DelayInputs, EnergyInputs, InputError, Scenario
from splitsim.scenarios.nr import prbs_in_channel
from splitsim.scenarios.types import SHANNON

from .world import World

log = logging.getLogger("splitsim.analysis")


def world_allocations(world: World) -> dict[str, Allocation]:
    """Every strategy's allocation for the scenario: problem (17), or with an energy budget or
    weight the energy-aware proposed strategy (optimizer.energy.strategies); with
    radio.subcarrier_spacing_khz, rounded to whole PRBs (optimizer.prb); proposed_replan's first plan
    and the robust plan made for the cell's dynamics (analysis.replan)."""
    allocations = planned_allocations(world.inputs, world.energy, world.scenario)
    if "proposed_replan" in allocations or "robust" in allocations:
        from .replan import dynamic_allocations

        allocations = dynamic_allocations(world, allocations)
    return allocations


class OutOfCoverage(InputError):
    """Some user's link delivers nothing even on one PRB at full power (the NR link below its lowest MCS)."""

    def __init__(self, users: list[int], sinr_db: np.ndarray, least_sinr_db: float, tx_power_dbm: float | None):
        self.users = users
        worst = int(users[int(np.argmin(sinr_db[users]))])
        power = "" if tx_power_dbm is None else f" at {tx_power_dbm:g} dBm"
        super().__init__(f"{len(users)} user(s) out of coverage{power}: on one PRB their SINR is below the "
                         f"{least_sinr_db:.2f} dB the lowest MCS needs at the BLER target (user {worst}: "
                         f"{sinr_db[worst]:.2f} dB); raise the transmit power or shrink the cell",
                         field="radio.max_tx_power_dbm", value=tx_power_dbm)


def coverage_gaps(inputs: DelayInputs) -> list[int]:
    """Users whose uplink delivers nothing on one PRB at full power (empty on Shannon's link)."""
    if inputs.uplink_rate == SHANNON:
        return []
    prb_hz = inputs.uplink_rate.prb_hz
    c = np.minimum(inputs.snr_coeff_main_hz, inputs.snr_coeff_fed_hz)
    return [int(k) for k in np.flatnonzero(inputs.uplink_rate.rate_bps(prb_hz, c) <= 0)]


def check_coverage(inputs: DelayInputs, tx_power_dbm: float | None = None) -> None:
    """OutOfCoverage (exit 2) when some user's link delivers nothing on one PRB at full power."""
    gaps = coverage_gaps(inputs)
    if gaps:
        rate = inputs.uplink_rate
        c = np.minimum(inputs.snr_coeff_main_hz, inputs.snr_coeff_fed_hz)
        sinr_db = 10 * np.log10(c / rate.prb_hz) - rate.interference_over_thermal_db
        raise OutOfCoverage(gaps, sinr_db, rate.least_sinr_db(), tx_power_dbm)


def planned_allocations(inputs: DelayInputs, energy: EnergyInputs, scenario: Scenario) -> dict[str, Allocation]:
    """The plan-once allocations of every strategy for these inputs: problem (17) (or the energy-aware
    proposed strategy), in whole PRBs with radio.subcarrier_spacing_khz.

    On the NR link (radio.link_model: nr) problem (17) is solved exactly on the link's attenuated-Shannon
    fit (DelayInputs.shannon_surrogate, fitted at the carrier's PRBs per user), then the whole PRBs
    are chosen against the NR goodput itself (optimizer.prb with the NR rate: prb_rule 'min_max' is
    exact there) and every delay is the NR link's."""
    opt = scenario.optimizer
    aware = opt.energy_budget_j is not None or opt.energy_weight is not None
    if aware:  # seconds to minutes for large cells: say what is going on
        log.info("optimising %d users' bandwidth, power, clock and eta under the energy %s ...", inputs.users,
                 "budget" if opt.energy_budget_j is not None else "weight")
    start = time.perf_counter()
    scs_khz = scenario.radio.subcarrier_spacing_khz
    solve_inputs, fit = inputs, None
    if inputs.uplink_rate != SHANNON:
        check_coverage(inputs)
        prbs_per_user = prbs_in_channel(inputs.uplink_main_bandwidth_hz, scs_khz) / inputs.users
        solve_inputs = inputs.shannon_surrogate(prbs_per_user)
        alpha, gamma = inputs.uplink_rate.shannon_fit(prbs_per_user)
        fit = {"link_model": inputs.link_model, "shannon_fit_alpha": alpha, "shannon_fit_gamma": gamma,
               "shannon_fit_prbs_per_user": prbs_per_user}
    allocations = optimise_with_energy(solve_inputs, energy, opt, opt.energy_budget_j, opt.energy_weight)
    if aware:
        log.info("optimised in %.1f s", time.perf_counter() - start)
    if scs_khz is not None:
        from splitsim.optimizer.prb import allocation_in_prbs

        rule = scenario.radio.prb_rule
        allocations = {name: allocation_in_prbs(inputs, alloc, scs_khz, rule) for name, alloc in allocations.items()}
    if fit is not None:
        for alloc in allocations.values():
            alloc.details["link"] = fit
    return allocations


def allocation_energy_summary(world: World, alloc: Allocation) -> dict:
    """Worst and mean user energy (J, whole training) of an allocation, and its powers and clocks."""
    spent = allocation_energy_j(world.inputs, world.energy, alloc)
    p_s, p_c, f = alloc.powers_and_clock()
    return {"worst_user_j": float(spent["total_j"].max()), "mean_user_j": float(spent["total_j"].mean()),
            "per_category_j": {k[:-2]: float(v.sum()) for k, v in spent.items() if k != "total_j"},
            "mean_tx_power_main_w": float(world.energy.max_tx_power_w * p_s.mean()),
            "mean_cpu_fraction": float(f.mean())}

"""Every strategy's allocation for a realised scenario: the one function both doors call.

`splitsim optimize`, `simulate`, the studies that simulate SFL and `splitsim.optimise` all take
their allocations from `world_allocations`, so the Python API and the CLI cannot disagree on
whole PRBs or the energy budget.
"""

from __future__ import annotations

import logging
import time

from splitsim.optimizer.energy.strategies import allocation_energy_j, optimise_with_energy
from splitsim.scenarios import Allocation, DelayInputs, EnergyInputs, Scenario
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


def planned_allocations(inputs: DelayInputs, energy: EnergyInputs, scenario: Scenario) -> dict[str, Allocation]:
    """The plan-once allocations of every strategy for these inputs: problem (17) (or the energy-aware
    proposed strategy), in whole PRBs with radio.subcarrier_spacing_khz.

    On the NR link (radio.link_model: nr) `optimise` makes them on the link's attenuated-Shannon fit
    and in whole PRBs on the NR goodput itself (optimizer.link_plan)."""
    opt = scenario.optimizer
    aware = opt.energy_budget_j is not None or opt.energy_weight is not None
    if aware:  # seconds to minutes for large cells: say what is going on
        log.info("optimising %d users' bandwidth, power, clock and eta under the energy %s ...", inputs.users,
                 "budget" if opt.energy_budget_j is not None else "weight")
    start = time.perf_counter()
    allocations = optimise_with_energy(inputs, energy, opt, opt.energy_budget_j, opt.energy_weight)
    if aware:
        log.info("optimised in %.1f s", time.perf_counter() - start)
    scs_khz = scenario.radio.subcarrier_spacing_khz
    if scs_khz is not None and inputs.uplink_rate == SHANNON:  # the NR link's plans are in whole PRBs already
        from splitsim.optimizer.prb import allocation_in_prbs

        rule = scenario.radio.prb_rule
        allocations = {name: allocation_in_prbs(inputs, alloc, scs_khz, rule) for name, alloc in allocations.items()}
    return allocations


def allocation_energy_summary(world: World, alloc: Allocation) -> dict:
    """Worst and mean user energy (J, whole training) of an allocation, and its powers and clocks."""
    spent = allocation_energy_j(world.inputs, world.energy, alloc)
    p_s, p_c, f = alloc.powers_and_clock()
    return {"worst_user_j": float(spent["total_j"].max()), "mean_user_j": float(spent["total_j"].mean()),
            "per_category_j": {k[:-2]: float(v.sum()) for k, v in spent.items() if k != "total_j"},
            "mean_tx_power_main_w": float(world.energy.max_tx_power_w * p_s.mean()),
            "mean_cpu_fraction": float(f.mean())}

"""The simulations `splitsim simulate` runs, one function for the CLI and the Python API.

SFL: one run per allocation strategy (`world_allocations`: problem (17), the energy budget, whole
PRBs), each result carrying the optimizer's T beside the simulated delay. SplitLLM, SL and FL: the
scheme itself for `simulation.rounds` local epochs, from the model profile. Every figure the CLI
writes into `summary.json` is in the result's own `summary()`, so both doors report the same.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pandas as pd

from splitsim.netsim import SimulationResult, simulate_sfl
from splitsim.scenarios import Allocation, InputError

from .allocations import world_allocations
from .guards import check_allocations, check_dynamics
from .progress import progress_bar
from .replan import replan_spec
from .world import World

EventSink = Callable[[str], Callable[[pd.DataFrame], None]]  # run name -> writer of its event chunks


def simulate_allocation(world: World, allocation: Allocation, progress: bool | None = None,
                        events_sink=None) -> SimulationResult:
    """Simulate SFL under one allocation, with a per-round progress bar; with `events_sink`, the
    event table goes to it round by round (netsim.simulate_sfl). The result's `extra` carries the
    optimizer's T and the relative difference to it."""
    scenario = world.scenario
    total = math.ceil(allocation.I0 - 1e-12)
    if scenario.simulation.max_rounds is not None:
        total = min(total, scenario.simulation.max_rounds)
    with progress_bar(total, f"simulate {allocation.strategy}", progress) as bar:
        result = simulate_sfl(world.inputs, allocation, scenario.simulation, scenario.radio, scenario.channel,
                              world.channel, world.simulation_rng(), on_round=lambda r, t: bar.update(1),
                              energy=world.energy, cell=scenario.cell, events_sink=events_sink,
                              replan=replan_spec(world, allocation))
    result.extra.update({"optimizer_T_s": allocation.T_s,
                         "relative_difference_to_optimizer": abs(result.total_delay_s - allocation.T_s) / allocation.T_s})
    return result


def check_simulatable(world: World) -> None:
    """What `simulate` needs of the scenario beyond its fields: a model for the epoch schemes."""
    scenario = world.scenario
    if scenario.simulated_by_epochs and world.profile is None:
        raise InputError(f"scheme '{scenario.scheme}'{' with FedBuff' if scenario.scheme == 'sfl' else ''} is simulated "
                         "from a model profile: add a model section", field="model", value=None)


def simulations(world: World, progress: bool | None = None, sink: EventSink | None = None,
                allocations: dict[str, Allocation] | None = None) -> Iterator[tuple[str, SimulationResult]]:
    """(name, result) for every simulation `simulate` runs on `world`, in order; each is checked
    against the resource limits before the first starts. With `sink`, SFL's events are streamed
    (sink(name) receives each round's table) instead of held in memory."""
    check_simulatable(world)
    scenario = world.scenario
    if not scenario.simulated_by_epochs:
        allocations = world_allocations(world) if allocations is None else allocations
        check_allocations(allocations, scenario, streamed=sink is not None)  # every strategy fits, or none runs
        check_dynamics(world, allocations)
        from .intervals import delay_interval

        for name, allocation in allocations.items():
            result = simulate_allocation(world, allocation, progress, sink(name) if sink else None)
            band = delay_interval(scenario.theory, result.local_iterations, result.rounds, result.total_delay_s)
            if band is not None:  # measured convergence: one new seed's delay (analysis.intervals)
                result.extra["total_delay_interval_90"] = band
            yield name, result
        return
    from .schemes import run_scheme

    with progress_bar(scenario.simulation.rounds, f"simulate {scenario.scheme}", progress) as bar:
        outcome = run_scheme(world, scenario.scheme, on_round=lambda r, t: bar.update(1))
    outcome.result.extra.update({
        "memory_gib": {tier: b / 2**30 for tier, b in outcome.memory_bytes.items()},
        "user_traffic_gib_per_round": outcome.traffic_bytes["table_ii"] / 2**30})
    yield scenario.scheme, outcome.result

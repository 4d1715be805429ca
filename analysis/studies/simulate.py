"""Study `simulate`: the scenario's scheme simulated (SFL: under each allocation strategy), as
`splitsim simulate` does — summary.json, the events file and the resolved scenario."""

from __future__ import annotations

from pathlib import Path

from splitsim.scenarios import Problem, Scenario

from ..guards import check_availability_trace, check_energy_aware, check_epochs, check_sfl_simulation
from ..runs import SIMULATE_HEADLINE, run_simulate
from .base import Study


def run(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    summaries = run_simulate(scenario, out_dir, source=source, progress=progress)
    return [f"{name:>8}: simulated training delay {s['total_delay_s']:.6g} s over {s['rounds']:.6g} rounds"
            + (f" (90 % of new seeds: {b['low_s']:.6g}-{b['high_s']:.6g} s)" if (b := s.get("total_delay_interval_90"))
               else "") for name, s in summaries.items()] + [f"-> {out_dir}"]


def problems(scenario: Scenario) -> list[Problem]:
    if scenario.simulated_by_epochs and scenario.model is None:
        fedbuff = " with FedBuff" if scenario.scheme == "sfl" else ""
        return [Problem("model", f"scheme '{scenario.scheme}'{fedbuff} is simulated from a model profile: add a model "
                        "section", None, True)]
    return []


def by_allocation(scenario: Scenario) -> bool:
    """Synchronous SFL: simulated under each allocation strategy of problem (17)."""
    return not scenario.simulated_by_epochs


def check_cost_of(scenario: Scenario) -> None:
    check_availability_trace(scenario)
    if by_allocation(scenario):
        check_energy_aware(scenario)
        check_sfl_simulation(scenario, streamed=True)
    elif scenario.model is not None:
        check_epochs(scenario, [scenario.scheme])


STUDY = Study(
    kind="simulate", title="the scheme simulated (SFL: under every allocation strategy)", run=run,
    reads=frozenset(), figure=None,
    headline_meaning=SIMULATE_HEADLINE,
    simulates=lambda s: True, solves_problem_17=by_allocation, energy_aware=by_allocation, whole_prbs=by_allocation,
    problems=problems, check_cost=check_cost_of, dynamic_strategies=by_allocation,
)

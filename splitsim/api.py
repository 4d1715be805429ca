"""The functions behind `import splitsim`: thin wrappers over the packages, as the CLI is."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.guards import check_allocations, check_resources
from analysis.outputs import claim_out_dir
from analysis.world import World, load_profile
from analysis.world import realise as _realise
from netsim import SimulationResult, simulate_sfl
from optimizer import optimise as _optimise
from scenarios import Allocation, Scenario, WorkloadProfile, load_scenario, parse_scenario, scenario_to_dict, set_path
from scenarios.checks import scenario_warnings


def validate(path: str | Path) -> list[str]:
    """Check a scenario file as `splitsim validate` does; return its warning lines (raises
    ScenarioError / InputError on a problem)."""
    from scenarios import read_yaml

    scenario = load_scenario(path)
    check_resources(scenario, "run")
    data = read_yaml(Path(path).read_text(encoding="utf-8"), str(path))
    return [w.line() for w in scenario_warnings(scenario, data)]


def with_changes(scenario: Scenario, changes: dict[str, Any]) -> Scenario:
    """A copy of `scenario` with dotted fields changed ({"cell.users": 20, "model.cut_layers": [2]}),
    validated exactly as a scenario file is (unknown paths and bad values raise ScenarioError)."""
    data = scenario_to_dict(scenario)
    if scenario.model is None and any(path.startswith("model.") for path in changes):
        from scenarios import InputError

        raise InputError("the scenario has no model section; set model.source (and the rest) explicitly",
                         field=next(p for p in changes if p.startswith("model.")), value=None)
    for path, value in changes.items():
        data = set_path(data, path, value)
    return parse_scenario(data)


def realise(scenario: Scenario, profile: WorkloadProfile | None = None) -> World:
    """One realisation of the scenario: channel draw, per-user demand, edges, the model profile."""
    return _realise(scenario, profile)


def optimise(world: World | Scenario) -> dict[str, Allocation]:
    """Every strategy's allocation of FedsLLM problem (17) (proposed, EB, FE, BA)."""
    if isinstance(world, Scenario):
        world = realise(world)
    check_resources(world.scenario, "optimize")
    return _optimise(world.inputs, world.scenario.optimizer)


def allocation_table(allocations: dict[str, Allocation]) -> pd.DataFrame:
    """One row per strategy: T (s), eta, rounds I0, local iterations V, solver."""
    return pd.DataFrame([{"strategy": name, "T_s": a.T_s, "eta": a.eta, "I0": a.I0, "V": a.V, "solver": a.solver}
                         for name, a in allocations.items()]).set_index("strategy")


def simulate(world: World, allocation: Allocation) -> SimulationResult:
    """Simulate SFL under one allocation (`.total_delay_s`, `.summary()`, `.events_frame()`)."""
    check_allocations({allocation.strategy: allocation}, world.scenario)
    s = world.scenario
    return simulate_sfl(world.inputs, allocation, s.simulation, s.radio, s.channel, world.channel,
                        world.simulation_rng())


def profile(scenario: Scenario) -> WorkloadProfile:
    """The scenario model's profile (measured with torch, or read from the cache / profile_path)."""
    return load_profile(scenario)


@dataclass
class StudyResult:
    """A study's output folder read back: its summary and every CSV table, by file stem."""

    out: Path
    summary: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)


def run_study(scenario: Scenario, out: str | Path, overwrite: bool = False, progress: bool = False) -> StudyResult:
    """Run the scenario's study (`study.kind`) into `out`, as `splitsim run` does."""
    import json

    from analysis.runs import run_study as _run_study

    check_resources(scenario, "run")
    folder = claim_out_dir(out, "run", scenario, overwrite=overwrite)
    _run_study(scenario, folder, progress=progress)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    tables = {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))}
    return StudyResult(folder, summary, tables, sorted(folder.glob("*.png")))


def sweep(scenario_path: str | Path, grid: dict[str, list], out: str | Path, workers: int | None = None,
          overwrite: bool = False, progress: bool = False) -> pd.DataFrame:
    """Run the scenario's study over a grid ({"cell.users": [10, 20]}) as `splitsim sweep` does;
    return results.csv as a DataFrame (one row per point)."""
    import json

    from analysis.sweep import run_sweep

    sets = [f"{path}=" + ",".join(json.dumps(v) for v in values) for path, values in grid.items()]
    run_sweep(scenario_path, sets, out, workers=workers, progress=progress, overwrite=overwrite)
    return pd.read_csv(Path(out) / "results.csv")

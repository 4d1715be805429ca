"""The functions behind `import splitsim`: each calls exactly what the matching command calls.

| Python                      | command             | shared code                                  |
| --------------------------- | ------------------- | -------------------------------------------- |
| `validate(file or scenario)`| `splitsim validate` | analysis.checking.check_scenario             |
| `optimise(world)`           | `splitsim optimize` | analysis.allocations.world_allocations       |
| `simulate(world)`           | `splitsim simulate` | analysis.simulation.simulations              |
| `profile(scenario)`         | `splitsim profile`  | analysis.world.load_profile                  |
| `run_study(scenario, out)`  | `splitsim run`      | analysis.runs.run_study                      |
| `sweep(file or scenario,..)`| `splitsim sweep`    | analysis.sweep.run_sweep                     |
| `link_curve(file or scenario)` | `splitsim link` | analysis.link.link_table                     |

tests/test_two_doors.py runs every shipped scenario through both doors and compares the outputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from splitsim.analysis.allocations import world_allocations
from splitsim.analysis.checking import check_scenario
from splitsim.analysis.outputs import claim_out_dir, record_outputs
from splitsim.analysis.simulation import simulations
from splitsim.analysis.world import World, load_profile
from splitsim.analysis.world import realise as _realise
from splitsim.netsim import SimulationResult
from splitsim.scenarios import Allocation, InputError, Scenario, WorkloadProfile, load_scenario, parse_scenario, set_path


def _scenario(scenario: str | Path | Scenario) -> tuple[Scenario, str]:
    if isinstance(scenario, Scenario):
        return scenario, ""
    if isinstance(scenario, (str, Path)):
        return load_scenario(scenario), str(scenario)
    raise InputError(f"expected a scenario file or a splitsim.Scenario, not a {type(scenario).__name__}",
                     field="scenario", value=type(scenario).__name__)


def validate(scenario: str | Path | Scenario, command: str = "run") -> list[str]:
    """Check a scenario file or object as `splitsim validate` does (for `command`); return its
    warning lines. Raises ScenarioError / InputError, with one line per problem, on an error."""
    scenario, source = _scenario(scenario)
    return [w.line() for w in check_scenario(scenario, command, source)]


def with_changes(scenario: Scenario, changes: dict[str, Any]) -> Scenario:
    """A copy of `scenario` with dotted fields changed ({"cell.users": 20, "model.cut_layers": [2]}),
    validated exactly as a scenario file is (unknown paths and bad values raise ScenarioError). The
    fields the scenario set explicitly stay explicit, so validate() warns about the same ones."""
    data = scenario.model_dump(mode="json", exclude_unset=True)
    if scenario.model is None and any(path.startswith("model.") for path in changes):
        raise InputError("the scenario has no model section; set model.source (and the rest) explicitly",
                         field=next(p for p in changes if p.startswith("model.")), value=None)
    for path, value in changes.items():
        data = set_path(data, path, value)
    return parse_scenario(data)


def realise(scenario: Scenario, profile: WorkloadProfile | None = None) -> World:
    """One realisation of the scenario: channel draw, per-user demand, edges, the model profile."""
    return _realise(scenario, profile)


def _world(world: World | Scenario, command: str) -> World:
    if isinstance(world, Scenario):
        check_scenario(world, command)
        return realise(world)
    if not isinstance(world, World):
        raise InputError(f"expected a World (splitsim.realise) or a Scenario, not a {type(world).__name__}",
                         field="world", value=type(world).__name__)
    return world


def optimise(world: World | Scenario) -> dict[str, Allocation]:
    """Every strategy's allocation, as `splitsim optimize` computes it: problem (17), the
    energy-aware proposed strategy under `optimizer.energy_budget_j` / `energy_weight`, whole PRBs
    under `radio.subcarrier_spacing_khz`."""
    world = _world(world, "optimize")
    check_scenario(world.scenario, "optimize")
    return world_allocations(world)


def allocation_table(allocations: dict[str, Allocation]) -> pd.DataFrame:
    """One row per strategy: T (s), eta, rounds I0, local iterations V, solver."""
    return pd.DataFrame([{"strategy": name, "T_s": a.T_s, "eta": a.eta, "I0": a.I0, "V": a.V, "solver": a.solver}
                         for name, a in allocations.items()]).set_index("strategy")


def simulate(world: World | Scenario, allocation: Allocation | None = None
             ) -> SimulationResult | dict[str, SimulationResult]:
    """Simulate as `splitsim simulate` does. Without `allocation`: every run the command makes,
    {name: result} (SFL: each strategy of `optimise`; SplitLLM, SL, FL: the scheme). With one SFL
    allocation: that run alone. `.summary()` and `.events_frame()` hold what the command writes to
    summary.json and the events file."""
    world = _world(world, "simulate")
    if allocation is None:
        return dict(simulations(world, progress=False))
    if world.scenario.scheme != "sfl":
        raise InputError(f"scheme '{world.scenario.scheme}' runs without an allocation of problem (17): call "
                         "simulate(world)", field="allocation", value=allocation.strategy)
    return next(iter(dict(simulations(world, progress=False, allocations={allocation.strategy: allocation}))
                     .values()))


def profile(scenario: Scenario, remeasure: bool = False) -> WorkloadProfile:
    """The scenario model's profile (measured with torch, or read from the cache / profile_path);
    `remeasure` measures it again and replaces the cached one, as `splitsim profile --remeasure`."""
    check_scenario(scenario, "profile")
    if scenario.model is None:
        raise InputError("the scenario names no model to profile", field="model", value=None)
    return load_profile(scenario, remeasure=remeasure)


@dataclass
class StudyResult:
    """A study's output folder read back: its summary and every CSV table, by file stem."""

    out: Path
    summary: dict
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: list[Path] = field(default_factory=list)

    @property
    def metrics(self) -> dict:
        """The study's metrics (analysis.metrics names them), as in summary.json."""
        return self.summary.get("metrics", {})


def run_study(scenario: str | Path | Scenario, out: str | Path, overwrite: bool = False,
              progress: bool = False) -> StudyResult:
    """Run the scenario's study (`study.kind`) into `out`, as `splitsim run` does (a study that
    trains, `convergence`, resumes from its checkpoints in the same folder)."""
    from splitsim.analysis.commands import run_study as _run_study

    from splitsim.analysis.studies import STUDIES

    scenario, source = _scenario(scenario)
    check_scenario(scenario, "run", source)
    folder = claim_out_dir(out, "run", scenario, overwrite=overwrite, resumable=STUDIES[scenario.study.kind].trains)
    try:
        _run_study(scenario, folder, source=source, progress=progress)
    finally:
        record_outputs(folder)
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    tables = {p.stem: pd.read_csv(p) for p in sorted(folder.glob("*.csv"))}
    return StudyResult(folder, summary, tables, sorted(folder.glob("*.png")))


def sweep(scenario: str | Path | Scenario, grid: dict[str, list], out: str | Path, workers: int | None = None,
          overwrite: bool = False, progress: bool = False, max_points: int | None = None) -> pd.DataFrame:
    """Run the scenario's study over a grid ({"cell.users": [10, 20]}) as `splitsim sweep` does;
    return results.csv as a DataFrame (one row per point; headline columns `delay_<who>_s`)."""
    from splitsim.analysis.sweep import MAX_POINTS, run_sweep

    if not isinstance(scenario, (str, Path, Scenario)):
        _scenario(scenario)  # the one-line error
    sets = [f"{path}=" + ",".join(json.dumps(v) for v in values) for path, values in grid.items()]
    run_sweep(scenario, sets, out, workers=workers, progress=progress, overwrite=overwrite,
              max_points=MAX_POINTS if max_points is None else max_points)
    return pd.read_csv(Path(out) / "results.csv")


__all__ = ["StudyResult", "allocation_table", "optimise", "profile", "realise", "run_study", "simulate", "sweep",
           "validate", "with_changes"]


def rounds_to_target(convergence_path: str | Path, local_steps: float, level: float = 0.9) -> dict:
    """Rounds one new seed needs to reach a measured convergence curve's target at `local_steps` (V),
    with its `level` prediction interval: {"rounds", "low", "high", "level", "form", "runs"}.

    The curve is the FedsLLM form R(V) = a / (1 - 2^(-V/v)) fitted by maximum likelihood to every run
    of the file (`splitsim convergence`'s convergence.json; a run that never reached the target counts
    as a lower bound), seeds scattering log-normally around it; the interval holds the seeds' scatter
    and the fit's uncertainty (splitsim.optimizer.convergence_fit.fit_seeds)."""
    from splitsim.optimizer.convergence_fit import fit_seeds
    from splitsim.scenarios.convergence_file import ConvergenceFileError, read_convergence

    try:
        V = float(local_steps)
    except (TypeError, ValueError):
        raise InputError("must be a number of local steps", field="local_steps", value=local_steps) from None
    if not V > 0 or not np.isfinite(V):
        raise InputError("must be a positive number of local steps", field="local_steps", value=local_steps)
    if not 0 < level < 1:
        raise InputError("must be in (0, 1)", field="level", value=level)
    try:
        data = read_convergence(convergence_path)
    except ConvergenceFileError as err:
        raise InputError(str(err), field="convergence_path", value=str(convergence_path)) from None
    try:
        fit = fit_seeds(data["runs"])
    except ValueError as err:
        raise InputError(str(err), field="convergence_path", value=str(convergence_path)) from None
    interval = fit.interval(V, level)
    return {"rounds": float(interval["rounds"]), "low": float(interval["low"]), "high": float(interval["high"]),
            "level": level, "form": "a / (1 - 2^(-V/v))", "runs": fit.runs}


def link_curve(scenario: str | Path | Scenario) -> pd.DataFrame:
    """The scenario's NR uplink curve beside Shannon, as `splitsim link` writes it to link.csv (the
    same checks, the same function: analysis.link.link_table): per SINR the MCS, BLER, goodput per Hz
    over the TDD pattern and with every slot uplink, and Shannon's log2(1 + SINR)."""
    from splitsim.analysis.link import link_table

    scenario, source = _scenario(scenario)
    check_scenario(scenario, "link", source)
    return link_table(scenario)

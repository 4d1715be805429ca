"""Whole runs behind the CLI commands: simulate a scenario and write its output folder."""

from __future__ import annotations

import math
import sys
from pathlib import Path

from tqdm import tqdm

from netsim import SimulationResult, simulate_sfl
from optimizer import equal_bandwidth_allocation
from scenarios import Allocation, InputError, Scenario

from .outputs import prepare_out_dir, write_json, write_resolved_scenario
from .world import World, realise


def _progress_bar(total: int, label: str, enabled: bool | None):
    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=label, unit="round", disable=not show, leave=False, file=sys.stderr)


def simulate_allocation(world: World, allocation: Allocation, progress: bool | None = None) -> SimulationResult:
    """Simulate the scenario's scheme under one allocation, with a per-round progress bar."""
    scenario = world.scenario
    total = math.ceil(allocation.I0 - 1e-12)
    if scenario.simulation.max_rounds is not None:
        total = min(total, scenario.simulation.max_rounds)
    with _progress_bar(total, f"simulate {allocation.strategy}", progress) as bar:
        return simulate_sfl(world.inputs, allocation, scenario.simulation, scenario.radio, scenario.channel,
                            world.channel, world.simulation_rng(), on_round=lambda r, t: bar.update(1))


def write_events(result: SimulationResult, path_stem: Path, fmt: str) -> Path | None:
    """Write the event records as parquet or csv; None when records were not kept."""
    if not result.log.enabled:
        return None
    frame = result.events_frame()
    if fmt == "parquet":
        path = path_stem.with_suffix(".parquet")
        frame.to_parquet(path, index=False)
    else:
        path = path_stem.with_suffix(".csv")
        frame.to_csv(path, index=False)
    return path


def run_simulate(scenario: Scenario, out_dir: str | Path, source: str = "", events_format: str = "parquet",
                 progress: bool | None = None) -> dict:
    """`splitsim simulate`: equal bandwidth at the fixed eta (BA), simulated; writes the output folder.

    Writes summary.json (total delay, breakdown, the closed form for comparison), events.parquet
    (or .csv) and scenario.resolved.yaml.
    """
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    world = realise(scenario)
    allocation = equal_bandwidth_allocation(world.inputs, scenario.optimizer.fixed_eta, "BA")
    result = simulate_allocation(world, allocation, progress)
    events_path = write_events(result, out / "events", events_format)
    summary = result.summary()
    summary["closed_form_T_s"] = allocation.T_s
    summary["relative_difference_to_closed_form"] = abs(result.total_delay_s - allocation.T_s) / allocation.T_s
    summary["allocation"] = "equal bandwidth (BA), eta = optimizer.fixed_eta"
    summary["events_file"] = events_path.name if events_path else None
    write_json(out / "summary.json", {"scenario": scenario.name, "simulations": {allocation.strategy: summary}})
    return summary


def run_study(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    """`splitsim run`: dispatch on `study.kind`; return the lines to print."""
    kind = scenario.study.kind
    if kind == "simulate":
        summary = run_simulate(scenario, out_dir, source=source, progress=progress)
        return [f"total training delay {summary['total_delay_s']:.6g} s over {summary['rounds']:.6g} rounds -> {out_dir}"]
    raise InputError(f"study kind '{kind}' is not available yet", field="study.kind", value=kind)

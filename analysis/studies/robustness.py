"""Study `robustness`: the delay the optimizer plans against the delay in a cell that moves.

Every strategy (proposed, EB, FE, BA) is planned once on the scenario's frozen channel (problem
(17), PRB-rounded with radio.subcarrier_spacing_khz) and simulated `study.seeds` times under the
scenario's dynamics: block fading, mobility, partial participation, dropouts, availability,
deadline, stragglers. Seed i draws the dynamics from the stream "robustness/i", the same for every
strategy (common random numbers: strategies differ only by their allocation).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from netsim import simulate_sfl
from scenarios import Problem, Scenario, rng_for

from .. import plots
from ..guards import check_allocations, check_availability_trace, check_dynamics, check_sfl_simulation
from ..metrics import delay_metric, headline_delays, p95_delay_metric, planned_delay_metric
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..progress import progress_bar
from ..report import Report
from ..allocations import world_allocations
from ..world import realise
from .base import Study

HEADLINE = "each strategy's simulated training delay, the mean over study.seeds seeds of the dynamics"


def _planned_delay_s(alloc, max_rounds: int | None) -> float:
    """The optimizer's delay for the rounds simulated (all I0, or the first max_rounds)."""
    if max_rounds is None or max_rounds >= alloc.I0:
        return alloc.T_s
    return alloc.T_s * max_rounds / alloc.I0


def robustness_runs(scenario: Scenario, progress: bool | None = None) -> tuple[pd.DataFrame, dict]:
    """One row per (strategy, seed): planned and simulated delay, participation and waste."""
    world = realise(scenario)
    allocations = world_allocations(world)
    check_allocations(allocations, scenario)
    check_dynamics(world, allocations)
    sim = scenario.simulation.model_copy(update={"record_events": False})
    rows = []
    with progress_bar(len(allocations) * scenario.study.seeds, "robustness", progress) as bar:
        for name, alloc in allocations.items():
            planned = _planned_delay_s(alloc, sim.max_rounds)
            for seed in range(scenario.study.seeds):
                result = simulate_sfl(world.inputs, alloc, sim, scenario.radio, scenario.channel, world.channel,
                                      rng_for(scenario.seed, f"robustness/{seed}"), energy=world.energy,
                                      cell=scenario.cell)
                part = result.participation_summary() if result.round_updates is not None else {}
                energy = result.user_energy_j()
                rows.append({"strategy": name, "seed": seed, "planned_s": planned,
                             "simulated_s": result.total_delay_s, "ratio": result.total_delay_s / planned,
                             "mean_updates_per_round": part.get("mean_updates_per_round", float(scenario.cell.users)),
                             "rounds_without_update": part.get("rounds_without_update", 0),
                             "wasted_share_of_busy": part.get("wasted_share_of_busy", 0.0),
                             "worst_user_j": float(energy["total_j"].max()) if energy else math.nan,
                             "engine": result.engine})
                bar.update(1)
    return pd.DataFrame(rows), allocations


def robustness_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: planned delay; simulated mean, p95 and worst; mean ratio to the plan; waste."""
    g = runs.groupby("strategy", sort=False)
    table = pd.DataFrame({
        "planned_s": g["planned_s"].first(), "simulated_mean_s": g["simulated_s"].mean(),
        "simulated_p95_s": g["simulated_s"].quantile(0.95), "simulated_worst_s": g["simulated_s"].max(),
        "mean_over_planned": g["ratio"].mean(), "updates_per_round": g["mean_updates_per_round"].mean(),
        "wasted_share": g["wasted_share_of_busy"].mean(), "worst_user_j": g["worst_user_j"].mean()})
    table["rank_planned"] = table["planned_s"].rank(method="min").astype(int)
    table["rank_simulated"] = table["simulated_mean_s"].rank(method="min").astype(int)
    return table.reset_index()


def _dynamics_text(scenario: Scenario) -> str:
    ch, sim = scenario.channel, scenario.simulation
    parts = []
    if ch.time_varying:
        parts.append(f"{ch.fading} fading redrawn every {ch.coherence_time_s:g} s"
                     + (f" (K-factor {ch.rician_k_factor_db:g} dB)" if ch.fading == "rician" else ""))
        if ch.mobility_speed_mps > 0:
            parts.append(f"random-waypoint mobility at {ch.mobility_speed_mps:g} m/s with shadowing decorrelating over "
                         f"{ch.shadowing_decorrelation_m:g} m")
    if ch.redraw_each_round:
        parts.append("shadowing and fading redrawn every round")
    if sim.participants_per_round is not None:
        parts.append(f"{sim.participants_per_round} of {scenario.cell.users} users sampled per round")
    if sim.dropout_probability > 0:
        parts.append(f"drop-outs with probability {sim.dropout_probability:g} per round")
    if sim.availability_trace is not None:
        parts.append(f"availability from {sim.availability_trace}")
    if sim.availability_mean_on_s is not None:
        parts.append(f"users online {sim.availability_mean_on_s:g} s / offline {sim.availability_mean_off_s:g} s on "
                     "average")
    if sim.round_deadline_s is not None:
        parts.append(f"a round deadline of {sim.round_deadline_s:g} s")
    if sim.straggler_probability > 0:
        parts.append(f"stragglers ({sim.straggler_probability:g} chance, {sim.straggler_slowdown:g}x slower)")
    if scenario.radio.subcarrier_spacing_khz is not None:
        parts.append(f"bandwidths in whole PRBs at {scenario.radio.subcarrier_spacing_khz} kHz spacing")
    return "; ".join(parts)


def run_robustness(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    runs, allocations = robustness_runs(scenario, progress)
    table = robustness_table(runs)
    runs.to_csv(out / "robustness_runs.csv", index=False)
    table.to_csv(out / "robustness.csv", index=False)
    dynamics = _dynamics_text(scenario)
    rounds = scenario.simulation.max_rounds
    plots.robustness(runs, out / "robustness.png",
                     f"{scenario.name}: K = {scenario.cell.users}, {scenario.study.seeds} seeds"
                     + (f", first {rounds} rounds" if rounds else ""))
    by = table.set_index("strategy")
    metrics = {delay_metric(s): float(by.loc[s, "simulated_mean_s"]) for s in by.index}
    metrics.update({p95_delay_metric(s): float(by.loc[s, "simulated_p95_s"]) for s in by.index})
    metrics.update({planned_delay_metric(s): float(by.loc[s, "planned_s"]) for s in by.index})
    prb = {name: a.details["prb"]["rounding_cost_relative"] for name, a in allocations.items() if "prb" in a.details}
    write_json(out / "summary.json", {"scenario": scenario.name, "study": "robustness", "dynamics": dynamics,
                                      "metrics": metrics, "headline": headline_delays(metrics),
                                      "headline_meaning": HEADLINE,
                                      "prb_rounding_cost_relative": prb, "table": table.to_dict(orient="records")})
    report = Report("Planned against simulated delay in a cell that moves", scenario.name, source)
    report.paragraph(f"Each strategy is planned on the frozen channel at t = 0 and simulated {scenario.study.seeds} "
                     f"times under: {dynamics}. Seed i draws the same dynamics for every strategy.")
    lead = ""
    if "proposed" in by.index and len(by) > 1:
        others = by.drop(index="proposed")
        best_other = others["simulated_mean_s"].idxmin()
        gap_plan = 100 * (others.loc[best_other, "planned_s"] - by.loc["proposed", "planned_s"]) / \
            others.loc[best_other, "planned_s"]
        gap_sim = 100 * (others.loc[best_other, "simulated_mean_s"] - by.loc["proposed", "simulated_mean_s"]) / \
            others.loc[best_other, "simulated_mean_s"]
        lead = (f"The proposed allocation was planned {gap_plan:.3g} % below the best baseline ({best_other}); "
                + (f"simulated, its mean delay is {gap_sim:.3g} % below it: it keeps its lead." if gap_sim > 0 else
                   f"simulated, its mean delay is {-gap_sim:.3g} % above it: it loses its lead."))
        report.paragraph(lead)
    if prb:
        report.paragraph("Rounding to whole PRBs costs " + ", ".join(f"{k} {100 * v:.3g} %" for k, v in prb.items())
                         + " of planned delay over the continuous bandwidths.")
    report.table(table, "Per strategy (delays in s; ratio = simulated / planned; wasted = share of user busy time in "
                        "work that was not aggregated):")
    report.figure("robustness.png", "simulated delay per strategy over the seeds; the diamond is the optimizer's plan")
    report.write(out)
    lines = [f"{r.strategy:>8}: planned {r.planned_s:.6g} s, simulated mean {r.simulated_mean_s:.6g} s, p95 "
             f"{r.simulated_p95_s:.6g} s, worst {r.simulated_worst_s:.6g} s" for r in table.itertuples()]
    return lines + ([lead] if lead else []) + [f"-> {out}"]


def problems(scenario: Scenario) -> list[Problem]:
    sim, ch = scenario.simulation, scenario.channel
    dynamic = ch.time_varying or sim.come_and_go_fields or ch.redraw_each_round or sim.straggler_probability > 0
    if not dynamic:
        return [Problem("study.kind", "robustness simulates the plan in a cell that moves: set "
                        "channel.coherence_time_s, user dynamics (simulation.participants_per_round, ...) or "
                        "stragglers; without them every seed gives the optimizer's delay", scenario.study.kind, True)]
    return []


def check_cost_of(scenario: Scenario) -> None:
    check_availability_trace(scenario)
    check_sfl_simulation(scenario, streamed=False)


STUDY = Study(
    kind="robustness", title="the optimizer's plan against its simulation in a cell that moves",
    run=run_robustness, figure="robustness.png", headline_meaning=HEADLINE, reads=frozenset({"seeds"}),
    schemes=("sfl",), scheme_hint="robustness compares FedsLLM's allocations (SFL): set scheme: sfl",
    simulates=lambda s: True, solves_problem_17=lambda s: True, whole_prbs=lambda s: True,
    problems=problems, check_cost=check_cost_of,
)

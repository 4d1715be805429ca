"""Study `robustness`: the delay the optimizer plans against the delay in a cell that moves.

The plan-once strategies (proposed, EB, FE, BA) are planned on the scenario's frozen channel at
t = 0 (problem (17), PRB-rounded with radio.subcarrier_spacing_khz); `robust` is planned once for
the channel the users will have (analysis.replan); `proposed_replan` is re-planned during the run
by the base station (netsim.replanning), once per `study.replan_intervals_s` x `study.csi_delays_s`
variant. Each is simulated `study.seeds` times under the scenario's dynamics: block fading,
mobility, partial participation, dropouts, availability, deadline, stragglers. Seed i draws the
dynamics from the stream "robustness/i", the same for every strategy (common random numbers:
strategies differ only by their allocation).

Each strategy's prediction: the optimizer's delay for the plan-once and robust plans; for a
re-planned run, the sum of its rounds' predictions (each from the plan in force and the CSI it was
made on, plus the re-plan's own time), averaged over the seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from splitsim.netsim import build_fl_plan, run_plan, simulate_sfl
from splitsim.optimizer.fl_bandwidth import FL_STRATEGIES
from splitsim.scenarios import Problem, Scenario, rng_for

from .. import plots
from ..guards import (check_allocations, check_availability_trace, check_dynamics, check_epochs, check_replan,
                      check_sfl_simulation)
from ..metrics import delay_metric, headline_delays, p95_delay_metric, planned_delay_metric
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..progress import ProgressLog, progress_bar, shows_bar
from ..report import Report
from ..allocations import world_allocations
from ..replan import (fl_allocations, fl_replan_spec, fl_solve_key, forecast_samples, measured_solve_s, replan_spec,
                      solve_key)
from ..world import realise
from .base import Study, is_sfl

HEADLINE = "each strategy's simulated training delay, the mean over study.seeds seeds of the dynamics"


def _solve_source(scenario: Scenario) -> str:
    """Where the counted re-solve time comes from (optimizer.replan_solve_s)."""
    from splitsim.scenarios.schema import REPLAN_SOLVE_BUDGET_S

    value = scenario.optimizer.replan_solve_s
    if value == "measured":
        return "measured on this machine: host-dependent"
    return "the base station's modelled budget" if value == REPLAN_SOLVE_BUDGET_S else "as set"


def _planned_delay_s(alloc, max_rounds: int | None) -> float:
    """The optimizer's delay for the rounds simulated (all I0, or the first max_rounds; FL: its rounds)."""
    if max_rounds is None or max_rounds >= alloc.I0:
        return alloc.T_s
    return alloc.T_s * max_rounds / alloc.I0


def _seconds_text(value: float) -> str:
    return f"{value:g}".replace(".", "p") + "s"


def replan_variants(scenario: Scenario) -> list[tuple[str, float | None, float, str]]:
    """(label, re-plan interval or None for every round, CSI delay, eta fixed or rechosen) of each
    proposed_replan run."""
    study, opt, ch = scenario.study, scenario.optimizer, scenario.channel
    intervals = study.replan_intervals_s if study.replan_intervals_s is not None else [opt.replan_interval_s]
    delays = study.csi_delays_s if study.csi_delays_s is not None else [ch.csi_delay_s]
    etas = study.replan_etas if study.replan_etas is not None and scenario.scheme == "sfl" else [opt.replan_eta]
    if len(intervals) == 1 and len(delays) == 1 and len(etas) == 1:
        return [("proposed_replan", intervals[0], delays[0], etas[0])]
    return [("replan_" + ("every_round" if i is None else _seconds_text(i)) + ("" if d == 0 else f"_csi{_seconds_text(d)}")
             + ("_eta" if e == "rechosen" else ""), i, d, e) for i in intervals for d in delays for e in etas]


def _fl_simulator(world, sim):
    """FL's runs: (plan, seed rng, replan spec) -> result, the adapter uplink shared by the plan."""
    scenario = world.scenario
    batches = world.batches_per_round()

    def simulate(plan, rng, spec):
        fl = build_fl_plan(world.profile, scenario.compute, scenario.radio, sim, scenario.channel, world.channel,
                           batches, rng, cell=scenario.cell, bandwidth_hz=plan.bandwidth_hz, replan=spec)
        return run_plan(fl, sim, scenario.channel, energy=world.energy)

    return simulate


def robustness_runs(scenario: Scenario, progress: bool | None = None) -> tuple[pd.DataFrame, dict]:
    """One row per (strategy, seed): planned, predicted and simulated delay, participation and waste."""
    world = realise(scenario)
    sim = scenario.simulation.model_copy(update={"record_events": False})
    if scenario.scheme == "fl":  # FL's adapter uplink (optimizer.fl_bandwidth), epochs of simulation.rounds
        allocations = fl_allocations(world)
        for name, plan in allocations.items():
            if name == "proposed_replan":
                check_replan(scenario, plan)
        make_spec, users, key = fl_replan_spec, world.channel.users, lambda eta: fl_solve_key(world)
        simulate = _fl_simulator(world, sim)
    else:
        allocations = world_allocations(world)
        check_allocations(allocations, scenario)
        check_dynamics(world, allocations)
        make_spec, users, key = replan_spec, world.inputs.users, lambda eta: (*solve_key(world), eta)

        def simulate(alloc, rng, spec):
            return simulate_sfl(world.inputs, alloc, sim, scenario.radio, scenario.channel, world.channel, rng,
                                energy=world.energy, cell=scenario.cell, replan=spec)
    runs: list[tuple[str, object, dict]] = []  # (label, allocation, replan overrides)
    solve_s: dict[str, float] = {}
    for name, alloc in allocations.items():
        if name != "proposed_replan":
            runs.append((name, alloc, {}))
            continue
        solve_s = {}  # one measurement per kind of re-solve (eta fixed or re-chosen), shared by the variants and seeds
        for label, interval, delay, eta in replan_variants(scenario):
            if eta not in solve_s:
                solve_s[eta] = scenario.optimizer.replan_solve_s
                if solve_s[eta] == "measured":
                    spec = make_spec(world, alloc, solve_s=0.0, eta=eta)
                    solve_s[eta] = measured_solve_s(spec.planner, users, key(eta), forecast_samples(scenario))
            runs.append((label, alloc, {"interval_s": interval, "csi_delay_s": delay, "solve_s": solve_s[eta],
                                        "eta": eta}))
    rows = []
    # without a terminal (a log file, a batch job), a line about every 5 % of the runs with the time left
    quiet = None if shows_bar(progress) else ProgressLog(len(runs) * scenario.study.seeds, "robustness", "runs")
    with progress_bar(len(runs) * scenario.study.seeds, "robustness", progress) as bar:
        for name, alloc, overrides in runs:
            planned = _planned_delay_s(alloc, sim.max_rounds if scenario.scheme == "sfl" else None)
            for seed in range(scenario.study.seeds):
                spec = make_spec(world, alloc, **overrides) if overrides else None
                result = simulate(alloc, rng_for(scenario.seed, f"robustness/{seed}"), spec)
                part = result.participation_summary() if result.round_updates is not None else {}
                energy = result.user_energy_j()
                predicted = result.extra["replan_predicted_s"] if spec is not None else planned
                rows.append({"strategy": name, "seed": seed, "planned_s": planned, "predicted_s": predicted,
                             "simulated_s": result.total_delay_s, "ratio": result.total_delay_s / predicted,
                             "replan_solves": result.extra.get("replan_solves", 0),
                             "replan_overhead_s": result.extra.get("replan_overhead_s", 0.0),
                             "mean_updates_per_round": part.get("mean_updates_per_round", float(scenario.cell.users)),
                             "rounds_without_update": part.get("rounds_without_update", 0),
                             "wasted_share_of_busy": part.get("wasted_share_of_busy", 0.0),
                             "worst_user_j": float(energy["total_j"].max()) if energy else math.nan,
                             "engine": result.engine})
                bar.update(1)
                if quiet is not None:
                    quiet.step()
    if solve_s:
        allocations["proposed_replan"].details["replan_solve_s"] = solve_s.get("fixed", next(iter(solve_s.values())))
        allocations["proposed_replan"].details["replan_solve_s_by_eta"] = solve_s
    return pd.DataFrame(rows), allocations


def robustness_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: planned delay; simulated mean, p95 and worst; mean ratio to the plan; waste."""
    g = runs.groupby("strategy", sort=False)
    table = pd.DataFrame({
        "planned_s": g["planned_s"].first(), "predicted_s": g["predicted_s"].mean(),
        "simulated_mean_s": g["simulated_s"].mean(),
        "simulated_p95_s": g["simulated_s"].quantile(0.95), "simulated_worst_s": g["simulated_s"].max(),
        "mean_over_predicted": g["ratio"].mean(), "updates_per_round": g["mean_updates_per_round"].mean(),
        "wasted_share": g["wasted_share_of_busy"].mean(), "worst_user_j": g["worst_user_j"].mean(),
        "replan_solves": g["replan_solves"].mean(), "replan_overhead_s": g["replan_overhead_s"].mean()})
    table["prediction_error"] = table["predicted_s"] / table["simulated_mean_s"] - 1.0
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
    metrics.update({f"predicted_delay_{s}_s": float(by.loc[s, "predicted_s"]) for s in by.index})
    prb = {name: a.details["prb"]["rounding_cost_relative"] for name, a in allocations.items() if "prb" in a.details}
    details = allocations["proposed_replan"].details if "proposed_replan" in allocations else {}
    solve_s, solve_by_eta = details.get("replan_solve_s"), details.get("replan_solve_s_by_eta", {})
    write_json(out / "summary.json", {"scenario": scenario.name, "study": "robustness", "dynamics": dynamics,
                                      "metrics": metrics, "headline": headline_delays(metrics),
                                      "headline_meaning": HEADLINE, "replan_solve_s": solve_s,
                                      "replan_solve_s_source": _solve_source(scenario),
                                      "replan_solve_s_by_eta": solve_by_eta,
                                      "prb_rounding_cost_relative": prb, "table": table.to_dict(orient="records")})
    report = Report("Planned against simulated delay in a cell that moves", scenario.name, source)
    report.paragraph(f"The plan-once strategies are planned on the frozen channel at t = 0; each strategy is simulated "
                     f"{scenario.study.seeds} times under: {dynamics}. Seed i draws the same dynamics for every "
                     "strategy.")
    if "robust" in allocations:
        report.paragraph("robust is planned once, at t = 0, for each user's expected seconds per bit over "
                         f"{scenario.optimizer.robust_walks} sampled walks of the run and the {scenario.channel.fading} "
                         "fading; its prediction is its own expected delay (max over users of their expected time).")
    if solve_s is not None:
        report.paragraph(f"proposed_replan: the base station re-plans from what it knows "
                         f"({scenario.optimizer.replan_csi.replace('_', '-')} CSI), each re-solve taking "
                         + " and ".join(f"{v:.3g} s" + (" with eta re-chosen" if k == "rechosen" else "")
                                        for k, v in (solve_by_eta or {"fixed": solve_s}).items())
                         + f" ({_solve_source(scenario)}) "
                         f"plus {scenario.optimizer.replan_signalling_s:g} s of signalling, both counted in the "
                         "simulated time; its prediction is the sum of its rounds' predictions"
                         + ("; variants ending in _eta re-choose eta (V) at every re-solve for the rest of the run."
                            if "rechosen" in solve_by_eta else "."))
    lead = ""
    baselines = [s for s in ("EB", "FE", "BA") if s in by.index]
    if "proposed" in by.index and baselines:
        others = by.loc[baselines]  # the plan-once proposed against FedsLLM's own baselines
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
    if "EB" in by.index and len(by) > 1:
        optimised = by.drop(index=[s for s in ("EB", "BA") if s in by.index])
        if len(optimised):
            best = optimised["simulated_mean_s"].idxmin()
            eb = by.loc["EB"]
            report.paragraph(
                f"The best optimised strategy, {best}, has a simulated mean "
                f"{100 * (1 - optimised.loc[best, 'simulated_mean_s'] / eb['simulated_mean_s']):.3g} % and a p95 "
                f"{100 * (1 - optimised.loc[best, 'simulated_p95_s'] / eb['simulated_p95_s']):.3g} % below EB's; its "
                f"prediction is {100 * optimised.loc[best, 'prediction_error']:+.3g} % off its simulated mean.")
    report.table(table, "Per strategy (delays in s; predicted: the optimizer's plan, or for a re-planned run the sum of "
                        "its rounds' predictions; mean_over_predicted = simulated / predicted; wasted = share of user "
                        "busy time in work that was not aggregated; replan_*: re-solves and their time per run):")
    report.figure("robustness.png", "simulated delay per strategy over the seeds; the diamond is the prediction")
    report.write(out)
    lines = [f"{r.strategy:>8}: predicted {r.predicted_s:.6g} s, simulated mean {r.simulated_mean_s:.6g} s, p95 "
             f"{r.simulated_p95_s:.6g} s, worst {r.simulated_worst_s:.6g} s" for r in table.itertuples()]
    return lines + ([lead] if lead else []) + [f"-> {out}"]


def problems(scenario: Scenario) -> list[Problem]:
    out = _fl_problems(scenario) if scenario.scheme == "fl" else []
    return out + _dynamics_problems(scenario)


def _fl_problems(scenario: Scenario) -> list[Problem]:
    """FL's robustness: a model to profile, and strategies that mean something for one uplink."""
    out = []
    if scenario.model is None:
        out.append(Problem("model", "FL is simulated from a model profile: add a model section", None, True))
    other = [s for s in scenario.optimizer.strategies if s not in FL_STRATEGIES]
    if other:
        out.append(Problem("optimizer.strategies", f"FL allocates its adapter uplink by {', '.join(FL_STRATEGIES)}; "
                           f"{' and '.join(other)} fix FedsLLM's eta, which FL does not have (FE would be proposed, "
                           "BA would be EB)", scenario.optimizer.strategies, True))
    return out


def _dynamics_problems(scenario: Scenario) -> list[Problem]:
    sim, ch = scenario.simulation, scenario.channel
    dynamic = ch.time_varying or sim.come_and_go_fields or ch.redraw_each_round or sim.straggler_probability > 0
    if not dynamic:
        return [Problem("study.kind", "robustness simulates the plan in a cell that moves: set "
                        "channel.coherence_time_s, user dynamics (simulation.participants_per_round, ...) or "
                        "stragglers; without them every seed gives the optimizer's delay", scenario.study.kind, True)]
    return []


def check_cost_of(scenario: Scenario) -> None:
    check_availability_trace(scenario)
    if scenario.scheme == "fl":  # every strategy, each over study.seeds walks (at least: re-plan variants add)
        check_epochs(scenario, ["fl"], runs=scenario.study.seeds * len(scenario.optimizer.strategies),
                     records_in_memory=False)
    else:
        check_sfl_simulation(scenario, streamed=False)


FL_UNUSED_OPTIMIZER = ("fixed_eta", "solver", "eta_search", "eta_grid_step", "max_delay_s", "replan_eta")


def ignores(scenario: Scenario) -> dict[str, str]:
    """FL's robustness allocates the adapter uplink for simulation.rounds epochs: no eta, no (17)."""
    if scenario.scheme != "fl":
        return {}
    why = "FL's robustness runs simulation.rounds epochs and allocates only the adapter uplink (no eta)"
    return {"theory": f"{why}; FedsLLM's convergence constants are not used", "simulation.max_rounds": why,
            "study.replan_etas": why,
            **{f"optimizer.{name}": why for name in FL_UNUSED_OPTIMIZER}}


STUDY = Study(
    kind="robustness", title="the optimizer's plan against its simulation in a cell that moves",
    run=run_robustness, figure="robustness.png", headline_meaning=HEADLINE,
    reads=frozenset({"seeds", "replan_intervals_s", "csi_delays_s", "replan_etas"}),
    schemes=("sfl", "fl"), scheme_hint="robustness compares the allocations of SFL (FedsLLM's problem (17)) and of "
                                       "FL's adapter uplink: set scheme: sfl or fl",
    simulates=lambda s: True, solves_problem_17=lambda s: True, whole_prbs=is_sfl,
    problems=problems, ignores=ignores, check_cost=check_cost_of, dynamic_strategies=lambda s: True,
)

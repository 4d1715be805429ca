"""Study `delay_energy`: the Pareto front of training delay against user energy.

The proposed allocation is solved for a sweep of per-user budgets E_max (bandwidth, transmit power,
CPU clock and eta optimised, optimizer.energy.strategies); EB, FE and BA, which keep p = p_max and
f = f_max, trace their own (delay, energy) points as the maximum transmit power is swept, beside
the delay-optimal proposed allocation at each power.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from splitsim.optimizer import optimise
from splitsim.optimizer.energy.strategies import allocation_energy_j, check_budget, minimum_energy_j, optimise_with_energy
from splitsim.scenarios import Problem, Scenario

from .. import plots
from ..guards import check_energy
from ..metrics import delay_metric, headline_delays
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..progress import progress_iter
from ..report import Report
from ..world import World, realise
from .base import Study

HEADLINE = "the proposed allocation's training delay under the tightest and the loosest energy budget of the sweep"


def _row(world: World, alloc, strategy: str, mode: str, power_dbm: float, budget: float) -> dict:
    spent = allocation_energy_j(world.inputs, world.energy, alloc)
    p_s, _, f = alloc.powers_and_clock()
    return {"strategy": strategy, "mode": mode, "tx_power_dbm": power_dbm, "energy_budget_j": budget,
            "T_s": alloc.T_s, "worst_user_j": float(spent["total_j"].max()), "mean_user_j": float(spent["total_j"].mean()),
            "compute_j": float(spent["compute_j"].sum()), "uplink_j": float(spent["uplink_main_j"].sum()
                                                                             + spent["uplink_fed_j"].sum()),
            "idle_j": float(spent["idle_j"].sum()), "eta": alloc.eta, "mean_power_fraction": float(p_s.mean()),
            "mean_cpu_fraction": float(f.mean())}


def budgets_for(world: World, points: int) -> tuple[np.ndarray, float, float]:
    """(budgets, least energy the neediest user needs, worst-user energy of the delay-optimal allocation):
    `points` budgets log-spaced between just above the first and the second."""
    e_min = float(minimum_energy_j(world.inputs, world.energy)[0].max())
    delay_optimal = optimise(world.inputs, world.scenario.optimizer.model_copy(update={"strategies": ["proposed"]}))
    e_opt = float(allocation_energy_j(world.inputs, world.energy, delay_optimal["proposed"])["total_j"].max())
    low = e_min * 1.05
    return np.geomspace(low, max(e_opt, low * 1.01), points), e_min, e_opt


def delay_energy_table(world: World, budgets: np.ndarray, powers: list[float],
                       progress: bool | None = None) -> pd.DataFrame:
    scenario = world.scenario
    rows = []
    only = scenario.optimizer.model_copy(update={"strategies": ["proposed"]})
    for budget in progress_iter(list(budgets), "budgets", progress):
        alloc = optimise_with_energy(world.inputs, world.energy, only, float(budget))["proposed"]
        rows.append(_row(world, alloc, "proposed", "budget", scenario.radio.max_tx_power_dbm, float(budget)))
    for power in powers:
        at = world.at_tx_power(power)
        for name, alloc in optimise(at.inputs, scenario.optimizer).items():
            rows.append(_row(at, alloc, name, "power", float(power), float("nan")))
    return pd.DataFrame(rows)


def run_delay_energy(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    world = realise(scenario)
    study = scenario.study
    auto, e_min, e_opt = budgets_for(world, study.energy_budget_points)
    if study.energy_budgets_j is not None:  # every budget must be reachable, checked before any solve
        check_budget(world.inputs, world.energy, min(study.energy_budgets_j), "study.energy_budgets_j")
    budgets = np.asarray(study.energy_budgets_j if study.energy_budgets_j is not None else auto, dtype=float)
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    table = delay_energy_table(world, budgets, study.tx_power_dbm, progress)
    table.to_csv(out / "delay_energy.csv", index=False)
    plots.delay_energy(table, out / "delay_energy.png", f"{scenario.name}: K = {scenario.cell.users} users, "
                       f"p_max = {scenario.radio.max_tx_power_dbm:g} dBm for the budget sweep")
    front = table[table["mode"] == "budget"].sort_values("energy_budget_j")
    tight, loose = front.iloc[0], front.iloc[-1]
    at_power = table[(table["mode"] == "power") & (table["tx_power_dbm"] == scenario.radio.max_tx_power_dbm)]
    metrics = {"least_energy_needed_j": e_min, "delay_optimal_worst_user_j": e_opt,
               delay_metric("tightest_budget"): float(tight["T_s"]), delay_metric("loosest_budget"): float(loose["T_s"]),
               **{f"worst_user_{r.strategy}_j": r.worst_user_j for r in at_power.itertuples()}}
    write_json(out / "summary.json", {"scenario": scenario.name, "study": "delay_energy", "metrics": metrics,
                                      "headline": headline_delays(metrics),
                                      "headline_meaning": HEADLINE,
                                      "rows": table.to_dict(orient="records")})
    report = Report("Training delay against user energy", scenario.name, source)
    report.paragraph(
        f"K = {scenario.cell.users} users. Each user's budget E_max covers the whole training. The proposed allocation "
        "chooses bandwidth, transmit power, CPU clock and eta under the budget; EB, FE and BA keep the maximum power and "
        f"clock, so their energy follows from the maximum transmit power ({', '.join(f'{p:g}' for p in study.tx_power_dbm)}"
        " dBm). No allocation can give the neediest user less than "
        f"{e_min:.4g} J (slowest clock, unlimited bandwidth and time); the delay-optimal allocation spends {e_opt:.4g} J "
        "on its worst user.")
    report.paragraph(f"From the loosest to the tightest budget ({loose['energy_budget_j']:.4g} J to "
                     f"{tight['energy_budget_j']:.4g} J) the delay grows from {loose['T_s']:.6g} s to {tight['T_s']:.6g} s.")
    report.table(table[["strategy", "mode", "tx_power_dbm", "energy_budget_j", "T_s", "worst_user_j", "mean_user_j",
                        "eta", "mean_power_fraction", "mean_cpu_fraction"]], "The front (energies in J, whole training):")
    report.figure("delay_energy.png", "training delay against the worst user's (left) and the mean user's (right) energy")
    report.write(out)
    lines = [f"budget {r.energy_budget_j:10.4g} J: T = {r.T_s:12.6g} s, worst user {r.worst_user_j:.4g} J, mean "
             f"{r.mean_user_j:.4g} J" for r in front.itertuples()]
    lines += [f"{r.strategy:>8} at {r.tx_power_dbm:5.1f} dBm: T = {r.T_s:12.6g} s, worst user {r.worst_user_j:.4g} J"
              for r in table[table["mode"] == "power"].itertuples()]
    return lines + [f"-> {out}"]


def problems(scenario: Scenario) -> list[Problem]:
    if "proposed" not in scenario.optimizer.strategies:
        return [Problem("optimizer.strategies", "delay_energy needs the proposed strategy",
                        scenario.optimizer.strategies, True)]
    return []


def check_cost_of(scenario: Scenario) -> None:
    check_energy(scenario, list(scenario.study.energy_budgets_j or []), "study.energy_budgets_j")


def ignores(scenario: Scenario) -> dict[str, str]:
    return {"optimizer.energy_budget_j": "delay_energy sweeps the budget itself (study.energy_budgets_j)",
            "optimizer.energy_weight": "delay_energy minimises the delay under each budget of its sweep"}


STUDY = Study(
    kind="delay_energy", title="the Pareto front of training delay against user energy",
    run=run_delay_energy, figure="delay_energy.png", headline_meaning=HEADLINE,
    reads=frozenset({"tx_power_dbm", "energy_budgets_j", "energy_budget_points"}),
    schemes=("sfl",), scheme_hint="delay_energy optimises FedsLLM's allocation (SFL): set scheme: sfl",
    solves_problem_17=lambda s: True, problems=problems, ignores=ignores, check_cost=check_cost_of,
)

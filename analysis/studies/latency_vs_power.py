"""Study `latency_vs_power`: FedsLLM Fig. 2 and how its gains depend on the convergence constants."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd

from splitsim.optimizer import convergence_constants, optimise
from splitsim.optimizer.energy.strategies import allocation_energy_j
from splitsim.scenarios import Problem, Scenario, TheoryConfig
from splitsim.scenarios.types import SHANNON

from .. import plots
from ..intervals import LEVEL, interval_text, with_delay_interval
from ..metrics import delay_metric, reduction_metric
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..report import Report
from ..progress import progress_iter as _progress
from ..world import World, realise
from .base import Study

HEADLINE = "each strategy's optimised training delay T, averaged over study.tx_power_dbm"


def mean_reductions(table: pd.DataFrame, reference: str = "proposed") -> dict[str, float]:
    """Mean over the rows' x-values of 100·(T_baseline - T_reference)/T_baseline, per baseline."""
    wide = table.pivot_table(index="tx_power_dbm", columns="strategy", values="T_s")
    if reference not in wide:
        return {}
    return {b: float((100 * (wide[b] - wide[reference]) / wide[b]).mean()) for b in wide.columns if b != reference}


def power_sweep_table(world: World, powers: list[float], progress: bool | None = None,
                      simulate_points: bool = False) -> pd.DataFrame:
    """One row per (power, strategy): T_s and eta (exact search), the grid's best, counts, solver."""
    from ..guards import check_allocations
    from ..simulation import simulate_allocation

    from splitsim.optimizer.link_plan import OutOfCoverage

    from ..allocations import planned_allocations

    scenario = world.scenario
    rows = []
    for power in _progress(powers, "powers", progress):
        at_power = world.at_tx_power(power)
        try:
            allocations = planned_allocations(at_power.inputs, at_power.energy, scenario)
        except OutOfCoverage as gap:  # no strategy trains: every user's update is needed each round
            rows += [{"tx_power_dbm": float(power), "strategy": name, "T_s": float("inf"),
                      "users_out_of_coverage": len(gap.users)} for name in scenario.optimizer.strategies]
            continue
        if simulate_points:
            check_allocations(allocations, scenario)
        for name, alloc in allocations.items():
            spent = allocation_energy_j(at_power.inputs, at_power.energy, alloc)["total_j"]
            row = {"tx_power_dbm": float(power), "strategy": name, "T_s": alloc.T_s, "users_out_of_coverage": 0,
                   "eta": alloc.eta,
                   "worst_user_j": float(spent.max()), "mean_user_j": float(spent.mean()),
                   "V": alloc.V, "I0": alloc.I0, "T_grid_s": alloc.details.get("T_grid_s", alloc.T_s),
                   "eta_grid": alloc.details.get("eta_grid", alloc.eta), "solver": alloc.solver}
            if simulate_points:
                row["T_simulated_s"] = simulate_allocation(at_power, alloc, progress=False).total_delay_s
            rows.append(row)
    return pd.DataFrame(rows)


def theory_sensitivity(world: World, powers: list[float], Ls: list[float], ratios: list[float],
                       progress: bool | None = None) -> pd.DataFrame:
    """Mean reductions of the proposed scheme for each (L, gamma/L) that satisfies Lemmas 1-2.

    Only v changes the reductions: a = 2L^2/(gamma^2 xi)·ln(1/eps0) scales every delay alike.
    """
    base = world.scenario.theory
    rows = []
    pairs = [(L, r) for L in Ls for r in ratios]
    for L, ratio in _progress(pairs, "L, gamma", progress):
        try:
            theory = TheoryConfig(**{**base.model_dump(), "lipschitz_L": L, "strong_convexity_gamma": ratio * L})
        except ValueError:
            continue  # violates xi <= gamma/L or delta < 2/L
        a, v = convergence_constants(theory)
        inputs_at = {p: replace(world.at_tx_power(p).inputs, a=a, v=v) for p in powers}
        table = pd.DataFrame([{"tx_power_dbm": p, "strategy": n, "T_s": al.T_s}
                              for p, inp in inputs_at.items()
                              for n, al in optimise(inp, world.scenario.optimizer).items()])
        red = mean_reductions(table)
        rows.append({"lipschitz_L": L, "gamma_over_L": ratio, "strong_convexity_gamma": ratio * L, "a": a, "v": v,
                     **{f"reduction_vs_{b}_pct": val for b, val in red.items()}})
    return pd.DataFrame(rows)


def run_latency_vs_power(scenario: Scenario, out_dir: str | Path, source: str = "",
                         progress: bool | None = None) -> list[str]:
    """FedsLLM Fig. 2: delay of proposed, EB, FE and BA against the maximum transmit power."""
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    world = realise(scenario)
    study = scenario.study
    table = with_delay_interval(power_sweep_table(world, study.tx_power_dbm, progress, study.simulate_points),
                                scenario.theory)
    table.to_csv(out / "latency_vs_power.csv", index=False)
    nr = scenario.radio.link_model == "nr"
    shannon_table = None
    if nr:  # the same cell on Shannon's rate, side by side: what the deployed radio changes
        shannon_world = replace(world, inputs=replace(world.inputs, uplink_rate=SHANNON, downlink_rate=SHANNON))
        shannon_table = power_sweep_table(shannon_world, study.tx_power_dbm, progress, False)
        shannon_table.to_csv(out / "latency_vs_power_shannon.csv", index=False)
    plots.latency_vs_power(table, out / "latency_vs_power.png",
                           f"Training delay against the users' transmit power ({scenario.name})\n"
                           f"K = {scenario.cell.users} users, B_s = {scenario.radio.uplink_main_bandwidth_hz / 1e6:g} MHz, "
                           f"B_c = {scenario.radio.uplink_fed_bandwidth_hz / 1e6:g} MHz; rounds from "
                           + ("measured convergence" if scenario.theory.source == "measured" else "FedsLLM's bound"),
                           beside=shannon_table, labels=("NR", "Shannon") if nr else ("", ""))
    reductions = mean_reductions(table)
    measured = scenario.theory.source == "measured"
    sensitivity = pd.DataFrame() if measured or nr else theory_sensitivity(
        world, study.tx_power_dbm, study.sensitivity_lipschitz_L, study.sensitivity_gamma_over_L, progress)
    if len(sensitivity):
        sensitivity.to_csv(out / "reduction_vs_theory.csv", index=False)
    if len(sensitivity):
        plots.reduction_vs_theory(sensitivity, out / "reduction_vs_theory.png")
    a, v = world.inputs.a, world.inputs.v
    bound_table = None
    if measured:  # the same cell on the bound's (a, v), side by side: what the measurement changes
        bound_theory = TheoryConfig(**{**scenario.theory.model_dump(), "source": "bound", "convergence_path": None})
        a_b, v_b = convergence_constants(bound_theory)
        bound_world = replace(world, inputs=replace(world.inputs, a=a_b, v=v_b))
        bound_table = power_sweep_table(bound_world, study.tx_power_dbm, progress, False)
        bound_table.to_csv(out / "latency_vs_power_bound.csv", index=False)
    mean_delays = table.groupby("strategy", sort=False)["T_s"].mean()
    metrics = {**{delay_metric(name): float(t) for name, t in mean_delays.items()},
               **{reduction_metric(b): r for b, r in reductions.items()}}
    write_json(out / "summary.json", {"metrics": metrics, "headline": [delay_metric(n) for n in mean_delays.index],
        "headline_meaning": HEADLINE,
        "scenario": scenario.name, "study": "latency_vs_power", "mean_reduction_pct": reductions,
        "theory": theory_summary(scenario.theory, a, v),
        **({"link": link_summary(table, shannon_table)} if shannon_table is not None else {}),
        **({"bound_mean_reduction_pct": mean_reductions(bound_table)} if bound_table is not None else {}),
        **({"delay_interval_90": interval_summary(table)} if "T_low_90_s" in table else {}),
        "paper_reduction_vs_BA_pct": 47.63, "rows": table.to_dict(orient="records")})

    report = Report("Training delay vs maximum transmit power (FedsLLM Fig. 2)", scenario.name, source)
    report.paragraph(f"K = {scenario.cell.users} users, B_s = {scenario.radio.uplink_main_bandwidth_hz / 1e6:g} MHz, "
                     f"B_c = {scenario.radio.uplink_fed_bandwidth_hz / 1e6:g} MHz; {theory_sentence(scenario.theory, a, v)} "
                     "The proposed scheme optimises bandwidth and eta; EB optimises eta with equal bandwidth; "
                     "FE optimises bandwidth at eta = 0.1; BA uses neither.")
    report.paragraph("Mean delay reduction of the proposed scheme over the swept powers: "
                     + ", ".join(f"{reductions[b]:.2f} % vs {b}" for b in ("BA", "EB", "FE") if b in reductions)
                     + " (FedsLLM reports 47.63 % vs BA with unreported L and gamma).")
    wide = table.pivot_table(index="tx_power_dbm", columns="strategy", values="T_s").reset_index()
    report.table(wide, "Training delay T (s) per strategy:")
    if "T_low_90_s" in table:
        banded = table.assign(T=[interval_text(r.T_s, {"low_s": r.T_low_90_s, "high_s": r.T_high_90_s, "level": LEVEL})
                                 for r in table.itertuples()])
        report.table(banded.pivot(index="tx_power_dbm", columns="strategy", values="T").reset_index(),
                     "The same delays with the 90 % prediction interval of one new seed: its rounds at each "
                     "strategy's V (the measured seeds' scatter and the fit's uncertainty) times the round time.")
    if bound_table is not None:
        on_bound = mean_reductions(bound_table)
        side = pd.DataFrame([{"strategy": name, "V measured": float(g["V"].mean()), "rounds measured": float(g["I0"].mean()),
                              "T measured (s)": float(g["T_s"].mean()),
                              "V bound": float(bound_table[bound_table["strategy"] == name]["V"].mean()),
                              "rounds bound": float(bound_table[bound_table["strategy"] == name]["I0"].mean()),
                              "T bound (s)": float(bound_table[bound_table["strategy"] == name]["T_s"].mean())}
                             for name, g in table.groupby("strategy", sort=False)])
        report.table(side, "The measured curve against the bound on the same cell (means over the powers): each "
                           "strategy's V, rounds and delay:")
        report.paragraph("Mean reduction of the proposed scheme on the bound: "
                         + ", ".join(f"{on_bound[b]:.2f} % vs {b}" for b in ("BA", "EB", "FE") if b in on_bound)
                         + "; on the measured curve: "
                         + ", ".join(f"{reductions[b]:.2f} % vs {b}" for b in ("BA", "EB", "FE") if b in reductions)
                         + ".")
    if shannon_table is not None:
        link = link_summary(table, shannon_table)
        report.table(pd.DataFrame(link["per_power"]),
                     "The same cell on Shannon's rate (FedsLLM's model) beside the NR link: each strategy's delay (s) "
                     "and NR / Shannon:")
        report.paragraph("Mean reduction of the proposed scheme on Shannon's rate: "
                         + ", ".join(f"{link['shannon_mean_reduction_pct'][b]:.2f} % vs {b}" for b in ("BA", "EB", "FE")
                                     if b in link["shannon_mean_reduction_pct"])
                         + "; on the NR link: "
                         + ", ".join(f"{reductions[b]:.2f} % vs {b}" for b in ("BA", "EB", "FE") if b in reductions)
                         + f". NR link: {world.inputs.uplink_rate.link.slots.pattern} at "
                         f"{scenario.radio.subcarrier_spacing_khz} kHz, {scenario.radio.nr.mcs_table}, BLER target "
                         f"{scenario.radio.nr.bler_target:g}; problem (17) solved on its attenuated-Shannon fit, whole "
                         f"PRBs chosen on the NR goodput ({scenario.radio.prb_rule}).")
    energy = table.pivot_table(index="tx_power_dbm", columns="strategy", values="worst_user_j").reset_index()
    report.table(energy, "Energy of the worst user over the training (J) per strategy (full power and clock):")
    if len(sensitivity):
        cols = ["lipschitz_L", "strong_convexity_gamma", "v"] + [c for c in sensitivity if c.startswith("reduction")]
        report.table(sensitivity[cols], "Mean reduction (%) of the proposed scheme for other L and gamma:")
    report.figure("latency_vs_power.png", "training delay against maximum transmit power, one curve per strategy")
    if len(sensitivity):
        report.figure("reduction_vs_theory.png", "mean reduction vs BA against L and against v")
    report.write(out)

    lines = [f"{row.strategy:>8} at {row.tx_power_dbm:5.1f} dBm: T = {row.T_s:12.6g} s, eta = {row.eta:.4f}"
             + (f", 90 % of new seeds: {row.T_low_90_s:.6g}–{row.T_high_90_s:.6g} s" if "T_low_90_s" in table else "")
             for row in table.itertuples()]
    lines += [f"mean reduction of proposed vs {b}: {reductions[b]:.2f} %" for b in ("BA", "EB", "FE") if b in reductions]
    lines.append(f"-> {out}")
    return lines


def interval_summary(table: pd.DataFrame) -> dict:
    """summary.json's account of the delays' prediction intervals (measured convergence)."""
    return {"level": LEVEL, "meaning": "one new seed's delay: the measured curve's prediction interval of its rounds "
                                       "(seed scatter and fit uncertainty) at each strategy's V, times the round time",
            "columns": ["T_low_90_s", "T_high_90_s"],
            "mean_per_strategy": {name: {"T_s": float(g["T_s"].mean()), "low_s": float(g["T_low_90_s"].mean()),
                                         "high_s": float(g["T_high_90_s"].mean())}
                                  for name, g in table.groupby("strategy", sort=False)}}


def link_summary(nr_table: pd.DataFrame, shannon_table: pd.DataFrame) -> dict:
    """NR against Shannon on the same cell: per power and strategy both delays and their ratio, the
    mean ratio per strategy, and the proposed scheme's mean reductions on each link."""
    both = nr_table[["tx_power_dbm", "strategy", "T_s"]].merge(
        shannon_table[["tx_power_dbm", "strategy", "T_s"]], on=["tx_power_dbm", "strategy"], suffixes=("_nr", "_shannon"))
    both["nr_over_shannon"] = both["T_s_nr"] / both["T_s_shannon"]
    return {"per_power": both.to_dict(orient="records"),
            "mean_nr_over_shannon": {n: float(g["nr_over_shannon"].mean()) for n, g in both.groupby("strategy", sort=False)},
            "shannon_mean_reduction_pct": mean_reductions(shannon_table), "nr_mean_reduction_pct": mean_reductions(nr_table)}


def theory_summary(theory: TheoryConfig, a: float, v: float) -> dict:
    """What summary.json says of the convergence constants: their source and values."""
    if theory.source == "measured":
        return {"source": "measured", "convergence_path": theory.convergence_path, "a": a, "v": v}
    return {"source": "bound", "lipschitz_L": theory.lipschitz_L, "strong_convexity_gamma": theory.strong_convexity_gamma,
            "a": a, "v": v}


def theory_sentence(theory: TheoryConfig, a: float, v: float) -> str:
    """The report's line on where the rounds come from."""
    if theory.source == "measured":
        return (f"rounds from measured convergence: R(V) = a / (1 - 2^(-V/v)) fitted to real training's "
                f"rounds-to-target, a = {a:.4g}, v = {v:.4g} ({Path(theory.convergence_path).name}).")
    return (f"rounds from FedsLLM's bound: L = {theory.lipschitz_L:g}, gamma = {theory.strong_convexity_gamma:g} "
            f"(a = {a:.4g}, v = {v:.4g}).")


def problems(scenario: Scenario) -> list[Problem]:
    missing = sorted({"proposed", "BA"} - set(scenario.optimizer.strategies))
    return [Problem("optimizer.strategies", f"latency_vs_power needs the strategies {missing}",
                    scenario.optimizer.strategies, True)] if missing else []


def ignores(scenario: Scenario) -> dict[str, str]:
    ignored = {"radio.max_tx_power_dbm": "latency_vs_power sets the transmit power itself, from study.tx_power_dbm"}
    if not scenario.study.simulate_points:
        ignored["simulation"] = "latency_vs_power only optimises (set study.simulate_points: true to simulate)"
    if scenario.theory.source == "measured":
        for name in ("sensitivity_lipschitz_L", "sensitivity_gamma_over_L"):
            ignored[f"study.{name}"] = "the sensitivity to L and gamma is the bound's; theory.source is 'measured'"
    elif scenario.radio.link_model == "nr":
        for name in ("sensitivity_lipschitz_L", "sensitivity_gamma_over_L"):
            ignored[f"study.{name}"] = "the sensitivity to L and gamma is computed on Shannon's link (link_model: shannon)"
    return ignored


STUDY = Study(
    kind="latency_vs_power", title="FedsLLM Fig. 2: training delay against the users' maximum transmit power",
    run=run_latency_vs_power, figure="latency_vs_power.png", headline_meaning=HEADLINE,
    reads=frozenset({"tx_power_dbm", "simulate_points", "sensitivity_lipschitz_L", "sensitivity_gamma_over_L"}),
    schemes=("sfl",), scheme_hint="latency_vs_power solves FedsLLM problem (17), which is SFL's: set scheme: sfl (use "
                                  "scheme_comparison to compare schemes)",
    solves_problem_17=lambda s: True, problems=problems, ignores=ignores, whole_prbs=lambda s: True,
)

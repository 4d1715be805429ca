"""Study `scheme_comparison`: SplitLLM vs SFL vs FL vs SL on the same cell and model.

The shape of SplitLLM Table II (user-side traffic, peak memory per tier) plus what it lacks: the
wall-clock training delay on the simulated network.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from splitsim.scenarios import Problem, Scenario

from .. import plots
from ..guards import check_availability_trace, check_epochs
from ..metrics import delay_metric
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..progress import progress_iter
from ..report import Report
from ..schemes import SCHEME_LABEL, run_scheme, spectrum_plan
from ..world import realise
from .base import Study

HEADLINE = "each scheme's simulated training delay over simulation.rounds rounds"


def run_scheme_comparison(scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    world = realise(scenario)
    rows = [run_scheme(world, scheme).row() for scheme in progress_iter(scenario.study.schemes, "schemes", progress)]
    table = pd.DataFrame(rows)
    table.to_csv(out / "scheme_comparison.csv", index=False)
    plots.scheme_comparison(table, out / "scheme_comparison.png", f"{scenario.name}: {scenario.cell.users} users, "
                            f"{scenario.model.source}, {scenario.simulation.rounds} rounds")
    metrics = {delay_metric(r["scheme"]): r["delay_s"] for r in rows}
    write_json(out / "summary.json", {"scenario": scenario.name, "study": "scheme_comparison", "metrics": metrics,
                                      "headline": list(metrics),
                                      "headline_meaning": HEADLINE,
                                      "rows": rows,
                                      "spectrum": {s: spectrum_plan(scenario)[s] for s in scenario.study.schemes}})
    p = world.profile
    report = Report("Scheme comparison: SplitLLM, SFL, FL and SL", scenario.name, source)
    report.paragraph(
        f"{scenario.cell.users} users, {scenario.cell.edge_servers} edge servers; model {p.model} "
        f"({p.num_blocks} blocks, LoRA r = {p.lora_rank}, batch {p.batch_size}, {p.dtype}), cut layers "
        f"{scenario.model.cut_layers}; {scenario.simulation.rounds} rounds of one local epoch each. Memory is the "
        f"peak of one device of each tier; user traffic is per round and user (Table II counts activations and "
        f"gradients for the split schemes, adapters up and down for FL). Profile measured on {p.device}.")
    plan = spectrum_plan(scenario)
    report.paragraph("Spectrum (`radio.edge_spectrum: " + scenario.radio.edge_spectrum + "`): "
                     + "; ".join(f"{SCHEME_LABEL[s]}: {plan[s]}" for s in scenario.study.schemes) + ".")
    cols = ["label", "delay_s", "round_s", "user_traffic_gib_per_round", "user_memory_gib", "edge_memory_gib",
            "cloud_memory_gib", "server_memory_gib", "fits_devices", "infeasible_reason"]
    report.table(table[cols], "Delay, traffic and peak memory per tier:")
    energy_cols = ["label", "user_compute_j_per_round", "user_uplink_j_per_round", "user_downlink_j_per_round",
                   "user_idle_j_per_round", "user_total_j_per_round", "worst_user_j_per_round"]
    report.table(table[energy_cols], "Energy per user and round (J; compute at the user device class's power, "
                 "uploads at the maximum transmit power; energy.idle_power_w and receive_power_w for the rest):")
    report.figure("scheme_comparison.png", "training delay, user traffic per round and peak memory per tier, per scheme")
    report.write(out)
    lines = [f"{SCHEME_LABEL[r['scheme']]:>14}: delay {r['delay_s']:10.5g} s, user traffic "
             f"{r['user_traffic_gib_per_round']:.4g} GiB/round, memory user {r['user_memory_gib']:.3g} GiB, "
             f"energy {r.get('user_total_j_per_round', float('nan')):.4g} J per user and round" for r in rows]
    return lines + [f"-> {out}"]


def problems(scenario: Scenario) -> list[Problem]:
    model = scenario.model
    if "splitllm" in scenario.study.schemes and model is not None and (
            len(model.cut_layers) != 2 or scenario.cell.edge_servers < 1):
        return [Problem("model.cut_layers", "comparing with SplitLLM needs two model.cut_layers (SFL and SL use the "
                        "first) and cell.edge_servers >= 1", model.cut_layers, True)]
    return []


def check_cost_of(scenario: Scenario) -> None:
    check_availability_trace(scenario)
    check_epochs(scenario, list(scenario.study.schemes))


def ignores(scenario: Scenario) -> dict[str, str]:
    why = "scheme_comparison runs every scheme for simulation.rounds epochs"
    return {"theory": f"{why}; FedsLLM's convergence constants are not used",
            "optimizer": f"{why}; problem (17) is not solved"}


STUDY = Study(
    kind="scheme_comparison", title="SplitLLM, SFL, FL and SL on the same cell and model (SplitLLM Table II)",
    run=run_scheme_comparison, figure="scheme_comparison.png", headline_meaning=HEADLINE,
    reads=frozenset({"schemes"}), needs_model=True, simulates=lambda s: True,
    schemes_run=lambda s: list(s.study.schemes), problems=problems, ignores=ignores, check_cost=check_cost_of,
)

"""Studies `cut_layer` and `joint_cut`: what each cut layer costs, and the best cut with its allocation.

- SFL (FedsLLM): for every candidate cut the profile gives s, s_c and per-tier compute; the
  optimizer returns T for each strategy (proposed, EB, FE, BA). `joint_cut` picks the cut whose
  proposed allocation is fastest among those that fit the user's memory — the joint choice of cut,
  bandwidth and eta that the SplitLLM paper leaves for future work — and simulates it.
- SL: every cut simulated (users in turn, one local epoch per round).
- SplitLLM: every pair of cuts (user | edge | cloud) simulated.
A cut whose tier does not fit its device's memory stays in the table, marked infeasible.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from splitsim.netsim import simulate_sfl
from splitsim.optimizer import delay_inputs_from_profile, optimise
from splitsim.optimizer.energy.strategies import allocation_energy_j
from splitsim.scenarios import InputError, Problem, Scenario, rng_for
from splitsim.scenarios.checks import model_facts

from .. import plots
from ..guards import check_allocations
from ..metrics import delay_metric, headline_delays
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..progress import progress_iter
from ..report import Report
from ..schemes import GIB, fits, run_scheme, scheme_memory_bytes, tier_limits
from ..world import World, realise
from .base import Study

HEADLINE = "each strategy's (or the scheme's) training delay at its fastest cut that fits the devices' memory"
JOINT_HEADLINE = "; delay_joint_s: the optimizer's T at the joint optimum"


def candidate_cuts(world: World) -> list[int]:
    n = world.profile.num_blocks
    cuts = world.scenario.study.cuts if world.scenario.study.cuts is not None else list(range(1, n))
    bad = [c for c in cuts if not 0 <= c <= n]
    if bad or not cuts:
        raise InputError(f"candidate cuts must lie in [0, {n}] (the model has {n} blocks)", field="study.cuts",
                         value=cuts)
    return sorted(set(cuts))


def _memory_columns(memory: dict[str, float], limits) -> dict:
    ok, reason = fits(memory, limits)
    return {**{f"{tier}_memory_gib": need / GIB for tier, need in memory.items()}, "feasible": ok,
            "infeasible_reason": reason}


def _with_cuts(world: World, cuts: list[int]) -> World:
    from dataclasses import replace

    scenario = world.scenario.model_copy(
        update={"model": world.scenario.model.model_copy(update={"cut_layers": cuts})})
    return replace(world, scenario=scenario)


def _user_energy(outcome) -> dict:
    """The worst and the mean user's energy (J) over a simulated epoch-based run."""
    total = outcome.result.user_energy_j()["total_j"]
    return {"worst_user_j": float(total.max()), "mean_user_j": float(total.mean())}


def sfl_cut_table(world: World, cuts: list[int], progress: bool | None) -> pd.DataFrame:
    scenario, profile = world.scenario, world.profile
    limits = tier_limits(world.scenario)
    rows = []
    for cut in progress_iter(cuts, "cuts", progress):
        model = scenario.model.model_copy(update={"cut_layers": [cut]})
        inputs = delay_inputs_from_profile(scenario.theory, scenario.compute, scenario.workload, scenario.radio, model,
                                           profile, world.channel, rng_for(scenario.seed, "compute"))
        allocations = optimise(inputs, scenario.optimizer)
        memory = scheme_memory_bytes(profile, "sfl", [cut], scenario.cell.users, 0,
                                     scenario.simulation.server_concurrency, None)
        user = profile.tier(0, cut)
        b = profile.boundary(cut)
        row = {"cut": cut, **_memory_columns(memory, limits),
               "user_gflop_per_sample": user.flops / profile.batch_size / 1e9, "user_lora_params": user.lora_params,
               "bits_per_iteration": inputs.activation_bits, "adapter_bits": inputs.adapter_bits}
        # one local iteration is one mini-batch step (what the delay charges V of per round): its
        # activations and side tensors up, their gradient down; a round of the proposed allocation is V of them
        per_iteration = (b.forward_bytes + b.side_bytes + b.backward_bytes) / GIB
        row["user_traffic_gib_per_iteration"] = per_iteration
        if "proposed" in allocations:
            row["user_traffic_gib_per_round"] = allocations["proposed"].V * per_iteration
        for name, alloc in allocations.items():
            row[f"T_{name}_s"], row[f"eta_{name}"] = alloc.T_s, alloc.eta
            row[f"worst_user_{name}_j"] = float(allocation_energy_j(inputs, world.energy, alloc)["total_j"].max())
        rows.append(row)
    return pd.DataFrame(rows)


def sl_cut_table(world: World, cuts: list[int], progress: bool | None) -> pd.DataFrame:
    profile, limits = world.profile, tier_limits(world.scenario)
    rows = []
    for cut in progress_iter(cuts, "cuts", progress):
        outcome = run_scheme(_with_cuts(world, [cut]), "sl")
        user = profile.tier(0, cut)
        rows.append({"cut": cut, "T_SL_s": outcome.result.total_delay_s, **_user_energy(outcome),
                     **_memory_columns(outcome.memory_bytes, limits),
                     "user_gflop_per_sample": user.flops / profile.batch_size / 1e9,
                     "user_traffic_gib_per_round": outcome.traffic_bytes["table_ii"] / GIB})
    return pd.DataFrame(rows)


def splitllm_pair_table(world: World, cuts: list[int], progress: bool | None) -> pd.DataFrame:
    limits = tier_limits(world.scenario)
    pairs = [(a, b) for a in cuts for b in cuts if a < b]
    if not pairs:
        raise InputError("SplitLLM needs at least two candidate cuts", field="study.cuts", value=cuts)
    rows = []
    for c1, c2 in progress_iter(pairs, "cut pairs", progress):
        outcome = run_scheme(_with_cuts(world, [c1, c2]), "splitllm")
        rows.append({"cut_user": c1, "cut_edge": c2, "delay_s": outcome.result.total_delay_s, **_user_energy(outcome),
                     **_memory_columns(outcome.memory_bytes, limits),
                     "user_traffic_gib_per_round": outcome.traffic_bytes["table_ii"] / GIB})
    return pd.DataFrame(rows)


def _joint_choice(world: World, table: pd.DataFrame, out: Path) -> dict:
    """Best feasible cut for the proposed allocation; its allocation, simulated."""
    ok = table[table["feasible"]]
    if ok.empty:
        raise InputError("no candidate cut fits every tier's memory: " + table["infeasible_reason"].iloc[0],
                         field="study.cuts", value=[int(c) for c in table["cut"]])
    best = ok.loc[ok["T_proposed_s"].idxmin()]
    cut = int(best["cut"])
    scenario = world.scenario
    model = scenario.model.model_copy(update={"cut_layers": [cut]})
    inputs = delay_inputs_from_profile(scenario.theory, scenario.compute, scenario.workload, scenario.radio, model,
                                       world.profile, world.channel, rng_for(scenario.seed, "compute"))
    alloc = optimise(inputs, scenario.optimizer.model_copy(update={"strategies": ["proposed"]}))["proposed"]
    check_allocations({"proposed": alloc}, scenario)
    sim = simulate_sfl(inputs, alloc, scenario.simulation, scenario.radio, scenario.channel, world.channel,
                       world.simulation_rng(), cell=scenario.cell)
    choice = {"cut": cut, "T_s": alloc.T_s, "eta": alloc.eta, "I0": alloc.I0, "V": alloc.V,
              "T_simulated_s": sim.total_delay_s, "user_memory_gib": float(best["user_memory_gib"]),
              "server_memory_gib": float(best["server_memory_gib"]),
              "inputs": inputs.to_dict(), "allocation": alloc.to_dict()}
    write_json(out / "joint_choice.json", choice)
    return choice


def run_cut_study(scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    """`cut_layer` and `joint_cut` (analysis/studies/joint_cut.py declares the second)."""
    kind, scheme = scenario.study.kind, scenario.scheme
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    world = realise(scenario)
    cuts = candidate_cuts(world)
    limits = tier_limits(world.scenario)
    title = f"{scenario.name}: {world.profile.model}, {scenario.cell.users} users"
    report = Report("Joint choice of cut layer, bandwidth and eta" if kind == "joint_cut" else "Cut-layer what-if",
                    scenario.name, source)
    p = world.profile
    report.paragraph(f"Model {p.model}: {p.num_blocks} blocks, batch {p.batch_size}, LoRA r = {p.lora_rank}, {p.dtype}; "
                     f"profile measured on {p.device}. Scheme {scheme}, {scenario.cell.users} users. Every tier is checked "
                     "against the memory of its device: "
                     + ", ".join(f"{tier} {limits[tier][0] / GIB:.3g} GiB ({limits[tier][1]})"
                                 for tier in (("user", "edge", "cloud") if scheme == "splitllm" else ("user", "server")))
                     + "; a candidate where one does not fit is marked infeasible, with the reason.")
    lines = []
    metrics: dict = {}
    if scheme == "splitllm":
        table = splitllm_pair_table(world, cuts, progress)
        table.to_csv(out / "cut_layer.csv", index=False)
        plots.cut_layer_splitllm(table, out / "cut_layer.png", title,
                                 {t: limits[t][0] / GIB for t in ("user", "edge", "cloud")})
        ok = table[table["feasible"]]
        best = ok.loc[ok["delay_s"].idxmin()] if len(ok) else None
        if best is not None:
            metrics = {"best_cut_user": int(best["cut_user"]), "best_cut_edge": int(best["cut_edge"]),
                       delay_metric("splitllm"): float(best["delay_s"])}
            lines.append(f"fastest feasible pair: cuts ({int(best['cut_user'])}, {int(best['cut_edge'])}), "
                         f"delay {best['delay_s']:.5g} s")
        report.table(table, "Simulated delay and peak memory per pair of cuts:")
        report.figure("cut_layer.png", "SplitLLM delay over the two cuts (red x: over a memory limit), and memory")
    else:
        table = sfl_cut_table(world, cuts, progress) if scheme == "sfl" else sl_cut_table(world, cuts, progress)
        table.to_csv(out / "cut_layer.csv", index=False)
        plots.cut_layer_sfl(table, out / "cut_layer.png", {t: limits[t][0] / GIB for t in ("user", "server")}, title)
        report.table(table, "Per cut: training delay per strategy, memory, compute and traffic of the user:")
        report.figure("cut_layer.png", "delay per strategy, user memory against the device limit, user compute "
                                       "and traffic, against the cut layer")
        delay_col = "T_proposed_s" if scheme == "sfl" else "T_SL_s"
        ok = table[table["feasible"]]
        if len(ok):
            best = ok.loc[ok[delay_col].idxmin()]
            metrics = {"best_cut": int(best["cut"])}
            for col in (c for c in table.columns if c.startswith("T_") and c.endswith("_s")):
                who = col[2:-2] if scheme == "sfl" else scheme  # T_SL_s is SL's
                metrics[delay_metric(who)] = float(ok[col].min())  # each strategy at its best cut
            lines.append(f"fastest feasible cut: {int(best['cut'])} ({delay_col} = {best[delay_col]:.5g} s)")
        if kind == "joint_cut":
            choice = _joint_choice(world, table, out)
            plots.joint_cut(table, choice, out / "joint_cut.png", title)
            report.paragraph(f"Joint optimum: cut {choice['cut']}, eta = {choice['eta']:.4f}, T = {choice['T_s']:.6g} s "
                             f"(simulated {choice['T_simulated_s']:.6g} s); allocation in `joint_choice.json`.")
            report.figure("joint_cut.png", "optimal delay and eta per cut (the joint optimum circled) and each user's "
                                          "bandwidth at the optimum")
            metrics.update({"joint_cut": choice["cut"], "joint_eta": choice["eta"], delay_metric("joint"): choice["T_s"]})
            lines.append(f"joint optimum: cut {choice['cut']}, eta {choice['eta']:.4f}, T = {choice['T_s']:.6g} s")
    infeasible = int((~table["feasible"]).sum())
    if infeasible:
        lines.append(f"{infeasible} of {len(table)} candidates exceed a device memory limit (marked infeasible; "
                     f"e.g. {table.loc[~table['feasible'], 'infeasible_reason'].iloc[0]})")
    write_json(out / "summary.json", {"scenario": scenario.name, "study": kind, "metrics": metrics,
                                      "headline": headline_delays(metrics),
                                      "headline_meaning": HEADLINE + (JOINT_HEADLINE if kind == "joint_cut" else ""),
                                      "rows": table.to_dict(orient="records")})
    report.write(out)
    return lines + [f"-> {out}"]


def cut_problems(scenario: Scenario) -> list[Problem]:
    """Candidate cuts within the model's blocks (known without torch), and enough of them."""
    cuts, m, scheme = scenario.study.cuts, scenario.model, scenario.scheme
    if cuts is None or m is None:
        return []
    problems = []
    facts = model_facts(m.source) if m.profile_path is None else None
    if facts is not None and any(c > facts.blocks for c in cuts):
        problems.append(Problem("study.cuts", f"candidate cuts must lie in [0, {facts.blocks}] ({m.source} has "
                                f"{facts.blocks} blocks)", cuts, True))
    need = 2 if scheme == "splitllm" else 1
    if len(set(cuts)) < need:
        problems.append(Problem("study.cuts", f"a {scheme} cut study needs at least {need} candidate cuts", cuts, True))
    return problems


STUDY = Study(
    kind="cut_layer", title="what each cut layer costs: delay per strategy, memory per tier, traffic",
    run=run_cut_study, figure="cut_layer.png", headline_meaning=HEADLINE,
    reads=frozenset({"cuts", "user_memory_limit_gib"}), needs_model=True, schemes=("sfl", "sl", "splitllm"),
    scheme_hint="FL has no cut layer; choose scheme sfl, sl or splitllm",
    simulates=lambda s: s.scheme != "sfl",  # SFL's cut study only optimises; SL and SplitLLM are simulated
    solves_problem_17=lambda s: s.scheme == "sfl", problems=cut_problems,
)

__all__ = ["STUDY", "candidate_cuts", "cut_problems", "run_cut_study", "sfl_cut_table", "sl_cut_table",
           "splitllm_pair_table"]

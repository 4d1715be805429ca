"""Study `async_vs_sync`: does buffered asynchronous aggregation (FedBuff) reach a target accuracy
sooner than synchronous FedAvg on this cell, and at what cost in stale updates?

FL is trained for real three (or more) ways on the same data, model and cell: synchronously (every
round waits for its slowest user), and with FedBuff at each of `study.buffer_sizes` (the server steps
whenever that many updates are in; `training.concurrency` users train at once, null: all). Each
FedBuff run's updates are applied in the order, and from the versions, that the simulator's FedBuff
run on the scenario's cell produced (analysis.train_run.fedbuff_schedule), so the training is driven
by the network's timing. Every variant trains `training.rounds` rounds' worth of updates (rounds x
users), evaluating the global model after every round (sync) or server step (FedBuff); the time to
`study.target_accuracy` is the simulated time of the first evaluation at or above it.

Each variant checkpoints every round or server step in the cache (SPLITSIM_CACHE_DIR, default
~/.cache/splitsim/async_vs_sync), keyed by everything its training depends on (FedBuff's: the whole
simulated schedule): an interrupted study resumes, and a rerun reuses every variant whose inputs are
identical. One seed per variant (the scenario's): the report says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from splitsim.scenarios import Problem, Scenario

from .. import plots
from ..metrics import delay_metric
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..progress import ProgressLog
from ..report import Report
from .base import Study

HEADLINE = ("each variant's simulated time to study.target_accuracy (s): the simulated time of the first evaluation "
            "of the really trained global model at or above the target")


def variants(scenario: Scenario) -> list[tuple[str, Scenario]]:
    """(name, the scenario that variant trains): 'sync', then 'fedbuff_<b>' for each buffer size."""
    t = scenario.training
    base = t.model_copy(update={"schemes": ["fl"], "partitions": t.partitions[:1]})
    out = [("sync", scenario.model_copy(update={"training": base.model_copy(update={"aggregation": "sync",
                                                                                    "buffer_size": None})}))]
    for size in scenario.study.buffer_sizes:
        training = base.model_copy(update={"aggregation": "fedbuff", "buffer_size": int(size)})
        out.append((f"fedbuff_{size}", scenario.model_copy(update={"training": training})))
    return out


def time_to_target(rows: pd.DataFrame, target: float) -> tuple[float, int | None]:
    """(simulated s, evaluations) when the accuracy first reached `target`; (inf, None) if never."""
    hit = rows.index[rows["eval_accuracy"] >= target]
    if not len(hit):
        return float("inf"), None
    first = rows.loc[hit[0]]
    return float(first["simulated_time_s"]), int(first["round"]) + 1


def smoothed_time_to_target(rows: pd.DataFrame, target: float, window_updates: int) -> tuple[float, int | None]:
    """(simulated s, client updates) when the accuracy, averaged over the evaluations of the last
    `window_updates` client updates (a round's worth: one evaluation of synchronous FedAvg, K / buffer
    of FedBuff's), first reached `target` — the same noise allowance for every variant, where a single
    evaluation on a small dev set moves in steps; (inf, None) if never."""
    updates = rows["updates"].to_numpy()
    accuracy = rows["eval_accuracy"].to_numpy()
    for i in range(len(rows)):
        window = (updates > updates[i] - window_updates) & (updates <= updates[i])
        if accuracy[window].mean() >= target:
            return float(rows["simulated_time_s"].iloc[i]), int(updates[i])
    return float("inf"), None


def run(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    from splitsim.learning.data import partition as split_users

    from ..train_run import (SyncSchedule, _base_config, _check, _join_simulated_time, _load_task, fedbuff_schedule,
                             sync_schedule, train_one)
    from ..world import realise

    from ..train_run import _fingerprint
    from .convergence import cache_dir

    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    folder = cache_dir().parent / "async_vs_sync"
    folder.mkdir(parents=True, exist_ok=True)
    runs = variants(scenario)
    for _, one in runs:
        _check(one)
    world = realise(scenario)
    vocab = getattr(_base_config(scenario), "vocab_size", None)
    train_data = _load_task(scenario, "train", vocab, world.profile.architecture)
    eval_data = _load_task(scenario, "eval", vocab, world.profile.architecture)
    t, users = scenario.training, scenario.cell.users
    how = t.partitions[0]
    parts = split_users(train_data.labels.numpy(), users, how, t.dirichlet_alpha, scenario.seed)
    schedules = {name: fedbuff_schedule(replace_scenario(world, one), parts) if one.training.aggregation == "fedbuff"
                 else sync_schedule(replace_scenario(world, one), parts, "fl")
                 for name, one in runs if one.training.aggregation == "fedbuff" or one.simulation.users_come_and_go}
    # progress in client trainings (each a user's local steps), the bulk of the work in every variant
    log = ProgressLog(len(runs) * t.rounds * users, "async_vs_sync", "client trainings")
    curves, staleness, summary_rows = [], [], []
    target = scenario.study.target_accuracy
    for name, one in runs:
        schedule = schedules.get(name)
        buffered = schedule is not None and not isinstance(schedule, SyncSchedule)
        checkpoint = folder / f"{_fingerprint(one, 'fl', how, schedule)}.pt"
        per_row = schedule.buffer_size if buffered else users
        rows, _ = train_one(one, "fl", how, parts, world.association, train_data, eval_data, checkpoint,
                            lambda trained, n=per_row: log.step(n) if trained is not None else log.skip(n),
                            schedule=schedule)
        table = pd.DataFrame(rows)
        if schedule is None:
            table = _join_simulated_time(replace_scenario(world, one), table, {how: parts})
        table.insert(0, "variant", name)
        if isinstance(schedule, SyncSchedule):  # the updates that arrived (drop-outs deliver none)
            table["updates"] = np.cumsum(table["users_aggregated"].to_numpy())
        else:
            table["updates"] = (table["round"] + 1) * per_row
        curves.append(table)
        seconds, evaluations = time_to_target(table, target)
        smoothed_s, smoothed_updates = smoothed_time_to_target(table, target, users)
        taus = schedule.updates["staleness"].to_numpy() if buffered else np.zeros(int(table["updates"].iloc[-1]))
        if buffered:
            counts = np.bincount(taus.astype(int))
            staleness += [{"variant": name, "staleness": s, "updates": int(c)} for s, c in enumerate(counts)]
        summary_rows.append({
            "variant": name, "buffer_size": per_row,
            "concurrency": (t.concurrency or users) if buffered else users,
            "updates": int(table["updates"].iloc[-1]),
            "time_to_target_s": seconds, "evaluations_to_target": evaluations,
            "updates_to_target": None if evaluations is None else int(table["updates"].iloc[evaluations - 1]),
            "time_to_target_smoothed_s": smoothed_s, "updates_to_target_smoothed": smoothed_updates,
            "best_accuracy": float(table["eval_accuracy"].max()), "final_accuracy": float(table["eval_accuracy"].iloc[-1]),
            "simulated_s": float(table["simulated_time_s"].iloc[-1]),
            "staleness_mean": float(taus.mean()), "staleness_max": int(taus.max()),
            "share_fresh": float(np.mean(taus == 0)), "train_wall_s": float(table["wall_s"].sum())})
    curves_frame = pd.concat(curves, ignore_index=True)
    curves_frame.to_csv(out / "curves.csv", index=False)
    results = pd.DataFrame(summary_rows)
    results.to_csv(out / "async_vs_sync.csv", index=False)
    staleness_frame = pd.DataFrame(staleness)
    staleness_frame.to_csv(out / "staleness.csv", index=False)
    plots.async_vs_sync(curves_frame, staleness_frame, target, out / "async_vs_sync.png",
                        f"{scenario.name}: FL, {scenario.model.source}, {users} users — sync vs FedBuff")
    metrics = {delay_metric(r.variant): r.time_to_target_s for r in results.itertuples()}
    write_json(out / "summary.json", {
        "scenario": scenario.name, "study": "async_vs_sync", "metrics": metrics, "headline": list(metrics),
        "headline_meaning": HEADLINE, "target_accuracy": target, "seed": scenario.seed,
        "variants": results.to_dict(orient="records"), "staleness": staleness_frame.to_dict(orient="records")})
    _report(scenario, source, out, results, target)
    lines = [f"{r.variant:>12}: " + (f"{r.time_to_target_s:.4g} s to {target:g}" if np.isfinite(r.time_to_target_s)
                                     else f"never reached {target:g} in {r.simulated_s:.4g} s")
             + (f", {r.time_to_target_smoothed_s:.4g} s smoothed over a round's worth of updates"
                if np.isfinite(r.time_to_target_smoothed_s) else ", never on the curve smoothed over a round's worth")
             + f" (best {r.best_accuracy:.4f}; staleness mean {r.staleness_mean:.2f}, {100 * r.share_fresh:.0f} % fresh)"
             for r in results.itertuples()]
    return lines + [f"-> {out}"]


def replace_scenario(world, scenario: Scenario):
    from dataclasses import replace

    return replace(world, scenario=scenario)


def _report(scenario: Scenario, source: str, out: Path, results: pd.DataFrame, target: float) -> None:
    t, m = scenario.training, scenario.model
    report = Report("Asynchronous (FedBuff) against synchronous FL: time to accuracy", scenario.name, source)
    report.paragraph(
        f"{t.dataset} with {m.source} (LoRA r = {m.lora.rank}, batch {m.batch_size}, {m.optimizer} lr {t.lr:g}), "
        f"{scenario.cell.users} users, " + (f"{t.local_steps} local steps" if t.local_steps else
                                            f"{t.local_epochs or 1} local epoch(s)")
        + f" per training, {t.rounds} rounds' worth of updates per variant, partition {t.partitions[0]}; FedBuff "
        f"with {t.concurrency or scenario.cell.users} users training at once, staleness weight 1/(1 + tau)^"
        f"{t.staleness_exponent:g}, server lr {t.server_lr:g}. Target: {target:g} {t.eval_split} accuracy. One seed "
        f"({scenario.seed}) per variant: the times carry that seed's luck.")
    report.table(results, "Per variant: the simulated time to the target, the evaluations and client updates it took "
                          "(and, smoothed, when the mean accuracy of the evaluations over the last round's worth of "
                          "updates first reached it: one evaluation of synchronous FedAvg, users / buffer of "
                          "FedBuff's), the accuracy, and the staleness of the updates (server versions between a "
                          "user's download and its upload):")
    report.figure("async_vs_sync.png", "evaluation accuracy against simulated time per variant; staleness of the "
                                       "FedBuff updates")
    report.write(out)


def problems(scenario: Scenario) -> list[Problem]:
    from splitsim.scenarios.checks import training_problems

    out = []
    users, study, t = scenario.cell.users, scenario.study, scenario.training
    for size in study.buffer_sizes:
        if size > (t.concurrency or users):
            out.append(Problem("study.buffer_sizes", f"a buffer of {size} exceeds the {t.concurrency or users} users "
                               "training at once (training.concurrency): it would never fill", study.buffer_sizes,
                               True))
    if scenario.model is not None:
        out += training_problems(scenario, ["fl"])
    others = [f for f in scenario.simulation.come_and_go_fields if f != "simulation.dropout_probability"]
    if others:  # FedBuff is simulated with drop-outs only (scenarios.checks.fedbuff_problems)
        out.append(Problem(others[0], "async_vs_sync compares the two on a cell where trainings may drop out "
                           "(simulation.dropout_probability); sampling, deadlines and availability are not modelled "
                           "with FedBuff", getattr(scenario.simulation, others[0].split(".")[1]), True))
    if len(t.partitions) > 1:
        out.append(Problem("training.partitions", "async_vs_sync trains one partition: name one", t.partitions, True))
    return out


STEPS_LIMIT = 5_000_000
"""Refuse a study whose training would take more mini-batch steps than this (all variants)."""


def check_cost(scenario: Scenario) -> None:
    from splitsim.scenarios import InputError

    t = scenario.training
    if t.local_steps is None:
        return  # epochs: the data decide; the training's own guards apply
    steps = (1 + len(scenario.study.buffer_sizes)) * t.rounds * scenario.cell.users * t.local_steps
    if steps > STEPS_LIMIT:
        raise InputError(f"the variants would train {steps:,} mini-batch steps (variants x rounds x users x V), more "
                         f"than {STEPS_LIMIT:,}: lower it", field="training.rounds", value=t.rounds)


def ignores(scenario: Scenario) -> dict[str, str]:
    why = "study 'async_vs_sync' sets it for each variant"
    return {"training.aggregation": why, "training.buffer_size": why + " (study.buffer_sizes)",
            "training.schemes": "study 'async_vs_sync' trains FL",
            "simulation.rounds": "study 'async_vs_sync' simulates training.rounds rounds' worth of updates"}


STUDY = Study(
    kind="async_vs_sync", title="FL trained synchronously and with FedBuff at several buffer sizes: time to accuracy",
    run=run, reads=frozenset({"buffer_sizes", "target_accuracy"}), figure="async_vs_sync.png",
    headline_meaning=HEADLINE, needs_model=True, schemes=("fl",),
    simulates=lambda s: True,  # each variant's order of events and times are simulated on the scenario's cell
    scheme_hint="async_vs_sync compares FL's aggregations: set scheme: fl", problems=problems, ignores=ignores,
    check_cost=check_cost, trains=True,
)

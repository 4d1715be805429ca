"""`splitsim train`: real fine-tuning of every scheme on every partition, and time to accuracy.

For each (partition, scheme) the model is trained round by round with a checkpoint after every
round (`checkpoints/<scheme>-<partition>.pt`): an interrupted run resumes where it stopped and ends
as an uninterrupted one would. The simulator then gives each scheme's wall-clock per round on the
scenario's cell, for the same per-user data sizes, and joins it to the measured accuracy.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from splitsim.scenarios import Scenario

from . import plots
from .outputs import prepare_out_dir, write_json, write_resolved_scenario
from .progress import progress_bar
from .report import Report
from .schemes import SCHEME_LABEL, run_scheme
from .world import realise

GIB = 2**30


def _load_task(scenario: Scenario, split: str, vocab_size: int | None, arch: str):
    from splitsim.learning.data import load_cifar100, load_mrpc, make_tokenizer, synthetic_task

    t, m = scenario.training, scenario.model
    if t.dataset == "mrpc":
        tokenizer = make_tokenizer(t.tokenizer, m.source, vocab_size)
        data = load_mrpc(t.data_path or "glue/mrpc", {"train": "train", "eval": t.eval_split}[split], tokenizer,
                         m.sequence_length or 128)
    elif t.dataset == "cifar100":
        data = load_cifar100(t.data_path or "cifar100", {"train": "train", "eval": "test"}[split])
    else:
        kind = "image" if arch == "vit" else "text"
        samples = t.synthetic_samples if split == "train" else max(64, t.synthetic_samples // 4)
        data = synthetic_task(kind, samples, m.num_labels, scenario.seed + (0 if split == "train" else 1),
                              vocab_size or 1000, m.sequence_length or 16)
    limit = t.max_train_samples if split == "train" else t.max_eval_samples
    if limit is not None and limit < len(data):
        data = data.subset(np.arange(limit))
    return data


def _settings(scenario: Scenario, scheme: str):
    from splitsim.learning.train import TrainSettings

    t, m = scenario.training, scenario.model
    return TrainSettings(scheme=scheme, cuts=tuple(m.cut_layers if scheme == "splitllm" else m.cut_layers[:1]),
                         batch_size=m.batch_size, optimizer=m.optimizer, lr_user=t.lr_user or t.lr,
                         lr_edge=t.lr_edge or t.lr, lr_cloud=t.lr_cloud or t.lr, momentum=t.momentum,
                         weight_decay=t.weight_decay, lr_decay=t.lr_decay, local_epochs=t.local_epochs or 1,
                         local_steps=t.local_steps,
                         drop_last=t.drop_last, seed=scenario.seed, image_size=m.image_size)


def _fingerprint(scenario: Scenario, scheme: str, partition: str, schedule: FedBuffSchedule | None = None) -> str:
    """Everything a run's rounds depend on; a checkpoint is reused only when this matches.

    `training.rounds` is left out: more rounds continue a finished run (FedBuff: the simulator's
    schedule is in instead: more rounds make another schedule, a new run)."""
    training = scenario.training.model_dump(mode="json")
    training.pop("rounds")
    keep = {"model": scenario.model.model_dump(mode="json"), "training": training,
            "users": scenario.cell.users, "edges": scenario.cell.edge_servers, "seed": scenario.seed,
            "cell": scenario.cell.model_dump(mode="json"), "scheme": scheme, "partition": partition}
    if schedule is not None:
        keep["schedule"] = schedule.digest()
    return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class FedBuffSchedule:
    """What the simulator's FedBuff run on the scenario's cell delivered, for the training to follow:
    every update (user, started_on, arrived_at, staleness, time_s) in order of arrival, and the time
    of each server step (s)."""

    updates: pd.DataFrame
    step_end_s: np.ndarray
    users: int
    buffer_size: int

    @property
    def steps(self) -> int:
        return len(self.step_end_s)

    def buffer(self, step: int) -> list[tuple[int, int]]:
        """(user, started_on) of the updates server step `step` aggregates, in order of arrival."""
        mine = self.updates[self.updates["arrived_at"] == step]
        return [(int(u), int(v)) for u, v in zip(mine["user"], mine["started_on"])]

    def needed_after(self, step: int) -> set[int]:
        """The versions that updates aggregated after `step` started on."""
        later = self.updates[self.updates["arrived_at"] > step]
        return {int(v) for v in later["started_on"]}

    def digest(self) -> str:
        """The whole schedule (who trains from which version into which step): what the training
        takes from the network, so a checkpoint is reused only on the same schedule."""
        cols = self.updates[["user", "started_on", "arrived_at"]].to_numpy(dtype=np.int64)
        return hashlib.sha256(cols.tobytes()).hexdigest()[:16]


@dataclass(frozen=True)
class SyncSchedule:
    """Synchronous rounds on a cell where users come and go (sampling, drop-outs, a deadline, users
    offline: netsim.participation): per round, the users whose adapter reached the fed server — the
    ones FedAvg averages — and the round's simulated end (s)."""

    delivered: tuple[tuple[int, ...], ...]
    step_end_s: np.ndarray

    @property
    def steps(self) -> int:
        return len(self.delivered)

    def digest(self) -> str:
        """Who is aggregated in each round: what the training takes from the network."""
        return hashlib.sha256(json.dumps(self.delivered).encode()).hexdigest()[:16]


def sync_schedule(world, parts, scheme: str) -> SyncSchedule:
    """Simulate synchronous `scheme` (FL or SFL) on the scenario's cell for training.rounds rounds, the
    users' local steps those of their data, and return who delivered an update in each round."""
    result = run_scheme(_with_sizes(world, parts), scheme).result
    rounds = world.scenario.training.rounds
    delivered = tuple(tuple(int(k) for k in users) for users in result.round_delivered[:rounds])
    return SyncSchedule(delivered, np.asarray(result.round_end_s[:rounds], dtype=float))


def fedbuff_schedule(world, parts, scheme: str = "fl") -> FedBuffSchedule:
    """Simulate `scheme` (FL or SFL) with FedBuff on the scenario's cell for training.rounds rounds'
    worth of updates, the users' local steps those of their data (`partitions`), and return its schedule."""
    scenario = world.scenario
    result = run_scheme(_with_sizes(world, parts), scheme).result
    steps = int(result.rounds)
    updates = result.updates[result.updates["arrived_at"] < steps].reset_index(drop=True)
    t = scenario.training
    concurrency = t.concurrency or scenario.cell.users
    return FedBuffSchedule(updates, np.asarray(result.round_end_s[:steps], dtype=float), scenario.cell.users,
                           t.buffer_size or concurrency)


def _with_sizes(world, parts):
    """`world` for simulating `training.rounds` rounds with these per-user data (with training.local_steps,
    V mini-batches per user and round: V batches' worth), no events recorded."""
    scenario = world.scenario
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    steps, batch = scenario.training.local_steps, scenario.model.batch_size
    if steps is not None:  # a round is V steps of every user with a batch of data: V batches' worth
        sizes = np.where(sizes >= batch, steps * batch, 0)
    sim_scenario = scenario.model_copy(update={"simulation": scenario.simulation.model_copy(
        update={"rounds": scenario.training.rounds, "record_events": False})})
    return replace(world, scenario=sim_scenario, inputs=replace(world.inputs, samples=sizes))


def _check(scenario: Scenario) -> None:
    """What `splitsim validate` checks of a training scenario (scenarios.checks.training_problems)."""
    from splitsim.scenarios import ScenarioError
    from splitsim.scenarios.checks import training_problems

    problems = training_problems(scenario)
    if problems:
        raise ScenarioError(problems)


def train_one(scenario: Scenario, scheme: str, partition: str, parts, association, train_data, eval_data,
              checkpoint: Path, on_round, until=None, schedule: FedBuffSchedule | SyncSchedule | None = None
              ) -> tuple[list[dict], dict]:
    """Train one scheme on one partition, resuming from `checkpoint`, for `training.rounds` rounds or
    until `until(rows)` holds after a round; return (round rows, memory bytes). `on_round(log)` is
    called after each round trained, and with None for each round resumed from the checkpoint. With a FedBuff
    `schedule` (FL or SFL), one row per server step, the updates applied as the simulator delivered them;
    with a SyncSchedule (users who come and go), each round averages the users the simulator delivered."""
    import torch

    from splitsim.learning import apply_lora, build_model, specs_from_config
    from splitsim.learning.profile import resolve_device
    from splitsim.learning.train import FederatedTrainer

    spec, lora = specs_from_config(scenario.model)
    model, arch = build_model(spec)
    model = apply_lora(model, arch, lora)
    trainer = FederatedTrainer(model, arch, spec.task, _settings(scenario, scheme), train_data, eval_data, parts,
                               association, resolve_device(scenario.training.device))
    rows: list[dict] = []
    fingerprint = _fingerprint(scenario, scheme, partition, schedule)
    t = scenario.training
    total = t.rounds if schedule is None else schedule.steps
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        if state.get("fingerprint") == fingerprint:
            trainer.load_state_dict(state["trainer"])
            rows = [row for row in state["rows"] if row["round"] < total]
            trainer.round_done = min(trainer.round_done, total - 1)
            for _ in rows:
                on_round(None)
    for r in range(trainer.round_done + 1, total):
        if until is not None and rows and until(rows):
            break
        start = time.perf_counter()
        extra = {}
        if schedule is None:
            log = trainer.run_round(r)
        elif isinstance(schedule, SyncSchedule):
            log = trainer.run_round(r, np.array(schedule.delivered[r], dtype=np.int64))
            extra = {"simulated_time_s": float(schedule.step_end_s[r]), "users_aggregated": len(schedule.delivered[r])}
        else:
            buffer = schedule.buffer(r)
            log = trainer.fedbuff_step(r, buffer, schedule.needed_after(r), schedule.buffer_size / schedule.users,
                                       t.staleness_exponent, t.server_lr)
            extra = {"simulated_time_s": float(schedule.step_end_s[r]),
                     "staleness_mean": float(np.mean([r - v for _, v in buffer])) if buffer else float("nan")}
        rows.append({"scheme": scheme, "partition": partition, "round": r, "train_loss": log.train_loss,
                     "eval_loss": log.eval_loss, "eval_accuracy": log.eval_accuracy, "eval_f1": log.eval_f1,
                     "samples": log.samples, "wall_s": time.perf_counter() - start, **log.bytes, **extra})
        tmp = checkpoint.with_name(f".{checkpoint.name}.{os.getpid()}.tmp")
        torch.save({"fingerprint": fingerprint, "trainer": trainer.state_dict(), "rows": rows}, tmp)
        tmp.replace(checkpoint)
        on_round(log)
    return rows, dict(trainer.memory_bytes)


def run_training(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    from splitsim.learning.data import partition as split_users
    from splitsim.learning.data import partition_summary

    _check(scenario)
    t = scenario.training
    world = realise(scenario)  # the cell, the edges and the model profile (for the simulator)
    vocab = getattr(_base_config(scenario), "vocab_size", None)
    train_data = _load_task(scenario, "train", vocab, world.profile.architecture)
    eval_data = _load_task(scenario, "eval", vocab, world.profile.architecture)
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    (out / "checkpoints").mkdir(exist_ok=True)
    users = scenario.cell.users
    all_rows, memory, partitions, notes = [], {}, {}, []
    fedbuff = t.aggregation == "fedbuff"
    all_parts = {how: split_users(train_data.labels.numpy(), users, how, t.dirichlet_alpha, scenario.seed)
                 for how in t.partitions}
    # FedBuff trains the one scheme of training.schemes (FL or SFL: scenarios.checks.training_problems);
    # synchronous FL and SFL where users come and go average the users the simulator delivered each round
    schedules: dict = {}
    if fedbuff:
        schedules = {(how, t.schemes[0]): fedbuff_schedule(world, all_parts[how], t.schemes[0]) for how in t.partitions}
    elif scenario.simulation.users_come_and_go:
        schedules = {(how, scheme): sync_schedule(world, all_parts[how], scheme)
                     for how in t.partitions for scheme in t.schemes}
    total = sum((schedules[how, scheme].steps if (how, scheme) in schedules else t.rounds)
                for how in t.partitions for scheme in t.schemes)
    with progress_bar(total, "train", progress) as bar:
        def on_round(log):
            if log is None:  # resumed from the checkpoint: done, at no cost
                getattr(bar, "skip", bar.update)(1)
                return
            bar.update(1)
            bar.set_postfix(acc=f"{log.eval_accuracy:.3f}")

        for how in t.partitions:
            parts = all_parts[how]
            partitions[how] = parts
            summary = partition_summary(parts, train_data.labels.numpy(), train_data.num_labels)
            summary.to_csv(out / f"partition_{how}.csv", index=False)
            empty = summary.loc[summary["samples"] < scenario.model.batch_size, "user"].tolist()
            if empty:
                notes.append(f"{how}: users {empty} have fewer samples than one batch and sit out every round")
            for scheme in t.schemes:
                rows, mem = train_one(scenario, scheme, how, parts, world.association, train_data, eval_data,
                                      out / "checkpoints" / f"{scheme}-{how}.pt", on_round,
                                      schedule=schedules.get((how, scheme)))
                if fedbuff:
                    schedules[how, scheme].updates.to_csv(out / f"updates_{how}.csv", index=False)
                all_rows += rows
                memory[(scheme, how)] = mem
    table = pd.DataFrame(all_rows)
    table = _join_simulated_time(world, table, partitions)
    table.to_csv(out / "rounds.csv", index=False)
    best = _table_ii(table, memory, t.partitions)
    best.to_csv(out / "table_ii.csv", index=False)
    plots.time_to_accuracy(table, out / "time_to_accuracy.png", f"{scenario.name}: {scenario.model.source}, "
                                                               f"{users} users")
    metrics = {f"best_accuracy_{r.scheme}_{p}": getattr(r, f"best_accuracy_{p}")
               for r in best.itertuples() for p in t.partitions}
    write_json(out / "summary.json", {"scenario": scenario.name, "study": "train", "metrics": metrics,
                                      "device": world.profile.device if world.profile else "",
                                      "notes": notes, "table_ii": best.to_dict(orient="records")})
    _report(scenario, source, out, table, best, notes)
    lines = [f"{r.label:>14}: best accuracy " + " / ".join(f"{getattr(r, f'best_accuracy_{p}'):.4f} ({p})"
                                                           for p in t.partitions)
             + f", user traffic {r.user_comm_gib:.4g} GiB/round" for r in best.itertuples()]
    return lines + notes + [f"-> {out}"]


def _base_config(scenario: Scenario):
    from splitsim.learning import specs_from_config
    from splitsim.learning.models import build_config

    spec, _ = specs_from_config(scenario.model)
    return build_config(spec)


def _join_simulated_time(world, table: pd.DataFrame, partitions: dict) -> pd.DataFrame:
    """Add the simulated wall-clock of each round (same cell, same per-user data sizes; with
    training.local_steps, V mini-batches per user and round)."""
    pieces = []
    for (scheme, how), rows in table.groupby(["scheme", "partition"], sort=False):
        rows = rows.copy()
        if "simulated_time_s" not in rows or rows["simulated_time_s"].isna().any():  # FedBuff's rows have theirs
            ends = run_scheme(_with_sizes(world, partitions[how]), scheme).result.round_end_s
            rows["simulated_time_s"] = [float(ends[r]) if r < len(ends) else float("nan") for r in rows["round"]]
        rows["simulated_round_s"] = np.diff(np.concatenate([[0.0], rows["simulated_time_s"].to_numpy()]))
        pieces.append(rows)
    return pd.concat(pieces, ignore_index=True)


def _table_ii(table: pd.DataFrame, memory: dict, partitions: list[str]) -> pd.DataFrame:
    """Best accuracy per partition, user-side traffic per round, measured peak memory per tier."""
    rows = []
    for scheme in table["scheme"].unique():
        mine = table[table["scheme"] == scheme]
        row = {"scheme": scheme, "label": SCHEME_LABEL[scheme]}
        for how in partitions:
            part = mine[mine["partition"] == how]
            row[f"best_accuracy_{how}"] = float(part["eval_accuracy"].max()) if len(part) else float("nan")
            row[f"best_f1_{how}"] = float(part["eval_f1"].max()) if len(part) else float("nan")
        row["user_comm_gib"] = float(mine["user_split_bytes_per_user"].mean()) / GIB
        mem = memory[(scheme, partitions[0])]
        for tier in ("user", "edge", "cloud", "server"):
            row[f"{tier}_memory_gib"] = mem[tier] / GIB if tier in mem else float("nan")
        row["rounds"] = int(mine["round"].max()) + 1
        row["train_wall_s"] = float(mine["wall_s"].sum())
        rows.append(row)
    return pd.DataFrame(rows)


def _report(scenario: Scenario, source: str, out: Path, table: pd.DataFrame, best: pd.DataFrame,
            notes: list[str]) -> None:
    t, m = scenario.training, scenario.model
    report = Report("Federated and split LoRA fine-tuning", scenario.name, source)
    report.paragraph(f"{t.dataset} with {m.source} (LoRA r = {m.lora.rank}, batch {m.batch_size}"
                     + (f", {m.sequence_length} tokens" if t.dataset == "mrpc" else "")
                     + f", {m.optimizer} lr {t.lr:g}, decay {t.lr_decay} a round), {scenario.cell.users} users"
                     + (f" under {scenario.cell.edge_servers} edges" if scenario.cell.edge_servers else "")
                     + f", {t.rounds} rounds of " + (f"{t.local_steps} local step(s)" if t.local_steps else
                                           f"{t.local_epochs or 1} local epoch(s)") + "; partitions "
                     + ", ".join(p if p == "iid" else f"Dirichlet(alpha = {t.dirichlet_alpha:g})" for p in t.partitions)
                     + f"; evaluated on {t.eval_split}. Training wall time {table['wall_s'].sum():.0f} s.")
    report.table(best, "Shaped like SplitLLM Table II (user traffic per round and user; memory measured per tier "
                       "model from one probed step):")
    for note in notes:
        report.paragraph(note)
    report.figure("time_to_accuracy.png", "evaluation accuracy against the simulated wall-clock, one curve per scheme")
    report.write(out)

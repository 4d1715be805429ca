"""Whole runs behind the CLI commands: simulate a scenario and write its output folder."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from splitsim.scenarios import InputError, Scenario

from .allocations import allocation_energy_summary, world_allocations
from .guards import check_optimizer
from .metrics import delay_metric
from .outputs import prepare_out_dir, write_json, write_resolved_scenario
from .simulation import simulations
from .world import realise


def run_optimize(scenario: Scenario, out_dir: str | Path, source: str = "") -> list[str]:
    """`splitsim optimize`: every strategy's allocation, written to allocation.json."""
    check_optimizer(scenario)
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    world = realise(scenario)
    allocations = world_allocations(world)
    energies = {name: allocation_energy_summary(world, alloc) for name, alloc in allocations.items()}
    write_json(out / "allocation.json", {
        "scenario": scenario.name, "inputs": world.inputs.to_dict(), "energy_inputs": world.energy.to_dict(),
        "strategies": {name: {**alloc.to_dict(), "energy": energies[name]} for name, alloc in allocations.items()}})
    base = allocations.get("BA")
    lines = []
    for name, alloc in allocations.items():
        vs = f", {100 * (base.T_s - alloc.T_s) / base.T_s:6.2f} % below BA" if base is not None and name != "BA" else ""
        if isinstance(alloc.details.get("robust"), dict) or "first_plan" in alloc.details:
            vs = " - T on its planning rates (ergodic over the fading, expected over the walks), not comparable"
            vs += " with the others' mean-channel T"
        prb = alloc.details.get("prb")
        prb = f"; whole PRBs cost {100 * prb['rounding_cost_relative']:.3g} % over continuous" if prb else ""
        lines.append(f"{name:>8}: T = {alloc.T_s:.6g} s, eta = {alloc.eta:.6f}, I0 = {alloc.I0:.6g}, "
                     f"V = {alloc.V:.6g} ({alloc.solver}){vs}; worst user {energies[name]['worst_user_j']:.4g} J{prb}")
    lines.append(f"-> {out / 'allocation.json'}")
    return lines


def run_profile(scenario: Scenario, out_dir: str | Path, source: str = "", remeasure: bool = False) -> list[str]:
    """`splitsim profile`: measure (or load) the scenario model's profile; write profile.json."""
    from .profile_report import batches_per_round, cut_table, describe_batches, format_frame, tier_table, traffic_table
    from .world import load_profile

    if scenario.model is None:
        raise InputError("the scenario names no model to profile", field="model", value=None)
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    profile = load_profile(scenario, remeasure=True if remeasure else "if_loaded")  # its step times are the result
    cuts, traffic, tiers = cut_table(profile), traffic_table(profile, scenario), tier_table(profile, scenario.model.cut_layers)
    write_json(out / "profile.json", {"scenario": scenario.name, "profile": profile.to_dict(),
                                      "cuts": cuts.to_dict(orient="records"), "tiers": tiers.to_dict(orient="records"),
                                      "user_side_traffic_per_round": traffic.to_dict(orient="records")})
    m = scenario.model
    shape = f"{m.batch_size} x {profile.sequence_length} tokens" if profile.sequence_length else \
        f"{m.batch_size} images of {profile.image_size} px"
    lines = [f"{profile.model} ({profile.architecture}, {profile.task}, {profile.dtype}), batch {shape}, "
             f"LoRA r = {profile.lora_rank} on {profile.lora_targets}, {profile.num_blocks} blocks; "
             f"measured on {profile.device}",
             f"levers: frozen base stored as {profile.environment.get('base_dtype', profile.dtype)}; cut tensors in "
             f"{profile.cut_dtype or profile.dtype}; adapters in {_adapter_dtype(scenario)}; optimizer {profile.optimizer}; "
             "gradient checkpointing on "
             f"{', '.join(profile.checkpointing) or 'no tier'}",
             _load_line(profile),
             "", "per candidate cut (bytes per batch; user tier = embeddings + blocks before the cut):",
             format_frame(cuts),
             "", f"tiers at cut_layers {m.cut_layers} (per batch; memory = params + grads + {m.optimizer} state "
                 "+ saved activations + transients):",
             format_frame(tiers),
             "", f"user-side communication per round and user ({scenario.cell.users} users, "
                 f"{scenario.workload.dataset_samples:,} samples -> {describe_batches(batches_per_round(scenario))} "
                 f"batches of {m.batch_size} per user; GiB):",
             format_frame(traffic), "", f"-> {out / 'profile.json'}"]
    return lines


def _adapter_dtype(scenario: Scenario) -> str:
    m = scenario.model
    return m.dtype if m.lora.dtype == "auto" else m.lora.dtype


def _load_line(profile) -> str:
    """When the profile was measured, and how busy the host was then (step times depend on it)."""
    env = profile.environment
    load = env.get("load_per_cpu")
    busy = "not recorded" if load is None else f"{load:.2f} runnable processes per core"
    if load is not None and load > 0.5:
        busy += " (busy: step times may be slow; --remeasure on a quiet machine)"
    return f"measured {env.get('measured_utc', '(date unknown)')}, host load {busy}"


class EventWriter:
    """Writes the event tables of several runs into one file as they come (SFL's a round at a time).

    Chunks are buffered up to `FLUSH_ROWS` rows and written together (one parquet row group or CSV
    append per flush, not per round: thousands of tiny writes cost more than the simulation).
    Categorical columns are written as text: their categories differ from chunk to chunk."""

    FLUSH_ROWS = 200_000

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self.rows: dict[str, int] = {}
        self._parquet = None  # pyarrow.parquet.ParquetWriter, once the first chunk is in
        self._started = False
        self._buffer: list[pd.DataFrame] = []
        self._buffered = 0

    def sink(self, strategy: str):
        """The function that writes one chunk of `strategy`'s events."""
        self.rows.setdefault(strategy, 0)

        def write(frame: pd.DataFrame) -> None:
            if not len(frame):
                return
            frame = frame.assign(strategy=strategy)
            for col in frame.columns:
                if isinstance(frame[col].dtype, pd.CategoricalDtype):
                    frame[col] = frame[col].astype(str)
            self.rows[strategy] += len(frame)
            self._buffer.append(frame)
            self._buffered += len(frame)
            if self._buffered >= self.FLUSH_ROWS:
                self.flush()

        return write

    def flush(self) -> None:
        """Write what is buffered."""
        if not self._buffer:
            return
        frame = pd.concat(self._buffer, ignore_index=True) if len(self._buffer) > 1 else self._buffer[0]
        self._buffer, self._buffered = [], 0
        if self.fmt == "csv":
            frame.to_csv(self.path, mode="a", header=not self._started, index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.path, table.schema)
            self._parquet.write_table(table.cast(self._parquet.schema))
        self._started = True

    def close(self) -> bool:
        """Finish the file; False when nothing was written."""
        self.flush()
        if self._parquet is not None:
            self._parquet.close()
        return self._started


def run_simulate(scenario: Scenario, out_dir: str | Path, source: str = "", events_format: str = "parquet",
                 progress: bool | None = None) -> dict:
    """`splitsim simulate`: simulate the scenario's scheme; writes the output folder.

    SFL runs every allocation strategy (and reports the optimizer's T beside the simulated delay);
    SplitLLM, SL and FL run from the model profile. Writes summary.json (per run: the simulated
    delay and its breakdown), events.parquet (or .csv, or none) with a `strategy` column (SFL's
    written a round at a time as it is simulated, so memory stays bounded), updates.csv for FedBuff
    (each update: user, the versions it started on and arrived at, its staleness, time), and
    scenario.resolved.yaml.
    """
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    world = realise(scenario)
    summaries = {}
    events_file = writer = None
    if events_format != "none" and scenario.simulation.record_events:
        events_file = "events.parquet" if events_format == "parquet" else "events.csv"
        writer = EventWriter(out / events_file, events_format)
    for name, result in simulations(world, progress, writer.sink if writer else None):
        if writer is not None:
            if result.log.enabled and len(result.log):  # not streamed (epoch schemes)
                writer.sink(name)(result.events_frame())
            result.extra["records"] = writer.rows[name]
        if result.updates is not None:  # FedBuff: every update's versions and staleness
            result.updates.to_csv(out / "updates.csv", index=False)
        summaries[name] = result.summary()
    if writer is not None and not writer.close():
        events_file = None
    write_json(out / "summary.json", simulate_summary(scenario, summaries, events_file))
    return summaries


SIMULATE_HEADLINE = "the simulated training delay of each strategy (SFL) or of the scheme"


def simulate_summary(scenario: Scenario, summaries: dict[str, dict], events_file: str | None) -> dict:
    """summary.json of `simulate`: every run's summary and the headline delays."""
    metrics = {delay_metric(name): s["total_delay_s"] for name, s in summaries.items()}
    return {"scenario": scenario.name, "scheme": scenario.scheme, "events_file": events_file, "metrics": metrics,
            "headline": list(metrics),
            "headline_meaning": SIMULATE_HEADLINE,
            "simulations": summaries}

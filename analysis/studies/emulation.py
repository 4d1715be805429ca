"""Study `emulation` (also `splitsim emulate`): the simulator's round time held against real processes.

The scenario's scheme runs for real for `emulation.rounds` rounds: every device its own process
holding its tier of the model with its LoRA adapters, doing real split LoRA steps and exchanging the
real tensors over TCP, in the protocol's own order (analysis/testbed/roles.py), on links shaped to the
rates the simulator uses for this scenario's channel draw and allocation. The simulator is calibrated
on this host by the devices themselves (they time their share of a step, one step of one device at a
time, before the go and again after the run) and run on the same draw, allocation and rounds; the
measured events, in the simulator's schema, are compared with its predicted ones per activity kind
and per round.

Writes `emulation.csv` (per round and kind: measured, predicted, relative error, bytes), the events
of both (`events_measured.csv`, `events_predicted.csv`), `gantt.png`, `report.md` and `summary.json`
(headline: `round_error_median_pct`, `round_error_max_pct`, the absolute relative errors of the
rounds' durations; `run_error_pct`, the signed error of the whole run, beside them).
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from splitsim.scenarios import InputError, Problem, Scenario

from .. import plots
from ..outputs import prepare_out_dir, write_json, write_resolved_scenario
from ..report import Report
from .base import Study

HEADLINE = ("the absolute relative error (%) of the simulator's round durations against the rounds measured on "
            "real device processes over shaped links: median and worst over the rounds")
STUDY_SCHEMES = ("sfl", "sl", "fl", "splitllm")
ENTRY = "splitsim.analysis.testbed.device"
"""The device processes' entry module (`python -m splitsim.analysis.testbed.device SPEC CONTROL`)."""
LOOPBACK_MAX_BPS = 5e9
"""The fastest link a shaper is asked to realise: well below what loopback TCP carries on a small host
(tens of Gbit/s), so that the pacing, not the host, sets the rate; and for the kernel shaper, below
the 8.2 Gbit/s at which its tbf queue of QUEUE_SECONDS of traffic would pass tc's 32-bit byte limit."""
STARTUP_S_PER_DEVICE = 15.0
"""Budget to start a device process (import torch, build and warm its tier) on a loaded 2-core host."""
PROCESS_OVERHEAD_BYTES = 450 * 2**20
"""Resident memory of a device process besides its model and its step: the interpreter, torch and
transformers (measured: an FL aggregator holding MiniLM-L6, 0.09 GB of weights, resides in 0.55 GB; a
training FL user in 0.97 GB, its whole-model step on top)."""


WORKDIR_PREFIX = "splitsim-emulate-"
"""A run's work folder in the temporary directory: this prefix, the coordinator's pid, a random tail."""
log = logging.getLogger("splitsim.analysis")


def remove_stale_runs() -> list[str]:
    """Remove what emulations killed with SIGKILL left: their network namespaces (kernel shaper) and
    work folders, each named with a coordinator pid that no longer runs; one line saying what was
    removed (none when there was nothing). Their devices died with them (die_with_coordinator)."""
    import shutil

    lines = []
    folders = []
    candidates = [*Path(tempfile.gettempdir()).glob(f"{WORKDIR_PREFIX}*"), *Path("/tmp").glob("splitsim-ctl-*")]
    for folder in candidates:
        pid = folder.name.removeprefix(WORKDIR_PREFIX).removeprefix("splitsim-ctl-").split("-")[0]
        if folder.is_dir() and pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folders.append(folder.name)
    namespaces = []
    from splitsim.netsim.testbed.kernel import remove_stale, unavailable_reason

    if unavailable_reason() is None:
        namespaces = remove_stale()
    if folders or namespaces:
        lines.append(f"removed what emulations killed before finishing left: {len(namespaces)} network namespace(s), "
                     f"{len(folders)} work folder(s) ({', '.join(folders + namespaces)[:200]})")
    return lines


def host_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def device_count(scenario: Scenario) -> int:
    k = scenario.cell.users
    return {"sfl": k + 2, "sl": k + 1, "fl": k + 1, "splitllm": k + scenario.cell.edge_servers + 1}[scenario.scheme]


def problems(scenario: Scenario) -> list[Problem]:
    """What the testbed cannot emulate, and what the comparison needs — before any work."""
    out = []
    sim, em = scenario.simulation, scenario.emulation
    if not sim.downlink:
        out.append(Problem("simulation.downlink", "the emulation sends the gradients and the broadcast adapters back "
                           "for real, so the simulator must model them: set simulation.downlink: true", False, True))
    if scenario.scheme == "sfl" and sim.server_concurrency != 1:
        out.append(Problem("simulation.server_concurrency", "the emulated main server is one process serving one step "
                           "at a time: set simulation.server_concurrency: 1", sim.server_concurrency, True))
    if scenario.scheme == "splitllm" and sim.cloud_concurrency != 1:
        out.append(Problem("simulation.cloud_concurrency", "the emulated cloud is one process serving one step at a "
                           "time: set simulation.cloud_concurrency: 1", sim.cloud_concurrency, True))
    if scenario.channel.redraw_each_round:
        out.append(Problem("channel.redraw_each_round", "each emulated link runs at one rate for the whole run; the "
                           "channel must stay as drawn", True, True))
    if sim.straggler_probability > 0:
        out.append(Problem("simulation.straggler_probability", "the emulated devices compute at this host's speed; "
                           "stragglers are not emulated", sim.straggler_probability, True))
    if scenario.radio.subcarrier_spacing_khz is not None and scenario.radio.link_model == "shannon":
        out.append(Problem("radio.subcarrier_spacing_khz", "the emulation shapes continuous bandwidths on Shannon's link "
                           "(whole PRBs are applied with radio.link_model: nr)", scenario.radio.subcarrier_spacing_khz, True))
    if scenario.model is not None and scenario.model.weights == "none":
        out.append(Problem("model.weights", "the emulation runs real steps: the model needs weights (auto or random)",
                           "none", True))
    if em.launcher != "ray":  # one host: what it cannot hold or run at once, known without a profile
        out += _host_problems(scenario)
    if em.launcher == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            out.append(Problem("emulation.launcher", "Ray is not installed (pip install 'splitsim[ray]')", "ray", True))
        if em.shaper == "kernel":
            out.append(Problem("emulation.shaper", "the kernel shaper's namespaces are one host's; Ray devices use the "
                               "application shaper", "kernel", True))
    elif em.ray_address is not None:
        out.append(Problem("emulation.ray_address", "read with emulation.launcher: ray only", em.ray_address, True))
    if em.shaper == "kernel" and em.launcher != "ray":
        from splitsim.netsim.testbed.kernel import unavailable_reason

        reason = unavailable_reason()
        if reason:
            out.append(Problem("emulation.shaper", f"the kernel shaper cannot run here: {reason}", "kernel", True))
    return out


def _host_problems(scenario: Scenario) -> list[Problem]:
    """This host against the run, before any profile: the device processes' fixed memory (each holds
    an interpreter, torch and transformers: PROCESS_OVERHEAD_BYTES, before its model), and FL's users,
    who all train at once every round (more than the cores would contend; the check after the profile
    covers the other schemes, whose overlap depends on their step and link times)."""
    out = []
    devices, cores = device_count(scenario), scenario.emulation.cores or host_cores()
    from ..guards import available_memory_bytes

    free = available_memory_bytes()
    if devices * PROCESS_OVERHEAD_BYTES > free:
        out.append(Problem("cell.users", f"{devices} device processes need more than {devices * PROCESS_OVERHEAD_BYTES / 2**30:.1f} "
                           f"GiB before any model (each {PROCESS_OVERHEAD_BYTES / 2**20:.0f} MiB: Python, torch, "
                           f"transformers), more than the {free / 2**30:.1f} GiB free here", scenario.cell.users, True))
    if scenario.scheme == "fl" and scenario.cell.users > cores:
        out.append(Problem("cell.users", f"FL's {scenario.cell.users} users train at once every round, more than this "
                           f"host's {cores} core(s): their compute would contend (the simulator does not model it); "
                           "fewer users, or emulation.cores if the host has more", scenario.cell.users, True))
    return out


def ignores(scenario: Scenario) -> dict[str, str]:
    why = "the emulation runs emulation.rounds rounds of emulation.local_steps steps"
    out = {"simulation.rounds": why, "simulation.max_rounds": why, "simulation.engine": "the comparison runs SimPy",
           "simulation.record_events": "the comparison records every event",
           "simulation.event_detail": "the comparison records every activity",
           "simulation.max_events": "the comparison's runs are a few rounds"}
    if scenario.scheme != "sfl":
        out["emulation.strategy"] = "only SFL's sub-bands come from an allocation strategy"
    return out


def profile_times(profile, scenario: Scenario) -> dict[str, float]:
    """The calibration's keys from the model profile's per-tier step times (measured on this host when
    the profile was; no optimizer step), the users' slowed by emulation.user_cpu_share: what
    `splitsim validate` estimates the run with."""
    slower = scenario.emulation.user_cpu_share
    if scenario.scheme == "fl":
        whole = profile.whole()
        return {"user_step": (whole.forward_s + whole.backward_s) / slower}
    if scenario.scheme == "splitllm":
        user, edge, cloud = profile.tiers(list(scenario.model.cut_layers))
        return {"user_forward": user.forward_s / slower, "user_backward": user.backward_s / slower,
                "edge_forward": edge.forward_s, "edge_backward": edge.backward_s,
                "cloud": cloud.forward_s + cloud.backward_s}
    user, server = profile.tiers([scenario.model.cut_layers[0]])
    return {"user_forward": user.forward_s / slower, "user_backward": user.backward_s / slower,
            "server": server.forward_s + server.backward_s}


def check_host(scenario: Scenario, world):
    """Before any process starts, once the profile is there (as SFL's cost with a model: `validate`
    builds no model): the devices against this host's memory, and the run the simulator predicts with
    the profile's step times against the links the shaper can realise, emulation.max_seconds and the
    host's cores (checked again once the devices have calibrated)."""
    import torch

    from splitsim.learning.profile import available_memory_bytes, specs_from_config, weight_bytes

    from ..schemes import scheme_memory_bytes

    spec, _ = specs_from_config(scenario.model)
    cell = scenario.cell
    step = max(scheme_memory_bytes(world.profile, scenario.scheme, list(scenario.model.cut_layers), cell.users,
                                   cell.edge_servers, 1, 1).values())
    weights = weight_bytes(spec)  # every device process builds the whole model, then trains its tier
    per_device = weights + step + PROCESS_OVERHEAD_BYTES
    devices = device_count(scenario)
    free = available_memory_bytes(torch.device("cpu"))
    if free is not None and devices * per_device > free:
        raise InputError(f"{devices} device processes need about {devices * per_device / 2**30:.1f} GiB (each holds "
                         f"the model, {weights / 2**30:.2f} GiB, its tier's step, up to {step / 2**30:.2f} GiB, and "
                         f"torch), more than the {free / 2**30:.1f} GiB free here", field="cell.users", value=cell.users)
    testbed = _calibrated_testbed(scenario, world, profile_times(world.profile, scenario))
    # the contention check needs this host's step times: a profile measured under load (or elsewhere)
    # would refuse or admit the wrong cases, so then it waits for the devices' own calibration
    _check_plan(scenario, testbed, scenario.emulation.cores or host_cores(), contention=not profile_under_load(world))
    return testbed


def profile_under_load(world) -> bool:
    """Whether the profile's step times were measured with other work running (learning.profile)."""
    from splitsim.learning.profile import LOADED_PER_CPU

    load = world.profile.environment.get("load_per_cpu")
    return load is not None and load > LOADED_PER_CPU


def role_times(per_device: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each phase's seconds for the simulator: the mean over the devices that timed it (the users'
    forward and backward, the server's step, ...)."""
    phases: dict[str, list[float]] = {}
    for times in per_device.values():
        for phase, seconds in times.items():
            phases.setdefault(phase, []).append(seconds)
    return {phase: float(np.mean(values)) for phase, values in phases.items()}


def _calibrated_testbed(scenario: Scenario, world, calibration: dict[str, float]):
    from splitsim.analysis.allocations import world_allocations
    from splitsim.netsim.testbed.plans import fl_testbed, sfl_testbed, sl_testbed, splitllm_testbed

    em = scenario.emulation
    model = scenario.model.model_dump()
    if scenario.scheme == "sfl":
        allocation = world_allocations(world)[em.strategy]
        testbed = sfl_testbed(world, allocation, calibration, model, em.rounds, em.local_steps, seed=scenario.seed)
    else:
        build = {"sl": sl_testbed, "fl": fl_testbed, "splitllm": splitllm_testbed}[scenario.scheme]
        testbed = build(world, calibration, model, em.rounds, em.local_steps, seed=scenario.seed)
    # slower users (emulation.user_cpu_share): each user device stretches its own steps, calibration included
    testbed.specs[:] = [replace(s, compute_share=em.user_cpu_share) if s.user >= 0 else s for s in testbed.specs]
    return testbed


def _rate_field(scenario: Scenario, kind: str) -> str:
    """The scenario field that sets the rate of a link carrying `kind`."""
    if kind.startswith("backhaul"):
        return "radio.backhaul_rate_bps"
    if kind.startswith("downlink"):
        return "radio.downlink_bandwidth_hz"
    if kind == "uplink_adapter" and scenario.scheme in ("sfl", "fl"):
        return "radio.uplink_fed_bandwidth_hz"
    return "radio.uplink_main_bandwidth_hz"


def _check_plan(scenario: Scenario, testbed, cores: int, contention: bool = True) -> None:
    """What the calibrated, simulated plan says this host cannot do: one line naming the field."""
    from splitsim.netsim.testbed.compare import compute_overlap

    em = scenario.emulation
    fastest = testbed.links.loc[testbed.links["rate_bps"].idxmax()]
    if fastest["rate_bps"] > LOOPBACK_MAX_BPS:
        field = _rate_field(scenario, fastest["kind"])
        where = "on loopback" if em.shaper == "application" else "on a veth pair (tc tbf)"
        raise InputError(f"link {fastest['link']} would run at {fastest['rate_bps'] / 1e9:.3g} Gbit/s, faster than the "
                         f"{em.shaper} shaper can realise {where} ({LOOPBACK_MAX_BPS / 1e9:.3g} Gbit/s)",
                         field=field, value=getattr(scenario.radio, field.split(".")[1]))
    total = float(testbed.round_end_s[-1]) if len(testbed.round_end_s) else 0.0
    if total > em.max_seconds:
        slowest = testbed.links.loc[testbed.links["rate_bps"].idxmin()]
        raise InputError(f"the run is predicted to take {total:.3g} s, more than emulation.max_seconds "
                         f"({em.max_seconds:g} s; slowest link: {slowest['link']} at {slowest['rate_bps'] / 1e6:.3g} "
                         "Mbit/s)", field="emulation.max_seconds", value=em.max_seconds)
    most, share = compute_overlap(testbed.predicted, cores)
    if contention and share > em.max_contention_share:
        raise InputError(f"up to {most} devices would compute at once, more than this host's {cores} core(s) for "
                         f"{100 * share:.1f} % of the run (their compute would contend; the simulator does not model "
                         f"it): fewer users, slower links, or emulation.max_contention_share above {share:.2f}",
                         field="emulation.cores", value=cores)


def run(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    from splitsim.netsim.testbed.compare import comparison, events_frame, predicted_frame, round_errors
    from splitsim.netsim.testbed.launch import DeviceGroup, means, pooled_means

    from ..interrupted import TermAsInterrupt

    from ..world import realise

    em = scenario.emulation
    cores = em.cores or host_cores()
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(scenario, out, source)
    world = realise(scenario, remeasure="if_loaded")  # the testbed is planned on this host's step times
    started = time.perf_counter()
    estimate = check_host(scenario, world)  # the links' rates, and every check before a process starts
    calibrated: dict = {}

    def on_calibrated(per_device: dict[str, dict[str, float]]) -> None:
        testbed = _calibrated_testbed(scenario, world, role_times(per_device))
        _check_plan(scenario, testbed, cores)  # refuses (exit 2) before the go; the processes are closed

    setup_s = STARTUP_S_PER_DEVICE * len(estimate.specs) / max(cores, 1) + 120
    run_s = 3 * float(estimate.round_end_s[-1]) + 60
    # SIGTERM stops the devices as Ctrl-C does, by whichever door the run came (CLI or Python API):
    # every process, namespace and the work folder are removed on the way out
    for line in remove_stale_runs():
        log.warning(line)
    from splitsim.netsim.testbed.host_load import sample as host_load

    load_before = host_load()  # before any device computes: this host's own load
    with TermAsInterrupt(), tempfile.TemporaryDirectory(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-") as workdir:
        if em.launcher == "ray":
            from ..testbed.ray_devices import RayDeviceGroup

            with RayDeviceGroup(estimate.specs, Path(workdir), em.ray_address) as group:
                events = group.run(setup_s, run_s, em.calibration_steps, on_calibrated)
                calibrated.update(group.calibration)
        else:
            prefix, address_of, kernel = _shaper(scenario, estimate)
            try:
                with DeviceGroup(estimate.specs, Path(workdir), ENTRY, prefix, address_of) as group:
                    events = group.run(setup_s, run_s, em.calibration_steps, on_calibrated)
                    calibrated.update(group.calibration)
            finally:
                if kernel is not None:
                    kernel.close()
    load_after = host_load()  # every device has exited
    # the simulator's compute: the mean of the steps timed before and after the run
    per_device = pooled_means(calibrated["before"], calibrated["after"])
    calibration = role_times(per_device)
    before, after = role_times(means(calibrated["before"])), role_times(means(calibrated["after"]))
    drift = {phase: 100 * (after[phase] / before[phase] - 1) for phase in calibration}
    drifted = sorted(phase for phase, pct in drift.items() if abs(pct) > DRIFT_BOUND_PCT)
    testbed = _calibrated_testbed(scenario, world, calibration)
    elasticity = _compute_elasticity(scenario, world, calibration, testbed)
    host = {"load_before": load_before, "load_after": load_after,
            "busy": bool(load_before["busy"] or load_after["busy"]), "calibration_drift_bound_pct": DRIFT_BOUND_PCT,
            "calibration_drifted": drifted, "compute_elasticity": elasticity,
            "bound": "compute" if elasticity >= 0.5 else "communication"}
    predicted = predicted_frame(testbed.predicted)
    measured = events_frame([row for rows in events.values() for row in rows])
    table = comparison(measured, predicted)
    errors = np.abs(round_errors(table))
    metrics = {"round_error_median_pct": float(np.median(errors)), "round_error_max_pct": float(errors.max()),
               "measured_total_s": float(table.query("round == 'all' and kind == 'round'")["measured_s"].iloc[0]),
               "predicted_total_s": float(table.query("round == 'all' and kind == 'round'")["predicted_s"].iloc[0])}
    metrics["run_error_pct"] = 100 * (metrics["measured_total_s"] / metrics["predicted_total_s"] - 1)
    table.to_csv(out / "emulation.csv", index=False)
    measured.to_csv(out / "events_measured.csv", index=False)
    predicted.to_csv(out / "events_predicted.csv", index=False)
    testbed.links.to_csv(out / "links.csv", index=False)
    plots.emulation_gantt(measured, predicted, out / "gantt.png",
                          title=f"{scenario.name}: {scenario.scheme.upper()}, {scenario.cell.users} users, cut "
                                f"{scenario.model.cut_layers}, measured vs simulated")
    flops = _calibrated_flops(world.profile, scenario, calibration)
    _report(scenario, source, out, table, testbed, calibration, flops, metrics, cores, measured, drift, host)
    write_json(out / "summary.json", {
        "scenario": scenario.name, "study": "emulation", "scheme": scenario.scheme, "metrics": metrics,
        "headline": ["round_error_median_pct", "round_error_max_pct"], "headline_meaning": HEADLINE,
        "calibration_s": calibration, "calibration_s_per_device": per_device,
        "calibration_drift_pct": drift,
        "calibrated_flops_per_s": flops, "shaper": em.shaper, "cores": cores, "host": host,
        "profile_load_per_cpu": world.profile.environment.get("load_per_cpu"),
        "wall_s": time.perf_counter() - started})
    warnings = _host_warnings(host)
    return [f"rounds: median error {metrics['round_error_median_pct']:.2f} %, worst {metrics['round_error_max_pct']:.2f} "
            f"% (measured {metrics['measured_total_s']:.2f} s, predicted {metrics['predicted_total_s']:.2f} s); "
            f"{host['bound']}-bound (elasticity to compute {elasticity:.2f})", *warnings, f"-> {out}"]


DRIFT_BOUND_PCT = 10.0
"""A tier's calibrated step that moved more than this between before and after the run is flagged: the
host's speed changed under the run, and compute-bound rounds carry that error."""


def _compute_elasticity(scenario: Scenario, world, calibration: dict[str, float], testbed) -> float:
    """d ln(run time) / d ln(compute): the simulated run with every calibrated step 1 % longer (0: the
    links set the time, 1: the compute does)."""
    slower = _calibrated_testbed(scenario, world, {k: 1.01 * v for k, v in calibration.items()})
    base, more = float(testbed.round_end_s[-1]), float(slower.round_end_s[-1])
    return (more / base - 1) / 0.01 if base > 0 else 0.0


def _host_warnings(host: dict) -> list[str]:
    out = []
    if host["busy"]:
        worst = max(x["runnable_per_core"] or 0.0 for x in (host["load_before"], host["load_after"]))
        out.append(f"warning: other work ran on this host ({worst:.2f} runnable processes per core besides the run): "
                   "the devices' compute competed with it, so compute-bound rounds are less exact")
    if host["calibration_drifted"]:
        out.append(f"warning: the calibrated step of {', '.join(host['calibration_drifted'])} moved more than "
                   f"{host['calibration_drift_bound_pct']:g} % between before and after the run (the host's speed "
                   f"changed); this case is {host['bound']}-bound (elasticity to compute "
                   f"{host['compute_elasticity']:.2f})")
    return out


def _shaper(scenario: Scenario, testbed):
    """(command prefix, peer address function, KernelLinks or None) for the scenario's shaper."""
    if scenario.emulation.shaper == "application":
        return (lambda name: []), (lambda device, peer, port: ("127.0.0.1", port)), None
    return _kernel_shaper(testbed)


def _kernel_shaper(testbed):
    """One namespace per device, a veth pair per pair of devices that talk, each direction shaped by
    tc to the rate its sender paces at. The senders keep pacing each message (issue 34, item 6): a
    tbf bucket refilled while a link was idle would let a message's first 32 KiB through at line
    rate (221 kB adapters arrived 13-14 % early); paced, nothing exceeds the rate and tbf shapes the
    wire below it."""
    from splitsim.netsim.testbed.kernel import KernelLinks

    links = KernelLinks()
    try:
        for spec in testbed.specs:
            links.add_device(spec.name)
        by_name = {s.name: s for s in testbed.specs}
        done = set()
        for spec in testbed.specs:
            for peer in spec.links:
                pair = tuple(sorted((spec.name, peer)))
                if pair in done:
                    continue
                done.add(pair)
                a, b = pair
                links.link(a, b, by_name[a].links[b].rate_bps, by_name[b].links[a].rate_bps)
        for i, spec in enumerate(testbed.specs):
            testbed.specs[i] = replace(spec, listen_host="0.0.0.0")
    except BaseException:
        links.close()
        raise
    def address_of(device: str, peer: str, port: int):
        host = links.addresses.get((peer, device))  # the peer's end of their veth pair; None: no link
        return None if host is None else (host, port)

    return (lambda name: links.command(name, [])), address_of, links


def _calibrated_flops(profile, scenario: Scenario, calibration: dict[str, float]) -> dict[str, float]:
    """compute.<role>_flops_per_s that give the measured step times: tier FLOPs / measured seconds."""
    if scenario.scheme == "fl":
        return {"user_flops_per_s": profile.whole().flops / calibration["user_step"]}
    if scenario.scheme == "splitllm":
        user, edge, cloud = profile.tiers(list(scenario.model.cut_layers))
        return {"user_flops_per_s": user.flops / (calibration["user_forward"] + calibration["user_backward"]),
                "edge_flops_per_s": edge.flops / (calibration["edge_forward"] + calibration["edge_backward"]),
                "cloud_flops_per_s": cloud.flops / calibration["cloud"]}
    cut = scenario.model.cut_layers[0]
    user, server = profile.tiers([cut])
    return {"user_flops_per_s": user.flops / (calibration["user_forward"] + calibration["user_backward"]),
            "server_flops_per_s": server.flops / calibration["server"]}


def _report(scenario, source, out, table, testbed, calibration, flops, metrics, cores, measured, drift,
            host: dict) -> None:
    em = scenario.emulation
    report = Report(f"Emulation of {scenario.name}: measured against simulated", scenario.name, source)
    report.paragraph(
        f"{scenario.scheme.upper()} with {scenario.cell.users} users, cut {scenario.model.cut_layers}, "
        f"{em.rounds} rounds of {em.local_steps} local steps, run for real: one process per device "
        f"({len(testbed.specs)}), each with its tier of `{scenario.model.source}` and its LoRA adapters, exchanging "
        f"the real tensors over TCP on links shaped by the {em.shaper} shaper to the simulator's rates"
        + (f" under the {em.strategy} allocation" if scenario.scheme == "sfl" else "")
        + (f"; each user computed at {em.user_cpu_share:g} of this host's pace (a slower phone: every step of its "
           "work, calibration included, stretched by a wait to its duration / that share)"
           if em.user_cpu_share < 1 else "") + ". The simulator was "
        f"calibrated on this host ({cores} core(s)) by the devices themselves: once every process had built and "
        f"warmed its tier, they timed {em.calibration_steps} steps of their work, one step of one device at a time, "
        "round robin (the others idle), before the run and again after it; the means of both (averaged over the "
        "users) replaced the simulator's FLOP-based compute times, and it ran on the same channel draw, "
        "allocation and rounds.")
    report.paragraph(f"**Round durations:** median absolute error {metrics['round_error_median_pct']:.2f} %, worst "
                     f"{metrics['round_error_max_pct']:.2f} %; measured {metrics['measured_total_s']:.3f} s in all, "
                     f"predicted {metrics['predicted_total_s']:.3f} s ({metrics['run_error_pct']:+.2f} %).")
    rounds = table[table["kind"] == "round"][["round", "measured_s", "predicted_s", "error_pct"]]
    report.table(rounds, "Each round's duration (s) and the relative error (%):")
    kinds = table[(table["round"] == "all") & (table["kind"] != "round")][
        ["kind", "measured_s", "predicted_s", "error_pct", "measured_bytes", "predicted_bytes"]]
    report.table(kinds, "Busy seconds and bytes per activity kind over the run (summed over devices and links; "
                        "measured bytes are on the wire: the tensors plus each message's header):")
    report.table(pd.DataFrame([{"phase": k, "seconds": v, "after vs before the run (%)": drift[k]}
                               for k, v in calibration.items()]),
                 "Calibration: mean seconds per step of each tier's work in the device processes, before and after "
                 "the run (how much the host's speed drifted meanwhile beside it):")
    before, after = host["load_before"], host["load_after"]

    def load_text(x: dict) -> str:
        pressure = "" if x["cpu_pressure_pct"] is None else f", CPU pressure {x['cpu_pressure_pct']:.1f} %"
        return f"{x['runnable_per_core']:.2f} runnable processes per core{pressure}" if x["runnable_per_core"] \
            is not None else "not measurable here"

    report.paragraph(f"**This host besides the run:** before the devices started {load_text(before)}; after they "
                     f"exited {load_text(after)} ({'busy: other work competed for the cores' if host['busy'] else 'quiet'}). "
                     f"The case is {host['bound']}-bound: the simulated run grows by {host['compute_elasticity']:.2f} % "
                     "per 1 % of compute time. "
                     + (f"Calibration drift beyond {host['calibration_drift_bound_pct']:g} %: "
                        f"{', '.join(host['calibration_drifted'])}." if host["calibration_drifted"] else
                        f"No tier's calibration drifted beyond {host['calibration_drift_bound_pct']:g} %."))
    report.table(pd.DataFrame([{"field": f"compute.{k}", "value": v} for k, v in flops.items()]),
                 "The same as FLOP/s (tier FLOPs / measured seconds):")
    rates = testbed.links.groupby("kind")["rate_bps"].agg(["min", "max"]).reset_index()
    report.table(rates, "Link rates the shaper realised (bit/s of payload; per link in links.csv):")
    report.paragraph(
        "Known limits: a transfer is timed from its sender's start to its receiver's last byte on one monotonic "
        "clock; its time includes serialising the tensors (a copy) and the message header (a few hundred bytes). "
        "Queueing at the main server is measured from a message's arrival to the start of its step. Devices "
        "compute at this host's speed; when more devices compute at once than the host has cores, they contend, "
        "which the simulator does not model (the run is refused when the predicted schedule does that for more than "
        f"{100 * em.max_contention_share:g} % of its time).")
    report.figure("gantt.png", "devices and links against time, measured (top) and simulated (bottom)")
    report.write(out)


def check_cost(scenario: Scenario) -> None:
    """At `validate` too, when the profile is at hand (in the cache, or model.profile_path): every
    check `run` makes before a process starts (check_host: the devices' memory, the links the shaper
    can realise, the predicted run against emulation.max_seconds, the host's cores). Without it `run`
    makes them once the model is profiled, before any device process starts."""
    from splitsim.learning.profile import profile_at_hand

    from ..world import realise

    if scenario.model is None or not profile_at_hand(scenario.model):
        return
    check_host(scenario, realise(scenario))


STUDY = Study(
    kind="emulation", title="the simulator's rounds held against real device processes over shaped links",
    run=run, reads=frozenset(), figure="gantt.png", headline_meaning=HEADLINE, needs_model=True,
    schemes=STUDY_SCHEMES, scheme_hint="",
    problems=problems, ignores=ignores, check_cost=check_cost,
)

"""The testbed end to end (issue #24): real device processes over shaped links against the simulator.

The emulation of a tiny model (2 users, 1 round) runs with the application shaper and is checked
against what nobody here computes: the protocol's own counts (every activity the simulator
schedules happens once, in the same kinds), the bytes the tensors really had on the wire (the
simulator's bits plus each message's header, never less), and the round's duration within a loose
bound on a loaded CI host. The kernel variant runs where root is available. A device that fails or
dies stops the run, names itself, and leaves no process behind; bad input is one line and exit 2
before any process starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

TINY = {
    "name": "tiny_emulate", "seed": 3, "scheme": "sfl", "cell": {"users": 2},
    # narrow bands: a round of about two seconds, mostly the activations' uploads (communication-bound)
    "radio": {"uplink_main_bandwidth_hz": 3e5, "uplink_fed_bandwidth_hz": 3e5, "downlink_bandwidth_hz": 1e6},
    "simulation": {"downlink": True, "server_concurrency": 1},
    "model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32, "cut_layers": [1]},
    "emulation": {"rounds": 1, "local_steps": 2, "calibration_steps": 3},
    "study": {"kind": "emulation"},
}


def _write(tmp_path: Path, name: str = "tiny.yaml", **changes) -> Path:
    data = json.loads(json.dumps(TINY))
    for path, value in changes.items():
        section, _, field = path.partition("__")
        if field:
            data.setdefault(section, {})[field] = value
        else:
            data[section] = value
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def device_processes() -> list[int]:
    """Pids of testbed device processes alive on this host (what a run must not leave behind)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if b"splitsim.analysis.testbed.device" in cmdline and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def _check_run(out: Path, users: int = 2, rounds: int = 1, steps: int = 2) -> pd.DataFrame:
    for name in ("emulation.csv", "events_measured.csv", "events_predicted.csv", "gantt.png", "report.md",
                 "summary.json", "links.csv"):
        assert (out / name).is_file(), name
    measured = pd.read_csv(out / "events_measured.csv")
    predicted = pd.read_csv(out / "events_predicted.csv")
    # the protocol's own order: every activity the simulator schedules happened, as often
    expected = {"client_forward": users * rounds * steps, "client_backward": users * rounds * steps,
                "server_compute": users * rounds * steps, "uplink_activation": users * rounds * steps,
                "downlink_gradient": users * rounds * steps, "uplink_adapter": users * rounds,
                "downlink_adapter": users * rounds}
    for kind, count in expected.items():
        assert (measured["kind"] == kind).sum() == count, kind
        assert (predicted["kind"] == kind).sum() == count, kind
    # bytes on the wire: the simulator's bits (the profile's tensors) plus each message's header, a few
    # hundred bytes to a few kB (the adapters' tensor names), never less
    for kind in ("uplink_activation", "downlink_gradient", "uplink_adapter", "downlink_adapter"):
        m = measured.loc[measured["kind"] == kind, "bytes"].to_numpy()
        p = predicted.loc[predicted["kind"] == kind, "bytes"].to_numpy()
        overhead = m - p.mean()
        assert (overhead > 0).all() and (overhead < 8192).all(), (kind, overhead)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["headline"] == ["round_error_median_pct", "round_error_max_pct"]
    table = pd.read_csv(out / "emulation.csv")
    total = table[(table["round"] == "all") & (table["kind"] == "round")].iloc[0]
    assert total["measured_s"] == pytest.approx(measured["end_s"].max(), rel=1e-9)
    assert total["predicted_s"] == pytest.approx(predicted["end_s"].max(), rel=1e-9)
    return table


@pytest.mark.slow
def test_a_one_round_two_user_emulation_is_compared_end_to_end(tmp_path, cli):
    before = set(device_processes())
    code, out, err = cli("emulate", _write(tmp_path), "--out", tmp_path / "out")
    assert code == 0, err
    table = _check_run(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    # communication-bound: the shaped uploads set the round; a loaded 2-core CI host stays well inside this
    assert summary["metrics"]["round_error_max_pct"] < 25, table.to_string()
    assert set(device_processes()) <= before
    # issue 34, item 9: the host's own load before and after, the drift flag and how compute-bound it is
    host = summary["host"]
    assert {"load_before", "load_after", "busy", "calibration_drifted", "compute_elasticity", "bound"} <= set(host)
    assert host["bound"] == "communication" and 0 <= host["compute_elasticity"] < 0.5
    assert set(host["calibration_drifted"]) <= set(summary["calibration_drift_pct"])
    assert all(abs(summary["calibration_drift_pct"][p]) > 10 for p in host["calibration_drifted"])
    assert "This host besides the run" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.slow
def test_the_testbed_on_the_nr_link_shapes_each_link_to_its_nr_goodput(tmp_path, cli):
    """Issue 33, item 6: with radio.link_model nr each link is shaped to the NR goodput of its whole
    PRBs (the TDD slots' average, retransmissions included: NrRate), computed here from the link
    model and the user's PRBs, and the round meets today's targets (worst <= 10 %)."""
    pytest.importorskip("sionna", reason="the NR link model needs sionna-no-rt (pip install 'splitsim[nr]')")
    radio = {"uplink_main_bandwidth_hz": 5e6, "uplink_fed_bandwidth_hz": 5e6, "downlink_bandwidth_hz": 5e6,
             "subcarrier_spacing_khz": 15, "link_model": "nr", "max_tx_power_dbm": -20}
    path = _write(tmp_path, "nr.yaml", radio=radio)
    code, out, err = cli("emulate", path, "--out", tmp_path / "out")
    assert code == 0, err
    _check_run(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["metrics"]["round_error_max_pct"] < 10, summary["metrics"]

    from splitsim.analysis import realise
    from splitsim.analysis.allocations import world_allocations
    from splitsim.scenarios import load_scenario

    world = realise(load_scenario(path))
    alloc = world_allocations(world)[world.scenario.emulation.strategy]
    links = pd.read_csv(tmp_path / "out" / "links.csv").set_index("link")
    rate = world.inputs.uplink_rate
    assert rate.name == "nr"
    for k in range(2):
        expected = rate.rate_bps(alloc.b_s_hz[k], world.channel.snr_coeff_hz[k])
        assert links.loc[f"user{k}->main_server", "rate_bps"] == pytest.approx(float(expected), rel=1e-9)
        shannon = alloc.b_s_hz[k] * np.log2(1 + world.channel.snr_coeff_hz[k] / alloc.b_s_hz[k])
        assert expected < 0.5 * shannon


def test_a_busy_host_is_detected():
    """Three processes spinning on this host's cores: whatever else runs, more than 0.5 runnable per core."""
    from splitsim.netsim.testbed.host_load import sample

    cores = len(os.sched_getaffinity(0))
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores + 1)]
    try:
        time.sleep(0.3)
        load = sample(seconds=1.0)
    finally:
        for p in spinners:
            p.kill()
            p.wait()
    assert load["busy"] and load["runnable_per_core"] > 0.5, load


@pytest.mark.slow
def test_the_kernel_shaper_variant_runs_in_namespaces_and_removes_them(tmp_path, cli):
    from splitsim.netsim.testbed.kernel import PREFIX, unavailable_reason

    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    import subprocess

    code, out, err = cli("emulate", _write(tmp_path, emulation__shaper="kernel"), "--out", tmp_path / "out")
    assert code == 0, err
    _check_run(tmp_path / "out")
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{PREFIX}{os.getpid()}" not in namespaces


def _group(tmp_path, broken: str | None = None, rounds: int = 30):
    """A DeviceGroup of the tiny SFL case; `broken` names a device whose model cannot be built."""
    from splitsim.netsim.testbed.device import DeviceSpec, LinkSpec
    from splitsim.netsim.testbed.launch import DeviceGroup
    from splitsim.scenarios.schema import ModelConfig

    model = ModelConfig(**TINY["model"]).model_dump()
    common = dict(cuts=(1,), users=2, rounds=rounds, local_steps=2)
    specs = [DeviceSpec(name=f"user{k}", role="sfl_user", user=k, model=model,
                        links={"main_server": LinkSpec(2e6), "fed_server": LinkSpec(2e6)}, **common) for k in range(2)]
    specs += [DeviceSpec(name=name, role=role, user=-1, model=model, links={f"user{k}": LinkSpec(8e6) for k in range(2)},
                         **common) for name, role in (("main_server", "sfl_main"), ("fed_server", "sfl_fed"))]
    if broken is not None:
        specs = [s if s.name != broken else DeviceSpec(**{**s.__dict__, "model": {**model, "source": "no-such-model"}})
                 for s in specs]
    return DeviceGroup(specs, tmp_path, "splitsim.analysis.testbed.device")


@pytest.mark.slow
def test_a_device_that_fails_to_start_stops_the_run_and_says_which(tmp_path):
    from splitsim.netsim.testbed.errors import DeviceFailure

    before = set(device_processes())
    with pytest.raises(DeviceFailure, match="device user1 failed while starting"), _group(tmp_path, "user1") as group:
        group.run(300, 300)
    assert set(device_processes()) <= before


@pytest.mark.slow
def test_a_device_killed_mid_run_stops_the_run_says_which_and_leaves_no_process(tmp_path):
    from splitsim.netsim.testbed.errors import DeviceFailure

    before = set(device_processes())
    group = _group(tmp_path, rounds=1000)
    outcome: dict = {}

    def run() -> None:
        try:
            group.run(300, 300)
        except DeviceFailure as err:
            outcome["error"] = str(err)
        finally:
            group.close()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 240
    while not getattr(group, "running", False):  # every device got its go
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    os.kill(group.processes["user1"].pid, signal.SIGKILL)
    thread.join(60)
    assert "device user1 died while running (exit code -9)" in outcome.get("error", ""), outcome
    assert set(device_processes()) <= before


def test_what_the_testbed_cannot_emulate_is_one_line_each_and_exit_2(tmp_path, cli):
    path = _write(tmp_path, simulation={"downlink": False}, channel={"redraw_each_round": True})
    code, _, err = cli("validate", path)
    assert code == 2
    for field in ("simulation.downlink", "simulation.server_concurrency", "channel.redraw_each_round"):
        assert f"{field}:" in err
    assert "Traceback" not in err


def test_a_run_past_its_time_budget_is_refused_before_any_process_starts(tmp_path, cli):
    before = set(device_processes())
    code, _, err = cli("emulate", _write(tmp_path, emulation__max_seconds=0.05), "--out", tmp_path / "out")
    assert code == 2
    assert "emulation.max_seconds" in err and "predicted to take" in err
    assert set(device_processes()) <= before


def test_devices_that_would_contend_for_the_cores_are_refused_before_any_process_starts(tmp_path, cli, monkeypatch):
    # one core, fast links: the users' forward passes overlap at the round's start; the profile counts
    # as measured on a quiet host (under load the check waits for the devices' calibration)
    import splitsim.analysis.studies.emulation as emulation

    monkeypatch.setattr(emulation, "profile_under_load", lambda world: False)
    before = set(device_processes())
    path = _write(tmp_path, radio={"uplink_main_bandwidth_hz": 1e8, "uplink_fed_bandwidth_hz": 1e8,
                                   "downlink_bandwidth_hz": 1e8}, emulation__cores=1)
    monkeypatch.setenv("SPLITSIM_CACHE_DIR", str(tmp_path / "cache"))  # this test's own: nothing profiled
    assert cli("validate", path)[0] == 0  # no profile at hand: the schedule needs it, so run checks it
    code, _, err = cli("emulate", path, "--out", tmp_path / "out")
    assert code == 2
    assert "emulation.cores" in err and "compute at once" in err
    assert set(device_processes()) <= before
    code, _, err = cli("validate", path)  # the profile now in the cache: validate says what run said
    assert code == 2 and "emulation.cores" in err and "compute at once" in err


def test_the_kernel_shaper_without_the_rights_is_refused(tmp_path, cli, monkeypatch):
    import splitsim.netsim.testbed.kernel as kernel

    monkeypatch.setattr(kernel, "unavailable_reason", lambda: "creating network namespaces needs root")
    code, _, err = cli("validate", _write(tmp_path, emulation__shaper="kernel"))
    assert code == 2
    assert "emulation.shaper" in err and "needs root" in err


def test_emulation_fields_are_flagged_in_other_studies(tmp_path, cli):
    path = _write(tmp_path, study={"kind": "simulate"}, emulation__rounds=5)
    code, _, err = cli("validate", path)
    assert code == 0
    assert "emulation.rounds" in err and "only study 'emulation'" in err


@pytest.mark.slow
def test_devices_run_as_ray_actors(tmp_path, cli):
    pytest.importorskip("ray", reason="Ray devices need `pip install splitsim[ray]`")
    code, out, err = cli("emulate", _write(tmp_path, emulation__launcher="ray"), "--out", tmp_path / "out")
    assert code == 0, err
    _check_run(tmp_path / "out")


def test_ray_only_fields_and_the_kernel_shaper_on_ray_are_refused(tmp_path, cli):
    code, _, err = cli("validate", _write(tmp_path, emulation={**TINY["emulation"], "ray_address": "auto"}))
    assert code == 2 and "emulation.ray_address" in err
    code, _, err = cli("validate", _write(tmp_path, emulation={**TINY["emulation"], "launcher": "ray",
                                                                 "shaper": "kernel"}))
    assert code == 2 and "emulation.shaper" in err and "one host's" in err


def _frame(rows):
    return pd.DataFrame(rows, columns=["time_s", "end_s", "node", "kind", "user", "round", "bytes"]).assign(
        duration_s=lambda d: d["end_s"] - d["time_s"])


def test_the_comparison_sums_busy_seconds_per_kind_and_times_rounds_by_their_last_activity():
    from splitsim.netsim.testbed.compare import comparison, round_errors

    predicted = _frame([(0.0, 1.0, "user0", "client_forward", 0, 0, 0), (1.0, 3.0, "user0->main_server",
                        "uplink_activation", 0, 0, 100), (3.0, 4.0, "user0", "client_forward", 0, 1, 0),
                        (4.0, 6.0, "user0->main_server", "uplink_activation", 0, 1, 100)])
    measured = _frame([(0.0, 1.1, "user0", "client_forward", 0, 0, 0), (1.1, 3.3, "user0->main_server",
                       "uplink_activation", 0, 0, 120), (3.3, 4.2, "user0", "client_forward", 0, 1, 0),
                       (4.2, 6.0, "user0->main_server", "uplink_activation", 0, 1, 120)])
    table = comparison(measured, predicted).set_index(["round", "kind"])
    # rounds end at 3 and 6 (predicted), 3.3 and 6.0 (measured): +10 % and -10 %
    assert table.loc[(0, "round"), "error_pct"] == pytest.approx(10.0)
    assert table.loc[(1, "round"), "error_pct"] == pytest.approx(-10.0)
    assert table.loc[("all", "round"), "error_pct"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc[("all", "client_forward"), "measured_s"] == pytest.approx(2.0)
    assert table.loc[("all", "uplink_activation"), "measured_bytes"] == 240
    assert table.loc[("all", "uplink_activation"), "predicted_bytes"] == 200
    assert round_errors(comparison(measured, predicted)) == pytest.approx([10.0, -10.0])


def test_the_contention_check_before_calibration_defers_to_it_when_the_profile_was_taken_under_load():
    """issue 34, items 5 and 9: a profile's step times measured under load refused a 5.2 % case; the
    check on them is skipped then, and the one on the devices' own calibration decides."""
    from types import SimpleNamespace

    from splitsim.analysis.studies.emulation import _check_plan
    from splitsim.scenarios import InputError, parse_scenario

    scenario = parse_scenario(json.loads(json.dumps(TINY)))
    plan = SimpleNamespace(
        links=pd.DataFrame({"link": ["user0->main_server"], "kind": ["uplink_activation"], "rate_bps": [1e6]}),
        round_end_s=[10.0],
        predicted=_frame([(0.0, 5.0, "user0", "client_forward", 0, 0, 0), (0.0, 5.0, "user1", "client_forward", 1, 0, 0),
                          (5.0, 10.0, "user0->main_server", "uplink_activation", 0, 0, 1)]))
    with pytest.raises(InputError, match="compute at once"):
        _check_plan(scenario, plan, cores=1)
    _check_plan(scenario, plan, cores=1, contention=False)  # the calibrated check comes later


def test_contention_is_the_share_of_the_run_with_more_devices_computing_than_cores():
    from splitsim.netsim.testbed.compare import compute_overlap

    schedule = _frame([(0.0, 2.0, "user0", "client_forward", 0, 0, 0), (0.0, 1.0, "user1", "client_forward", 1, 0, 0),
                       (0.5, 1.5, "main_server", "server_compute", 0, 0, 0),
                       (1.5, 10.0, "user0->main_server", "uplink_activation", 0, 0, 1)])
    # three compute at once from 0.5 to 1.0 s of a 10 s run
    assert compute_overlap(schedule, cores=2) == (3, pytest.approx(0.05))
    assert compute_overlap(schedule, cores=3) == (3, 0.0)


@pytest.mark.slow
def test_slower_users_are_slower_per_step_and_calibrated_so(tmp_path, cli):
    code, _, err = cli("emulate", _write(tmp_path, emulation__user_cpu_share=0.3), "--out", tmp_path / "out")
    assert code == 0, err
    _check_run(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    per_device = summary["calibration_s_per_device"]
    assert summary["metrics"]["round_error_max_pct"] < 25
    # a user at 0.3 of the host's pace: each of its steps is stretched to at least 1 / 0.3 of its work,
    # so its FLOP/s is at most 0.3 of what the same code does at full pace (0.7-1.4 of the server's
    # here, idle or loaded), far below the server's (the exact stretch: tests/test_testbed.py)
    flops = summary["calibrated_flops_per_s"]
    assert flops["user_flops_per_s"] < 0.6 * flops["server_flops_per_s"], (flops, per_device)
    assert "each user computed at 0.3 of this host's pace" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("shaper, door", [("application", "cli"), ("kernel", "cli"), ("application", "api")])
def test_an_interrupted_emulation_leaves_no_process_namespace_or_cgroup(tmp_path, shaper, door):
    import subprocess
    import sys

    from splitsim.netsim.testbed.kernel import PREFIX, unavailable_reason

    if shaper == "kernel" and unavailable_reason():
        pytest.skip(unavailable_reason())
    before = set(device_processes())
    path = _write(tmp_path, emulation={**TINY["emulation"], "rounds": 200, "shaper": shaper, "max_seconds": 3000})
    command = ["-m", "splitsim.analysis.cli", "emulate", str(path), "--out", str(tmp_path / "out")] if door == "cli" else \
        ["-c", f"import splitsim; splitsim.run_study({str(path)!r}, {str(tmp_path / 'out')!r})"]
    scratch = tmp_path / "tmp"  # the run's work folder goes here: it must be gone afterwards
    scratch.mkdir()
    run = subprocess.Popen([sys.executable, *command], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, "TMPDIR": str(scratch)})
    deadline = time.monotonic() + 240
    while len(set(device_processes()) - before) < 4:  # every device started
        assert run.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(8)  # calibrating or running
    run.send_signal(signal.SIGTERM)  # what Ctrl-C does, as a background job can receive it
    _, err = run.communicate(timeout=60)
    if door == "cli":
        assert run.returncode == 130, err
        assert "interrupted" in err
    else:  # the API raises KeyboardInterrupt to its caller, as Ctrl-C would
        assert run.returncode != 0 and "KeyboardInterrupt" in err, err
    time.sleep(1)
    assert set(device_processes()) <= before
    assert not list(scratch.glob("splitsim-emulate-*"))
    if shaper == "kernel":
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{PREFIX}{run.pid}" not in namespaces


@pytest.mark.slow
@pytest.mark.parametrize("shaper", ["application", "kernel"])
def test_a_killed_coordinators_devices_die_with_it_and_the_next_run_removes_what_it_left(tmp_path, shaper,
                                                                                       monkeypatch):
    """issue 34, item 7: SIGKILL of `splitsim emulate` orphaned its devices for 60-90 s and left its
    namespaces and work folder, and the next run neither cleaned up nor said so."""
    import subprocess
    import sys
    import tempfile

    from splitsim.analysis.studies.emulation import remove_stale_runs
    from splitsim.netsim.testbed.kernel import PREFIX, unavailable_reason

    if shaper == "kernel" and unavailable_reason():
        pytest.skip(unavailable_reason())
    before = set(device_processes())
    path = _write(tmp_path, emulation={**TINY["emulation"], "rounds": 200, "shaper": shaper, "max_seconds": 3000})
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = subprocess.Popen([sys.executable, "-m", "splitsim.analysis.cli", "emulate", str(path), "--out",
                            str(tmp_path / "out")], stdout=subprocess.DEVNULL, stderr=open(tmp_path / "err.txt", "w"),
                           env={**os.environ, "TMPDIR": str(scratch)})
    deadline = time.monotonic() + 240
    while len(set(device_processes()) - before) < 4:  # every device started
        assert run.poll() is None and time.monotonic() < deadline, (tmp_path / "err.txt").read_text()
        time.sleep(0.2)
    time.sleep(3)
    run.kill()  # SIGKILL: no handler runs, nothing is cleaned up by the coordinator
    run.wait()
    deadline = time.monotonic() + 30  # the kernel kills the devices at once (PR_SET_PDEATHSIG)
    while set(device_processes()) - before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not set(device_processes()) - before
    assert list(scratch.glob("splitsim-emulate-*"))  # left behind: only the next run can remove it
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    lines = remove_stale_runs()
    assert len(lines) == 1 and "work folder(s)" in lines[0], lines
    assert not list(scratch.glob("splitsim-emulate-*"))
    if shaper == "kernel":
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert f"{PREFIX}{run.pid}" not in namespaces
    assert remove_stale_runs() == []  # nothing left to say


def test_a_dead_runs_work_folder_is_removed_and_a_live_ones_kept(tmp_path, monkeypatch):
    import tempfile

    from splitsim.analysis.studies.emulation import WORKDIR_PREFIX, remove_stale_runs

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / f"{WORKDIR_PREFIX}{dead.pid}-abc").mkdir()
    (tmp_path / f"{WORKDIR_PREFIX}{os.getpid()}-def").mkdir()  # this process: alive
    lines = remove_stale_runs()
    assert len(lines) == 1 and f"{WORKDIR_PREFIX}{dead.pid}-abc" in lines[0]
    assert [p.name for p in tmp_path.iterdir()] == [f"{WORKDIR_PREFIX}{os.getpid()}-def"]


@pytest.mark.parametrize("shaper", ["application", "kernel"])
def test_a_link_faster_than_a_shaper_can_pace_is_refused_naming_its_field(tmp_path, cli, shaper):
    """issue 34, item 8: the kernel shaper's tbf queue would pass tc's 32-bit limit (a 56-line
    traceback): one line and exit 2, before any process or namespace exists."""
    from splitsim.netsim.testbed.kernel import unavailable_reason

    if shaper == "kernel" and unavailable_reason():
        pytest.skip(unavailable_reason())
    path = _write(tmp_path, radio={**TINY["radio"], "downlink_bandwidth_hz": 1e12},
                  emulation={**TINY["emulation"], "shaper": shaper})
    code, _, err = cli("emulate", path, "--out", tmp_path / "out")
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err and len(errors) == 1, err
    assert "radio.downlink_bandwidth_hz" in err and f"faster than the {shaper} shaper" in err


OTHER_SCHEMES = {
    "sl": {"scheme": "sl"},
    "fl": {"scheme": "fl"},
    "splitllm": {"scheme": "splitllm", "cell": {"users": 3, "edge_servers": 2},
                 "radio": {**TINY["radio"], "backhaul_rate_bps": 20e6, "backhaul_latency_s": 0.01},
                 "simulation": {"downlink": True, "cloud_concurrency": 1},
                 "model": {**TINY["model"], "cut_layers": [1, 2]}},
}


@pytest.mark.slow
@pytest.mark.parametrize("scheme", list(OTHER_SCHEMES))
def test_sl_fl_and_splitllm_run_in_the_simulators_order_and_sizes(scheme, tmp_path, cli):
    changes = dict(OTHER_SCHEMES[scheme])
    if scheme in ("sl", "fl"):
        changes["simulation"] = {"downlink": True}
    code, _, err = cli("emulate", _write(tmp_path, **changes), "--out", tmp_path / "out")
    assert code == 0, err
    measured = pd.read_csv(tmp_path / "out" / "events_measured.csv")
    predicted = pd.read_csv(tmp_path / "out" / "events_predicted.csv")
    # the protocol's own order: the same activities on the same nodes, as often, as the simulator's (the
    # queue entries and the aggregations, which the simulator records only when they take time, aside)
    def count(frame):
        work = frame[~frame["kind"].isin(["server_queue", "aggregation"])]
        return work.groupby(["node", "kind"]).size().sort_index()

    pd.testing.assert_series_equal(count(measured), count(predicted))
    # bytes: the simulator's bits plus each message's header (never less, at most a few kB)
    moved = measured[measured["bytes"] > 0].groupby(["node", "kind"])["bytes"].sum()
    planned = predicted[predicted["bytes"] > 0].groupby(["node", "kind"])["bytes"].sum()
    overhead = (moved - planned) / count(measured).loc[moved.index]
    assert ((overhead > 0) & (overhead < 8192)).all(), overhead


@pytest.mark.parametrize("changes, words", [
    ({"cell": {"users": 1000}}, "device processes need more than"),
    ({"scheme": "fl", "cell": {"users": 6}, "emulation": {**TINY["emulation"], "cores": 2}}, "train at once"),
])
def test_validate_refuses_what_run_would_refuse_on_this_host(tmp_path, cli, changes, words):
    """issue 34, item 10: `validate` said ok to a 1,000-user and a 6-user FL emulation that `run`
    refused a minute later; both are known without a profile."""
    path = _write(tmp_path, **changes)
    code, _, err = cli("validate", path)
    assert code == 2 and "cell.users" in err and words in err, err


def test_validate_refuses_a_run_past_its_time_budget_once_the_profile_is_at_hand(tmp_path, cli, monkeypatch):
    """issue 34, item 10: a 1 Hz link's run takes days; with the profile in the cache (`splitsim
    profile`), `validate` predicts the run as `run` does, before any process, and refuses it naming
    emulation.max_seconds. Without a profile it says nothing more (run checks once it has profiled)."""
    monkeypatch.setenv("SPLITSIM_CACHE_DIR", str(tmp_path / "cache"))  # this test's own: nothing profiled
    slow = _write(tmp_path, radio={**TINY["radio"], "uplink_main_bandwidth_hz": 1.0})
    assert cli("validate", slow)[0] == 0  # nothing profiled yet: a warning on the bandwidth only
    assert cli("profile", slow, "--out", tmp_path / "profile")[0] == 0
    code, _, err = cli("validate", slow)
    assert code == 2 and "emulation.max_seconds" in err and "predicted to take" in err, err
    assert cli("validate", _write(tmp_path))[0] == 0  # the same profile, the tiny scenario's links: fine


def test_an_absurd_transmit_power_is_a_field_error(tmp_path, cli):
    """issue 34, item 10: study.tx_power_dbm: 1e308 ran into a numpy overflow, then an error naming an
    internal field; it is refused at validate, naming the field."""
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({"name": "p", "study": {"kind": "latency_vs_power", "tx_power_dbm": [0, 1e308]}}))
    code, _, err = cli("validate", path)
    assert code == 2 and "study.tx_power_dbm[1]" in err and "100" in err, err

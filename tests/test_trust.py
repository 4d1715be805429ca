"""Issue 9: results are never silently stale, lost or meaningless; every check comes before any work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import REPO, small_scenario

TINY_MODEL = {"source": "bert-tiny", "batch_size": 4, "sequence_length": 16, "lora": {"rank": 2}}


def write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def sfl_file(path: Path, **over) -> Path:
    data = {"name": "trust", "seed": 7, "cell": {"users": 6}, "workload": {"dataset_samples": 600},
            "theory": {"epsilon0": 0.2}, "study": {"kind": "simulate"}, "simulation": {"record_events": False}}
    data.update(over)
    return write(path, data)


# ---- 1. stale results: a folder belongs to one run; a point is its whole resolved scenario ----------

def test_sweep_of_an_edited_scenario_is_refused_and_overwrite_recomputes(cli, tmp_path):
    base = sfl_file(tmp_path / "b.yaml")
    out = tmp_path / "sweep"
    assert cli("sweep", base, "--set", "cell.users=4,6", "--out", out, "--workers", "1")[0] == 0
    before = pd.read_csv(out / "results.csv")
    sfl_file(base, seed=8)
    code, _, err = cli("sweep", base, "--set", "cell.users=4,6", "--out", out, "--workers", "1")
    assert code == 2 and "--out" in err and "holds the output of" in err and "--overwrite" in err
    code, stdout, err = cli("sweep", base, "--set", "cell.users=4,6", "--out", out, "--workers", "1", "--overwrite")
    assert code == 0, err
    assert "0 done before" in stdout
    after = pd.read_csv(out / "results.csv")
    assert not np.allclose(before["delay_proposed_s"], after["delay_proposed_s"])  # seed 8 draws another cell


def test_a_point_is_reused_only_when_its_inputs_are_identical(cli, tmp_path):
    base = sfl_file(tmp_path / "b.yaml")
    out = tmp_path / "sweep"
    assert cli("sweep", base, "--set", "cell.users=4,6", "--out", out, "--workers", "1")[0] == 0
    results = sorted((out / "points").glob("*/result.json"))
    record = json.loads(results[0].read_text())
    record["inputs_sha256"] = "0" * 64  # as if computed from other inputs (or another splitsim version)
    record["row"]["delay_proposed_s"] = -1.0
    results[0].write_text(json.dumps(record))
    code, stdout, _ = cli("sweep", base, "--set", "cell.users=4,6,8", "--out", out, "--workers", "1")
    assert code == 0 and "1 done before, 2 run now" in stdout  # the grid may grow; the tampered point reruns
    assert (pd.read_csv(out / "results.csv")["delay_proposed_s"] > 0).all()


@pytest.mark.slow
def test_simulate_into_a_run_folder_is_refused_and_a_rerun_leaves_no_stale_file(cli, tmp_path):
    path = REPO / "scenarios" / "tiny_sfl.yaml"
    out = tmp_path / "o"
    assert cli("run", REPO / "scenarios" / "fedsllm_fig2.yaml", "--out", out)[0] == 0
    code, _, err = cli("simulate", path, "--out", out)
    assert code == 2 and "splitsim run" in err and "fedsllm_fig2" in err
    assert cli("simulate", path, "--out", out, "--overwrite", "--events", "csv")[0] == 0
    assert not (out / "report.md").exists() and not (out / "latency_vs_power.csv").exists()
    assert json.loads((out / "run.json").read_text())["command"] == "simulate"
    assert cli("simulate", path, "--out", out)[0] == 0  # the same run again: allowed, starts afresh
    assert (out / "events.parquet").is_file() and not (out / "events.csv").exists()


def test_overwrite_never_empties_a_folder_that_is_not_a_splitsim_run(cli, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    code, _, err = cli("simulate", REPO / "scenarios" / "tiny_sfl.yaml", "--out", out, "--overwrite")
    assert code == 2 and "holds no splitsim run" in err and (out / "thesis.tex").read_text() == "precious"


# ---- 2. an interrupted sweep stops at once, keeps every finished point, says how to resume ---------

def _slow_sweep(tmp_path: Path) -> tuple[list[str], Path]:
    base = write(tmp_path / "slow.yaml", {
        "name": "slow", "seed": 7, "cell": {"users": 40}, "workload": {"dataset_samples": 4000},
        "theory": {"epsilon0": 0.01}, "simulation": {"record_events": False}, "study": {"kind": "simulate"}})
    out = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "splitsim.analysis.cli", "sweep", str(base), "--set", "seed=1,2,3,4,5,6,7,8",
           "--out", str(out), "--workers", "2"]
    return cmd, out


def _wait_for_first_point(proc: subprocess.Popen, out: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not list((out / "points").glob("*/result.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no point finished in time"
        time.sleep(0.2)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("how", ["sigint", "sigterm", "kill-worker"])
def test_interrupted_sweep_stops_promptly_keeps_points_and_resumes(tmp_path, how):
    cmd, out = _slow_sweep(tmp_path)
    # SIGINT as a terminal delivers it: a shell that runs the suite in the background (`bash .ci/run &`)
    # hands its children SIGINT ignored, and a sweep that ignores Ctrl-C would simply finish
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    _wait_for_first_point(proc, out)
    workers = _children(proc.pid)
    sent = time.monotonic()
    if how == "sigint":
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole process group
    elif how == "sigterm":
        proc.send_signal(signal.SIGTERM)
    else:
        os.kill(max(workers), signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    stopped_in = time.monotonic() - sent
    assert stopped_in < 15, f"took {stopped_in:.1f} s to stop"
    assert proc.returncode == (1 if how == "kill-worker" else 130), err
    assert "Traceback" not in err and "resume with: splitsim sweep" in err
    assert ("worker died" in err) if how == "kill-worker" else ("interrupted" in err)
    time.sleep(0.5)
    assert not [p for p in workers if Path(f"/proc/{p}").exists() and "zombie" not in
                Path(f"/proc/{p}/status").read_text()], "workers left running"
    kept = [json.loads(p.read_text()) for p in (out / "points").glob("*/result.json")]
    assert kept and all(r["row"]["status"] == "ok" for r in kept)
    if how == "sigint":  # resuming is the same after any of the three
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300)
        assert done.returncode == 0, done.stderr
        assert f"({len(kept)} done before, {8 - len(kept)} run now)" in done.stdout


# ---- 3. fields that do nothing are errors (sweeps) or warnings (files) ------------------------------

def test_sweeping_a_field_the_study_does_not_read_is_an_error(cli, tmp_path):
    code, _, err = cli("sweep", REPO / "scenarios" / "fedsllm_fig2.yaml", "--set", "radio.max_tx_power_dbm=0,10",
                       "--out", tmp_path / "o")
    assert code == 2 and "radio.max_tx_power_dbm" in err and "no effect" in err and "study.tx_power_dbm" in err
    assert not (tmp_path / "o").exists()


def test_the_docs_sweep_example_changes_every_row():
    from splitsim.analysis.sweep import expand_grid, parse_set
    from splitsim.scenarios import read_yaml

    readme = (REPO / "docs" / "sweeps.md").read_text()
    command = readme[readme.index(".venv/bin/splitsim sweep"):].split("```")[0]
    sets = [part.split()[0] for part in command.split("--set ")[1:]]
    path = REPO / command.split()[2]
    points = expand_grid(read_yaml(path.read_text()), [parse_set(s) for s in sets], path.parent)
    assert len({p.digest for p in points}) == len(points) > 1


def test_latency_vs_power_with_another_scheme_is_an_error(cli, tmp_path):
    path = write(tmp_path / "s.yaml", {"scheme": "splitllm", "cell": {"edge_servers": 2},
                                       "model": {**TINY_MODEL, "cut_layers": [1, 2]},
                                       "study": {"kind": "latency_vs_power"}})
    code, _, err = cli("validate", path)
    assert code == 2 and "scheme" in err and "latency_vs_power" in err


def test_sweeping_a_model_field_without_a_model_is_an_error(cli, tmp_path):
    code, _, err = cli("sweep", REPO / "scenarios" / "tiny_sfl.yaml", "--set", "model.batch_size=8,16",
                       "--out", tmp_path / "o")
    assert code == 2 and "no model section" in err


def test_a_field_set_in_a_file_that_does_nothing_is_a_warning(cli, tmp_path):
    path = write(tmp_path / "s.yaml", {"radio": {"max_tx_power_dbm": 15.0},
                                       "study": {"kind": "latency_vs_power", "cuts": [1, 2]}})
    code, _, err = cli("validate", path)
    assert code == 0
    assert "warning:" in err and "radio.max_tx_power_dbm: has no effect" in err and "study.cuts" in err


# ---- 4. comparisons on equal terms -----------------------------------------------------------------

def _splitllm_world(edges: int, spectrum: str, downlink: bool = False):
    from splitsim.analysis import realise

    return realise(small_scenario(scheme="splitllm", cell={"users": 8, "edge_servers": edges},
                                  radio={"edge_spectrum": spectrum}, model={**TINY_MODEL, "cut_layers": [1, 3]},
                                  workload={"dataset_samples": 128},
                                  simulation={"rounds": 2, "downlink": downlink}))


def _plan(world):
    from splitsim.netsim import build_splitllm_plan
    from splitsim.scenarios import rng_for

    s = world.scenario
    return build_splitllm_plan(world.profile, s.model.cut_layers, s.compute, s.radio, s.simulation, s.channel,
                               world.edge_link, world.association, s.cell.edge_servers, world.batches_per_round(),
                               rng_for(0, "x"), world.edge_cross_gain)


def _shannon_s(bits: float, band_hz: float, signal_w: np.ndarray, noise_w: float, interference_w) -> np.ndarray:
    return bits / (band_hz * np.log2(1.0 + signal_w / (noise_w + interference_w)))


def test_splitllm_orthogonal_edges_each_get_a_sub_band():
    world = _splitllm_world(4, "orthogonal")
    plan, link = _plan(world), world.edge_link
    band = world.scenario.radio.uplink_main_bandwidth_hz / 4
    signal_w = 10 ** ((link.tx_power_dbm - 30) / 10) * 10 ** (link.gain_db / 10)
    noise_w = 10 ** ((link.noise_psd_dbm_per_hz - 30) / 10) * band
    expected = _shannon_s(plan.bits["activation"], band, signal_w, noise_w, 0.0)
    np.testing.assert_allclose(plan.uplink_s[0], expected, rtol=1e-12)


def test_splitllm_full_reuse_sees_the_other_edges_users():
    world = _splitllm_world(3, "reuse", downlink=True)
    plan, link, assoc = _plan(world), world.edge_link, world.association
    band = world.scenario.radio.uplink_main_bandwidth_hz
    p_w = 10 ** ((link.tx_power_dbm - 30) / 10)
    gains = world.edge_cross_gain
    interference = np.array([sum(p_w * np.mean([gains[k, m] for k in range(len(assoc)) if assoc[k] == other])
                                 for other in range(3) if other != m and (assoc == other).any())
                             for m in range(3)])
    noise_w = 10 ** ((link.noise_psd_dbm_per_hz - 30) / 10) * band
    expected = _shannon_s(plan.bits["activation"], band, p_w * gains[np.arange(len(assoc)), assoc], noise_w,
                          interference[assoc])
    np.testing.assert_allclose(plan.uplink_s[0], expected, rtol=1e-10)
    assert (interference > 0).all()
    # downlink: each user hears the other edges transmitting at the edge power
    radio = world.scenario.radio
    p_edge = 10 ** ((radio.edge_tx_power_dbm - 30) / 10)
    own = gains[np.arange(len(assoc)), assoc]
    heard = np.array([p_edge * sum(gains[k, m] for m in range(3) if m != assoc[k]) for k in range(len(assoc))])
    down_noise = 10 ** ((link.noise_psd_dbm_per_hz - 30) / 10) * radio.downlink_bandwidth_hz
    expected = _shannon_s(plan.bits["gradient"], radio.downlink_bandwidth_hz, p_edge * own, down_noise, heard)
    np.testing.assert_allclose(plan.downlink_gradient_s[0], expected, rtol=1e-10)


def test_with_one_edge_both_spectrum_plans_agree():
    from splitsim.analysis.schemes import run_scheme

    a = run_scheme(_splitllm_world(1, "orthogonal"), "splitllm").result.total_delay_s
    b = run_scheme(_splitllm_world(1, "reuse"), "splitllm").result.total_delay_s
    assert a == pytest.approx(b, rel=1e-12)


def test_scheme_comparison_states_its_spectrum_plan(cli, tmp_path):
    path = write(tmp_path / "s.yaml", {"scheme": "splitllm", "seed": 1, "cell": {"users": 8, "edge_servers": 2},
                                       "workload": {"dataset_samples": 256},
                                       "model": {**TINY_MODEL, "cut_layers": [1, 3]}, "simulation": {"rounds": 2},
                                       "study": {"kind": "scheme_comparison"}})
    assert cli("run", path, "--out", tmp_path / "o")[0] == 0
    report = (tmp_path / "o" / "report.md").read_text()
    assert "Spectrum (`radio.edge_spectrum: orthogonal`)" in report and "B_s/M" in report
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert "orthogonal" in summary["spectrum"]["splitllm"]


def test_profile_tables_count_sl_adapters_and_the_simulators_batches():
    from splitsim.analysis import realise
    from splitsim.analysis.profile_report import batches_per_round, traffic_table

    scenario = small_scenario(cell={"users": 7}, workload={"dataset_samples": 250, "data_split": "multinomial"},
                              model={**TINY_MODEL, "cut_layers": [1]})
    world = realise(scenario)
    np.testing.assert_array_equal(batches_per_round(scenario), world.batches_per_round())
    table = traffic_table(world.profile, scenario).set_index("scheme")
    assert table.loc["SL", "adapters_gib"] == table.loc["SplitLLM", "adapters_gib"] > 0
    b = world.profile.boundary(1)
    expected = world.batches_per_round().mean() * (b.forward_bytes + b.backward_bytes) / 2**30
    assert table.loc["SL", "activations_gradients_gib"] == pytest.approx(expected, rel=1e-12)


# ---- 5. feasibility checks every tier --------------------------------------------------------------

@pytest.mark.slow
def test_cut_study_marks_a_server_that_does_not_fit(cli, tmp_path):
    path = write(tmp_path / "s.yaml", {"seed": 1, "cell": {"users": 8}, "workload": {"dataset_samples": 256},
                                       "theory": {"epsilon0": 0.2}, "compute": {"server_device": "jetson-orin-nano"},
                                       "model": {**TINY_MODEL, "source": "bert-base", "sequence_length": 128,
                                                 "batch_size": 16, "cut_layers": [1]},
                                       "study": {"kind": "cut_layer", "cuts": [1, 11]}})
    code, _, err = cli("run", path, "--out", tmp_path / "o")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "o" / "cut_layer.csv").set_index("cut")
    assert not table.loc[1, "feasible"] and "server needs" in table.loc[1, "infeasible_reason"]
    assert "jetson-orin-nano" in table.loc[1, "infeasible_reason"]
    assert table.loc[11, "feasible"] and table.loc[11, "server_memory_gib"] < 8


# ---- 6. validate catches what a run would reject, without building a model -------------------------

def _validate_in_fresh_process(path: Path) -> tuple[int, str, bool]:
    code = ("import sys; from analysis.cli import main; sys.argv = ['splitsim', 'validate', %r]\n"
            "try:\n    main()\nexcept SystemExit as e:\n    rc = e.code\nelse:\n    rc = 0\n"
            "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH'); sys.exit(rc)") % str(path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stderr, "NO-TORCH" in done.stdout


@pytest.mark.parametrize("model,field,message", [
    ({"source": "bert-bsae"}, "model.source", "did you mean 'bert-base'"),
    ({"source": "./no/such/folder"}, "model.source", "no such folder"),
    ({"source": "bert-base", "cut_layers": [13]}, "model.cut_layers", "[0, 12]"),
    ({"source": "gpt2-tiny", "sequence_length": 512}, "model.sequence_length", "maximum of 128"),
    ({"source": "llama-tiny", "dtype": "bfloat16", "base_dtype": "float32"}, "model.base_dtype", "cannot be computed"),
    ({"source": "llama-tiny", "dtype": "float16", "base_dtype": "bfloat16"}, "model.base_dtype", "cannot be computed"),
    ({"source": "llama-3.1-8b", "sequence_length": 200000}, "model.sequence_length", "maximum of 131072"),
])
def test_validate_checks_the_model_without_building_it(tmp_path, model, field, message):
    path = write(tmp_path / "s.yaml", {"model": model})
    code, err, no_torch = _validate_in_fresh_process(path)
    assert code == 2 and field in err and message in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and no_torch
    if "did you mean" in message:
        assert "presets: bert-base" in err


@pytest.mark.parametrize("data,field,message", [
    ({"study": {"kind": "cut_layer"}}, "model", "needs a model"),
    ({"model": {"source": "bert-tiny"}, "study": {"kind": "cut_layer", "cuts": [1, 7]}}, "study.cuts", "[0, 4]"),
    ({"scheme": "fl", "model": {"source": "bert-tiny"}, "study": {"kind": "cut_layer"}}, "scheme", "no cut layer"),
    ({"model": {"source": "bert-tiny"}, "study": {"kind": "joint_cut"}, "scheme": "sl"}, "scheme", "SFL"),
    ({"model": {"source": "vit-tiny"}, "training": {"dataset": "mrpc", "data_path": "."}}, "training.dataset",
     "text task"),
])
def test_validate_checks_what_the_study_and_training_need(cli, tmp_path, data, field, message):
    code, _, err = cli("validate", write(tmp_path / "s.yaml", data))
    assert code == 2 and field in err and message in err and "Traceback" not in err


# ---- 7. resource guards ----------------------------------------------------------------------------

@pytest.mark.parametrize("data,command,field", [
    ({"workload": {"activation_bits": 1e30}}, "simulate", "simulation.max_events"),
    ({"cell": {"users": 1000000}}, "simulate", "cell.users"),
    ({"cell": {"users": 1000000}}, "validate", "cell.users"),
    ({"cell": {"users": 5000}, "optimizer": {"solver": "cvxpy"}}, "optimize", "optimizer.solver"),
])
def test_runs_that_cannot_finish_are_refused_in_one_line(cli, tmp_path, data, command, field):
    path = write(tmp_path / "s.yaml", data)
    args = (command, path) if command == "validate" else (command, path, "--out", tmp_path / "o")
    start = time.monotonic()
    code, _, err = cli(*args)
    assert code == 2 and field in err and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert time.monotonic() - start < 30


def test_implausible_values_get_a_warning(cli, tmp_path):
    path = write(tmp_path / "s.yaml", {"channel": {"noise_psd_dbm_per_hz": -120.0}, "radio": {"max_tx_power_dbm": 60.0},
                                       "cell": {"users": 20}, "workload": {"dataset_samples": 10}})
    code, _, err = cli("validate", path)
    assert code == 0
    for field in ("channel.noise_psd_dbm_per_hz", "radio.max_tx_power_dbm", "workload.dataset_samples"):
        assert f"warning: {path}: {field}" in err


# ---- 8. feedback on long work ----------------------------------------------------------------------

def test_profile_says_when_it_measures_and_when_it_reads_the_cache(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("SPLITSIM_CACHE_DIR", str(tmp_path / "cache"))
    path = write(tmp_path / "s.yaml", {"cell": {"users": 4}, "model": TINY_MODEL})
    code, _, err = cli("profile", path, "--out", tmp_path / "o")
    assert code == 0 and "profiling bert-tiny" in err and "profiled bert-tiny in" in err
    code, _, err = cli("profile", path, "--out", tmp_path / "o")
    assert code == 0 and "read from the cache" in err and "measured on cpu" in err


# ---- 9. a workflow from Python ---------------------------------------------------------------------

def test_model_copy_validates():
    from splitsim.scenarios import ScenarioError

    scenario = small_scenario()
    with pytest.raises(ScenarioError, match="users"):
        scenario.model_copy(update={"cell": scenario.cell.model_copy(update={"users": 0})})
    with pytest.raises(ScenarioError, match="edge_servers"):
        scenario.model_copy(update={"scheme": "splitllm"})


def test_with_changes_validates_like_a_file():
    import splitsim

    scenario = small_scenario()
    assert splitsim.with_changes(scenario, {"cell.users": 9}).cell.users == 9
    with pytest.raises(splitsim.ScenarioError, match="did you mean 'users'"):
        splitsim.with_changes(scenario, {"cell.usres": 9})
    with pytest.raises(splitsim.InputError, match="no model section"):
        splitsim.with_changes(scenario, {"model.batch_size": 8})


@pytest.mark.slow
def test_the_docs_python_example_runs(tmp_path, monkeypatch):
    readme = (REPO / "docs" / "getting-started.md").read_text()
    section = readme[readme.index("## From Python"):]
    code = section[section.index("```python") + len("```python"):].split("```")[0]
    monkeypatch.chdir(REPO)
    namespace = {"OUT": tmp_path}
    exec(compile(code.replace('"out/', 'OUT / "'), "docs/getting-started.md", "exec"), namespace)
    assert namespace["table"].loc["proposed", "T_s"] < namespace["table"].loc["BA", "T_s"]


@pytest.mark.slow
def test_the_example_script_runs(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "examples" / "quickstart.py")], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "simulated" in done.stdout and "delay_proposed_s" in done.stdout


# ---- 10. sweeps produce what people plot -----------------------------------------------------------

def test_sweep_table_has_every_strategys_delay_and_a_plot(cli, tmp_path):
    base = sfl_file(tmp_path / "b.yaml")
    out = tmp_path / "o"
    assert cli("sweep", base, "--set", "cell.users=4,6", "--set", "radio.uplink_main_bandwidth_hz=10e6,20e6",
               "--out", out, "--workers", "1")[0] == 0
    table = pd.read_csv(out / "results.csv")
    for strategy in ("proposed", "EB", "FE", "BA"):
        assert (table[f"delay_{strategy}_s"] > 0).all()
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    assert "sweep.png" in (out / "report.md").read_text()


# ---- 12. start-up, workers, paths ------------------------------------------------------------------

def test_the_cli_imports_nothing_heavy_at_start():
    code = "import sys, analysis.cli; print(sorted({'torch', 'cvxpy', 'pandas', 'simpy', 'matplotlib'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


def test_zero_workers_is_an_error(cli, tmp_path):
    code, _, err = cli("sweep", sfl_file(tmp_path / "b.yaml"), "--set", "cell.users=4,6", "--out", tmp_path / "o",
                       "--workers", "0")
    assert code == 2 and "--workers" in err and not (tmp_path / "o").exists()


def test_relative_paths_resolve_against_the_scenario_file(cli, tmp_path, monkeypatch):
    from splitsim.analysis.world import load_profile
    from splitsim.scenarios import load_scenario

    folder = tmp_path / "study"
    folder.mkdir()
    profile = load_profile(small_scenario(model={**TINY_MODEL, "cut_layers": [1]}))
    profile.save(folder / "profile.json")
    path = write(folder / "s.yaml", {"model": {**TINY_MODEL, "profile_path": "profile.json"}})
    monkeypatch.chdir(tmp_path)  # not the scenario's folder
    assert Path(load_scenario(path).model.profile_path) == folder / "profile.json"
    assert cli("validate", path)[0] == 0


# ---- 11. plots that read at a glance ---------------------------------------------------------------

@pytest.fixture
def figures(monkeypatch):
    """Keep each figure a plot function makes (instead of saving and closing it)."""
    import splitsim.analysis.plots as plots

    kept = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, **layout: kept.append(fig) or path)
    return kept


def test_cut_plot_shows_every_tier_against_its_limit_and_traffic_on_its_own_axis(figures, tmp_path):
    from splitsim.analysis import plots

    table = pd.DataFrame({"cut": [1, 2, 3], "user_memory_gib": [0.3, 0.6, 0.9], "server_memory_gib": [30.0, 20.0, 9.0],
                          "feasible": [False, True, True], "T_proposed_s": [1.0, 2.0, 3.0], "T_BA_s": [2.0, 3.0, 4.0],
                          "user_gflop_per_sample": [1.0, 2.0, 3.0], "user_traffic_gib_per_round": [0.13] * 3})
    plots.cut_layer_sfl(table, tmp_path / "c.png", {"user": 1.0, "server": 24.0})
    delay, memory, compute, traffic = figures[0].axes
    labels = [line.get_label() for line in memory.get_lines()]
    assert "server" in labels and "user" in labels and memory.get_yscale() == "log"
    assert any("24 GiB" in label for label in labels) and any("1 GiB" in label for label in labels)
    assert traffic.get_ylim()[0] == 0 and len(figures[0].axes) == 4  # no twin axis
    fig = figures[0]
    fig.tight_layout(rect=(0, 0.07, 1, 1))  # as plots._save lays it out
    fig.canvas.draw()
    (legend,) = fig.legends  # one legend for the panels, below all of them, where it hides no curve
    assert legend.get_window_extent().y1 <= min(ax.get_window_extent().y0 for ax in fig.axes)
    assert "a tier over its device's usable memory" in [t.get_text() for t in legend.get_texts()]


def test_scheme_comparison_memory_is_on_a_log_axis_and_colours_follow_the_schemes(figures, tmp_path):
    from splitsim.analysis import plots

    table = pd.DataFrame({"label": ["SplitLLM", "FL"], "delay_s": [10.0, 5.0], "user_traffic_gib_per_round": [0.1, 0.01],
                          "user_memory_gib": [0.26, 2.1], "edge_memory_gib": [0.8, np.nan],
                          "cloud_memory_gib": [4.4, np.nan], "server_memory_gib": [np.nan, 0.01]})
    plots.scheme_comparison(table, tmp_path / "s.png")
    delay, traffic, memory = figures[0].axes
    assert memory.get_yscale() == "log"
    assert [tuple(p.get_facecolor()) for p in delay.patches] == [tuple(p.get_facecolor()) for p in traffic.patches]
    assert delay.patches[0].get_facecolor() != delay.patches[1].get_facecolor()


def test_joint_cut_plot_shows_delay_eta_and_bandwidth(figures, tmp_path):
    from splitsim.analysis import plots

    table = pd.DataFrame({"cut": [1, 2], "T_proposed_s": [10.0, 12.0], "eta_proposed": [0.9, 0.8],
                          "feasible": [True, False]})
    choice = {"cut": 1, "T_s": 10.0, "eta": 0.9,
              "allocation": {"users": [{"b_s_hz": 1e6, "b_c_hz": 2e6}, {"b_s_hz": 3e6, "b_c_hz": 1e6}]},
              "inputs": {"users": [{"c_hz": 1e8}, {"c_hz": 1e9}]}}
    plots.joint_cut(table, choice, tmp_path / "j.png")
    delay, eta, bandwidth = figures[0].axes
    assert delay.get_yscale() == "linear" and "η" in eta.get_ylabel() and "bandwidth" in bandwidth.get_ylabel()


@pytest.mark.slow
def test_interrupted_study_says_how_to_rerun_and_the_rerun_completes(tmp_path):
    """Ctrl-C in a one-shot command (here the delay-energy front) names the incomplete folder and the
    command that recomputes it; that command then finishes into the same folder."""
    path = write(tmp_path / "front.yaml", {
        "name": "front", "cell": {"users": 6}, "theory": {"epsilon0": 0.2},
        "study": {"kind": "delay_energy", "energy_budget_points": 200, "tx_power_dbm": [10.0]}})
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "splitsim.analysis.cli", "run", str(path), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (out / "scenario.resolved.yaml").exists():  # the study has claimed its folder and is solving
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert f"{out} is incomplete" in err and f"run {path} --out {out}" in err
    assert not (out / "delay_energy.csv").exists()
    small = dict(yaml.safe_load(path.read_text()))
    small["study"]["energy_budget_points"] = 2
    write(path, small)  # other inputs: the folder is refused; the original ones would be reused
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2 and "other inputs" in done.stderr
    done = subprocess.run(cmd + ["--overwrite"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (out / "delay_energy.csv").exists()


@pytest.mark.parametrize("free_gib, field", [(0.001, "model.weights"), (0.02, "model.batch_size")])
def test_a_real_weight_profile_that_cannot_fit_is_refused_at_validate(tmp_path, cli, monkeypatch, free_gib, field):
    """Issue 34, item 10: a model whose weights (or one step) exceed this machine's free memory is
    refused by `validate` — before any weight is built — naming the field, not after minutes of
    building by `run`. Weight-free profiling (model.weights: none) is the way out, and passes."""
    import yaml

    from splitsim.learning import profile as profiling

    monkeypatch.setenv("SPLITSIM_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached: it would be measured
    monkeypatch.setattr(profiling, "available_memory_bytes", lambda device: int(free_gib * 2**30))
    data = {"name": "big", "scheme": "sfl", "cell": {"users": 2},
            "model": {"source": "bert-tiny", "batch_size": 4096, "sequence_length": 128, "cut_layers": [1],
                      "weights": "random"}, "study": {"kind": "simulate"}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and field in err and "weight-free" in err and "Traceback" not in err, err
    data["model"]["weights"] = "none"
    path.write_text(yaml.safe_dump(data))
    assert cli("validate", path)[0] == 0

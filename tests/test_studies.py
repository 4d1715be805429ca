"""Studies from scenario files: each writes its table, plots, report and resolved scenario."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from splitsim.scenarios import SCENARIO_DIR, load_scenario

TINY_MODEL = {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32}


def write_scenario(path: Path, scheme: str, kind: str, model_cuts, **extra) -> Path:
    data = {"name": f"t-{kind}", "seed": 1, "scheme": scheme, "cell": {"users": 8, "edge_servers": 2},
            "workload": {"dataset_samples": 256}, "theory": {"epsilon0": 0.2},
            "model": {**TINY_MODEL, "cut_layers": model_cuts}, "simulation": {"rounds": 2},
            "study": {"kind": kind, **extra}}
    path.write_text(yaml.safe_dump(data))
    return path


def check_folder(out: Path, files: list[str]) -> dict:
    for name in files + ["report.md", "summary.json", "scenario.resolved.yaml"]:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = (out / "report.md").read_text()
    for name in files:
        if name.endswith(".png"):
            assert name in report
            assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert "git revision" in (out / "scenario.resolved.yaml").read_text()
    return json.loads((out / "summary.json").read_text())


def test_scheme_comparison(cli, tmp_path):
    path = write_scenario(tmp_path / "s.yaml", "splitllm", "scheme_comparison", [1, 3])
    code, out, err = cli("run", path, "--out", tmp_path / "o")
    assert code == 0, err
    summary = check_folder(tmp_path / "o", ["scheme_comparison.csv", "scheme_comparison.png"])
    table = pd.read_csv(tmp_path / "o" / "scheme_comparison.csv")
    assert list(table["scheme"]) == ["splitllm", "sfl", "fl", "sl"]
    split = table.set_index("scheme")
    assert split.loc["splitllm", "user_traffic_gib_per_round"] == split.loc["sl", "user_traffic_gib_per_round"]
    assert split.loc["fl", "user_memory_gib"] > split.loc["splitllm", "user_memory_gib"]
    assert summary["metrics"]["delay_sl_s"] == pytest.approx(split.loc["sl", "delay_s"])
    # energy per user and round: every scheme computes and uploads; FL trains the whole model on the user
    assert (split["user_compute_j_per_round"] > 0).all() and (split["user_uplink_j_per_round"] > 0).all()
    assert split.loc["fl", "user_compute_j_per_round"] > split.loc["splitllm", "user_compute_j_per_round"]
    assert (split["worst_user_j_per_round"] >= split["user_total_j_per_round"]).all()


def test_scheme_comparison_with_one_cut_fails_before_work(cli, tmp_path):
    path = write_scenario(tmp_path / "s.yaml", "sfl", "scheme_comparison", [1])
    code, _, err = cli("run", path, "--out", tmp_path / "o")
    assert code == 2 and "two model.cut_layers" in err and not (tmp_path / "o").exists()


@pytest.mark.parametrize("scheme,cuts", [("sfl", [1]), ("sl", [1]), ("splitllm", [1, 3])])
def test_cut_layer_study_marks_cuts_over_the_memory_limit(cli, tmp_path, scheme, cuts):
    path = write_scenario(tmp_path / "s.yaml", scheme, "cut_layer", cuts, user_memory_limit_gib=0.0011)
    code, out, err = cli("run", path, "--out", tmp_path / "o")
    assert code == 0, err
    check_folder(tmp_path / "o", ["cut_layer.csv", "cut_layer.png"])
    table = pd.read_csv(tmp_path / "o" / "cut_layer.csv")
    assert (~table["feasible"]).any() and table["feasible"].any()
    if scheme == "sfl":
        assert set(table["cut"]) == {1, 2, 3}
        for col in ("T_proposed_s", "T_EB_s", "T_FE_s", "T_BA_s"):
            assert col in table
        assert (table["T_proposed_s"] <= table["T_BA_s"]).all()
        assert (table["user_memory_gib"].diff().dropna() > 0).all(), "deeper cut, more user memory"
    if scheme == "splitllm":
        assert len(table) == 3  # pairs (1,2), (1,3), (2,3)
    assert "marked infeasible" in out


def test_joint_cut_picks_the_fastest_feasible_cut_and_simulates_it(cli, tmp_path):
    path = write_scenario(tmp_path / "s.yaml", "sfl", "joint_cut", [1], user_memory_limit_gib=0.0017)
    code, out, err = cli("run", path, "--out", tmp_path / "o")
    assert code == 0, err
    check_folder(tmp_path / "o", ["cut_layer.csv", "joint_cut.png", "joint_choice.json"])
    table = pd.read_csv(tmp_path / "o" / "cut_layer.csv")
    choice = json.loads((tmp_path / "o" / "joint_choice.json").read_text())
    feasible = table[table["feasible"]]
    assert choice["cut"] == int(feasible.loc[feasible["T_proposed_s"].idxmin(), "cut"])
    assert choice["T_simulated_s"] == pytest.approx(choice["T_s"], rel=1e-6)


def test_cut_study_rejects_fl_and_bad_cuts(cli, tmp_path):
    path = write_scenario(tmp_path / "s.yaml", "fl", "cut_layer", [1])
    code, _, err = cli("run", path, "--out", tmp_path / "o")
    assert code == 2 and "FL has no cut layer" in err
    path = write_scenario(tmp_path / "t.yaml", "sfl", "cut_layer", [1], cuts=[1, 9])
    code, _, err = cli("run", path, "--out", tmp_path / "o2")
    assert code == 2 and "study.cuts" in err


def test_latency_vs_power_takes_message_sizes_from_the_profile(cli, tmp_path):
    path = write_scenario(tmp_path / "s.yaml", "sfl", "latency_vs_power", [1], tx_power_dbm=[0, 20],
                          sensitivity_lipschitz_L=[1], sensitivity_gamma_over_L=[1])
    code, _, err = cli("run", path, "--out", tmp_path / "o")
    assert code == 0, err
    summary = check_folder(tmp_path / "o", ["latency_vs_power.csv", "latency_vs_power.png"])
    assert summary["metrics"]["reduction_vs_BA_pct"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["scheme_comparison_mrpc", "sfl_cut_bert", "splitllm_cut_mrpc", "joint_cut_bert",
                                  "fedsllm_bert_power", "llama8b_phone_cut", "llama8b_phone_cut_splitllm"])
def test_shipped_study_scenarios_run(cli, tmp_path, name):
    scenario = load_scenario(SCENARIO_DIR / f"{name}.yaml")
    code, out, err = cli("run", SCENARIO_DIR / f"{name}.yaml", "--out", tmp_path / name)
    assert code == 0, err
    assert (tmp_path / name / "report.md").is_file()
    pngs = list((tmp_path / name).glob("*.png"))
    assert pngs, f"{scenario.study.kind} wrote no plot"


# ---- sweeps --------------------------------------------------------------------------------

SWEEP_BASE = ("name: sw\nseed: 3\ncell: {users: 4}\nworkload: {dataset_samples: 400}\ntheory: {epsilon0: 0.3}\n"
              "simulation: {record_events: false}\nstudy: {kind: simulate}\n")


def test_sweep_grid_results_and_resume(cli, tmp_path):
    base = tmp_path / "b.yaml"
    base.write_text(SWEEP_BASE)
    args = ("sweep", base, "--set", "cell.users=2,4", "--set", "radio.max_tx_power_dbm=0,20", "--out", tmp_path / "o")
    code, out, err = cli(*args, "--workers", "1")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "o" / "results.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert {"cell.users", "radio.max_tx_power_dbm", "delay_proposed_s", "delay_BA_s"} <= set(table.columns)
    at = table.set_index(["cell.users", "radio.max_tx_power_dbm"])
    assert at.loc[(2, 20), "delay_BA_s"] < at.loc[(2, 0), "delay_BA_s"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "o" / "points").glob("*/result.json")}
    code, out, err = cli(*args)
    assert code == 0 and "4 done before, 0 run now" in out
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}
    assert (tmp_path / "o" / "report.md").is_file()


def test_sweep_of_list_valued_fields_writes_its_table_and_plot(cli, tmp_path):
    """Lists as sweep values (tier sets, cut pairs) crashed the plot with a traceback once the
    points were done; they are labels of the table and of the plot."""
    base = tmp_path / "b.yaml"
    base.write_text("name: lists\nscheme: splitllm\ncell: {users: 4, edge_servers: 2}\nsimulation: {rounds: 1}\n"
                    "model: {source: llama-tiny, task: causal_lm, weights: none, sequence_length: 16, batch_size: 2,"
                    " cut_layers: [1, 3]}\nstudy: {kind: simulate}\n")
    code, out, err = cli("sweep", base, "--set", "model.gradient_checkpointing=[],[user]",
                         "--set", "model.cut_layers=[1,2],[1,3]", "--out", tmp_path / "o", "--workers", "1")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "o" / "results.csv")
    assert len(table) == 4 and (table["status"] == "ok").all()
    assert (tmp_path / "o" / "sweep.png").stat().st_size > 0


def test_sweep_two_workers_equal_one(cli, tmp_path):
    base = tmp_path / "b.yaml"
    base.write_text(SWEEP_BASE)
    grid = ("--set", "radio.max_tx_power_dbm=0,10,20")
    assert cli("sweep", base, *grid, "--out", tmp_path / "one", "--workers", "1")[0] == 0
    assert cli("sweep", base, *grid, "--out", tmp_path / "two", "--workers", "2")[0] == 0
    one = pd.read_csv(tmp_path / "one" / "results.csv")
    two = pd.read_csv(tmp_path / "two" / "results.csv")
    pd.testing.assert_frame_equal(one, two)


@pytest.mark.parametrize("setting,message", [
    ("cell.usrs=3", "did you mean 'users'"),
    ("cell.users=2,x", "valid integer"),
    ("radio.max_tx_power_dbm=.nan", "finite number"),
    ("nosuchsection.x=1", "no field 'nosuchsection'"),
    ("cell.users", "expected PATH=VALUE"),
])
def test_sweep_bad_settings_fail_before_any_work(cli, tmp_path, setting, message):
    base = tmp_path / "b.yaml"
    base.write_text(SWEEP_BASE)
    code, _, err = cli("sweep", base, "--set", setting, "--out", tmp_path / "o")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_sweep_marks_infeasible_points_and_goes_on(cli, tmp_path):
    base = tmp_path / "b.yaml"
    base.write_text(write_scenario(tmp_path / "m.yaml", "sfl", "joint_cut", [1], cuts=[1, 2]).read_text())
    code, out, err = cli("sweep", base, "--set", "study.user_memory_limit_gib=100,1e-6", "--out", tmp_path / "o",
                         "--workers", "1")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "o" / "results.csv").set_index("study.user_memory_limit_gib")
    assert table.loc[100, "status"] == "ok"
    assert table.loc[1e-6, "status"] == "infeasible" and "user needs" in table.loc[1e-6, "message"]


def test_sweep_of_a_cut_the_model_lacks_fails_before_any_work(cli, tmp_path):
    base = tmp_path / "b.yaml"
    base.write_text(write_scenario(tmp_path / "m.yaml", "sfl", "cut_layer", [1]).read_text())
    code, out, err = cli("sweep", base, "--set", "model.cut_layers=[1],[9]", "--out", tmp_path / "o")
    assert code == 2 and "model.cut_layers" in err and "[0, 4]" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_killed_sweep_resumes_without_recomputing(tmp_path):
    base = tmp_path / "b.yaml"
    base.write_text(SWEEP_BASE)
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "splitsim.analysis.cli", "sweep", str(base), "--set", "cell.users=2,3,4,5,6,7,8,9",
           "--out", str(out), "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("points/*/result.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = {p: p.stat().st_mtime_ns for p in out.glob("points/*/result.json")}
    assert 2 <= len(done) < 8, "the sweep was killed part-way"
    assert not (out / "results.csv").exists()
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"{len(done)} done before, {8 - len(done)} run now" in result.stdout
    assert {p: p.stat().st_mtime_ns for p in done} == done
    assert len(pd.read_csv(out / "results.csv")) == 8


@pytest.mark.slow
def test_sweep_on_ray(cli, tmp_path):
    pytest.importorskip("ray", reason="the Ray engine needs `pip install splitsim[ray]`")
    base = tmp_path / "b.yaml"
    base.write_text(SWEEP_BASE)
    grid = ("--set", "radio.max_tx_power_dbm=0,20")
    assert cli("sweep", base, *grid, "--out", tmp_path / "local", "--workers", "1")[0] == 0
    code, out, err = cli("sweep", base, *grid, "--out", tmp_path / "ray", "--engine", "ray", "--workers", "2")
    assert code == 0, err
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "local" / "results.csv"),
                                  pd.read_csv(tmp_path / "ray" / "results.csv"))


def test_one_local_iteration_is_one_mini_batch_step_in_delay_and_traffic_alike(tmp_path):
    """#22.4: with a model, SFL's delay charges V mini-batch steps a round; the traffic column must
    describe that round (V x one step's tensors), not an epoch of the data set. Changing the data
    set's size changes neither (and validate says it has no effect)."""
    import splitsim

    base = {"name": "it", "cell": {"users": 4}, "theory": {"epsilon0": 0.2},
            "model": {"source": "bert-tiny", "cut_layers": [1], "sequence_length": 16, "batch_size": 2},
            "study": {"kind": "cut_layer", "cuts": [1, 2]}}
    tables = []
    for samples in (400, 4000):
        scenario = splitsim.parse_scenario({**base, "workload": {"dataset_samples": samples}})
        assert any("workload.dataset_samples: has no effect" in w for w in splitsim.validate(scenario))
        study = splitsim.run_study(scenario, tmp_path / str(samples))
        tables.append(study.tables["cut_layer"])
    a, b = tables
    assert list(a["T_proposed_s"]) == list(b["T_proposed_s"])
    assert list(a["user_traffic_gib_per_round"]) == list(b["user_traffic_gib_per_round"])
    from splitsim.optimizer import convergence_constants
    from splitsim.optimizer.delay_model import local_iterations

    profile = splitsim.profile(scenario)
    _, v = convergence_constants(scenario.theory)
    for row in a.itertuples():
        step = profile.boundary(row.cut)
        per_iteration = (step.forward_bytes + step.side_bytes + step.backward_bytes) / 2**30
        V = local_iterations(row.eta_proposed, v, scenario.theory.counts)  # the proposed allocation's
        assert row.user_traffic_gib_per_iteration == pytest.approx(per_iteration, rel=1e-12)
        assert row.user_traffic_gib_per_round == pytest.approx(V * per_iteration, rel=1e-12)

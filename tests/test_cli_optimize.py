"""`splitsim optimize` and the latency-vs-power study, end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from splitsim.scenarios import SCENARIO_DIR


def test_optimize_writes_allocation_json_that_can_be_re_evaluated_independently(cli, tmp_path):
    code, out, err = cli("optimize", SCENARIO_DIR / "tiny_sfl.yaml", "--out", tmp_path)
    assert code == 0, err
    data = json.loads((tmp_path / "allocation.json").read_text())
    inputs = data["inputs"]
    assert {"a", "v", "B_s_hz", "B_c_hz", "s_bits", "s_c_bits", "users"} <= set(inputs)
    assert set(data["strategies"]) == {"proposed", "EB", "FE", "BA"}
    c = np.array([u["c_hz"] for u in inputs["users"]])
    tau_coeff = np.array([u["tau_coeff_s"] for u in inputs["users"]])
    for name, strat in data["strategies"].items():
        assert {"T_s", "eta", "I0", "V", "users"} <= set(strat)
        b_s = np.array([u["b_s_hz"] for u in strat["users"]])
        b_c = np.array([u["b_c_hz"] for u in strat["users"]])
        # re-evaluate with nothing but the JSON: Shannon rates, eq. (15), budgets
        eta = strat["eta"]
        V, I0 = inputs["v"] * math.log2(1 / eta), inputs["a"] / (1 - eta)
        t_s = inputs["s_bits"] / (b_s * np.log2(1 + c / b_s))
        t_c = inputs["s_c_bits"] / (b_c * np.log2(1 + c / b_c))
        T_k = I0 * (tau_coeff * math.log2(1 / eta) + t_c + V * t_s)
        assert T_k.max() == pytest.approx(strat["T_s"], rel=1e-9), name
        assert b_s.sum() <= inputs["B_s_hz"] * (1 + 1e-9) and b_c.sum() <= inputs["B_c_hz"] * (1 + 1e-9)
    assert "below BA" in out


def test_optimize_with_unreachable_deadline_exits_2(cli, tmp_path):
    path = tmp_path / "deadline.yaml"
    path.write_text((SCENARIO_DIR / "tiny_sfl.yaml").read_text() + "optimizer:\n  max_delay_s: 1.0\n")
    code, _, err = cli("optimize", path, "--out", tmp_path / "o")
    assert code == 2
    assert "no allocation can serve this scenario" in err and "optimizer.max_delay_s" in err
    assert len(err.strip().splitlines()) == 1


def test_latency_vs_power_study_writes_table_plot_report(cli, tmp_path):
    path = tmp_path / "lvp.yaml"
    path.write_text(
        "name: lvp\nseed: 3\ncell: {users: 6}\nworkload: {dataset_samples: 600}\ntheory: {epsilon0: 0.2}\n"
        "study:\n  kind: latency_vs_power\n  tx_power_dbm: [0, 10, 20]\n  simulate_points: true\n"
        "  sensitivity_lipschitz_L: [1, 5]\n  sensitivity_gamma_over_L: [0.5, 1]\n")
    out = tmp_path / "out"
    code, stdout, err = cli("run", path, "--out", out)
    assert code == 0, err
    table = pd.read_csv(out / "latency_vs_power.csv")
    assert len(table) == 12 and set(table["strategy"]) == {"proposed", "EB", "FE", "BA"}
    assert np.allclose(table["T_simulated_s"], table["T_s"], rtol=1e-6)
    wide = table.pivot(index="tx_power_dbm", columns="strategy", values="T_s")
    assert (wide["proposed"] <= wide["EB"] * (1 + 1e-9)).all() and (wide["proposed"] <= wide["FE"] * (1 + 1e-9)).all()
    assert (wide["BA"].diff().dropna() < 0).all(), "more power, less delay"
    summary = json.loads((out / "summary.json").read_text())
    red = summary["mean_reduction_pct"]
    assert red["BA"] == pytest.approx((100 * (wide["BA"] - wide["proposed"]) / wide["BA"]).mean())
    assert "mean reduction of proposed vs BA" in stdout
    for name in ("latency_vs_power.png", "reduction_vs_theory.png", "report.md", "scenario.resolved.yaml"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "latency_vs_power.png").read_bytes()[:4] == b"\x89PNG"
    sens = pd.read_csv(out / "reduction_vs_theory.csv")
    assert len(sens) == 4 and {"v", "reduction_vs_BA_pct"} <= set(sens.columns)
    report = (out / "report.md").read_text()
    assert "latency_vs_power.png" in report and "47.63" in report

"""One new seed's rounds-to-target: a 90 % prediction interval (issue 34, item 1), held against the
definition of one — new seeds drawn from a known curve fall inside it about 90 % of the time — and
against the runs the shipped curve was not fitted to."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import splitsim
from helpers import REPO
from splitsim.optimizer.convergence_fit import fedsllm_rounds, fit_seeds

SHIPPED = REPO / "scenarios" / "data" / "mrpc_convergence.json"


@pytest.mark.parametrize("sigma, new_v", [(0.2, 1.0), pytest.param(0.2, 4.0, marks=pytest.mark.slow),
                                          pytest.param(0.35, 20.0, marks=pytest.mark.slow)])
def test_new_seeds_fall_inside_the_90_percent_interval_90_percent_of_the_time(sigma, new_v):
    """A known curve R(V) = 10 / (1 - 2^(-V/3)) with log-normal seed scatter: fit 3 seeds at V = 2, 5,
    10, ask the interval at a V inside or outside the grid, draw one new seed from the truth. Over 300
    such experiments the share inside must be 90 % within its binomial spread (±3 sigma: 0.85-0.95)."""
    rng = np.random.default_rng(7)
    grid = np.repeat([2.0, 5.0, 10.0], 3)
    inside = 0
    trials = 300
    for _ in range(trials):
        rounds = fedsllm_rounds(grid, 10.0, 3.0) * np.exp(rng.normal(0.0, sigma, grid.size))
        runs = [{"local_steps": v, "rounds_to_target": float(r), "rounds_trained": float(r)} for v, r in zip(grid, rounds)]
        interval = fit_seeds(runs).interval(new_v)
        new = float(fedsllm_rounds(new_v, 10.0, 3.0)) * math.exp(rng.normal(0.0, sigma))
        inside += interval["low"] <= new <= interval["high"]
    share = inside / trials
    assert 0.85 <= share <= 0.95, share


def test_the_interval_of_another_form_covers_new_seeds_from_that_form():
    """The inverse form R(V) = 6 + 40 / V as the truth, fitted by fit_seeds(form='inverse') to 3 seeds at
    V = 2, 5, 10: new seeds at V = 3 fall inside the 90 % interval 85-95 % of 300 times."""
    from splitsim.optimizer.convergence_fit import predict

    rng = np.random.default_rng(11)
    grid = np.repeat([2.0, 5.0, 10.0], 3)
    truth = {"a1": 6.0, "a2": 40.0}
    inside = 0
    for _ in range(300):
        rounds = predict("inverse", truth, grid) * np.exp(rng.normal(0.0, 0.2, grid.size))
        runs = [{"local_steps": v, "rounds_to_target": float(r), "rounds_trained": float(r)} for v, r in zip(grid, rounds)]
        fit = fit_seeds(runs, "inverse")
        assert fit.form == "inverse" and set(fit.params) == {"a1", "a2"}
        interval = fit.interval(3.0)
        inside += interval["low"] <= float(predict("inverse", truth, 3.0)) * math.exp(rng.normal(0.0, 0.2)) \
            <= interval["high"]
    assert 0.85 <= inside / 300 <= 0.95, inside / 300


def test_the_form_is_chosen_by_how_well_it_predicts_a_v_it_was_not_fitted_to():
    """Noise-free rounds from each form at V = 1, 2, 4, 8, 16: leaving one V out, the form that made
    them predicts it exactly and is chosen; the held-out errors are those of a fit without that V."""
    from splitsim.optimizer.convergence_fit import RoundsPoint, fit_all, fit_form, predict

    V = [1, 2, 4, 8, 16]
    for form, truth in (("fedsllm", {"a": 8.0, "v": 3.0}), ("inverse", {"a1": 6.0, "a2": 40.0})):
        points = [RoundsPoint(v, float(predict(form, truth, v)), 1.0, 2, 0) for v in V]
        fits = fit_all(points)
        assert fits["criterion"].startswith("held-out") and fits["better"] == form
        assert fits[form]["held_out_rms_pct"] < 0.1
        # by hand: the other two-constant form without V = 16, predicting it
        other = "inverse" if form == "fedsllm" else "fedsllm"
        fit = fit_form(other, points[:-1])
        error = 100 * (float(predict(other, fit.params, 16)) - points[-1].mean_rounds) / points[-1].mean_rounds
        assert fits[other]["held_out_errors_pct"][-1] == pytest.approx(error, rel=1e-6)
        assert fits[other]["held_out_rms_pct"] > 1.0


def test_a_censored_run_is_a_lower_bound_not_an_exact_value():
    """A seed that never reached the target within 40 rounds pulls the curve up, not down to 40."""
    runs = [{"local_steps": 2, "rounds_to_target": 30.0, "rounds_trained": 30},
            {"local_steps": 2, "rounds_to_target": None, "rounds_trained": 40},
            {"local_steps": 5, "rounds_to_target": 17.0, "rounds_trained": 17},
            {"local_steps": 5, "rounds_to_target": 15.0, "rounds_trained": 15},
            {"local_steps": 10, "rounds_to_target": 12.0, "rounds_trained": 12},
            {"local_steps": 10, "rounds_to_target": 11.0, "rounds_trained": 11}]
    censored = fit_seeds(runs)
    as_exact = fit_seeds([{**r, "rounds_to_target": r["rounds_to_target"] or 40.0} for r in runs])
    assert censored.censored == 1 and as_exact.censored == 0
    assert censored.interval(2.0)["rounds"] > as_exact.interval(2.0)["rounds"]


def test_the_public_function_on_the_shipped_curve_and_the_runs_it_never_saw():
    """splitsim.rounds_to_target: the held-out seed at V = 1 (55 rounds) and the runs made later,
    outside the grid (issue 34: at V = 3 two seeds took 23 and 19 rounds, the old fit's 22.4 off by
    -2.6 % and +17.9 %; at V = 20 one took 8, the old fit said 10.8), all fall inside their 90 %
    intervals."""
    data = json.loads(SHIPPED.read_text())
    assert all(isinstance(r["rounds_to_target"], (int, float)) for r in data["runs"])
    for V, measured in [(1, 55), (3, 23), (3, 19), (20, 8)]:
        answer = splitsim.rounds_to_target(SHIPPED, V)
        assert set(answer) == {"rounds", "low", "high", "level", "form", "runs"}
        assert answer["low"] < answer["rounds"] < answer["high"]
        assert answer["low"] <= measured <= answer["high"], (V, measured, answer)
    wide, narrow = splitsim.rounds_to_target(SHIPPED, 1), splitsim.rounds_to_target(SHIPPED, 5)
    assert wide["high"] / wide["low"] > narrow["high"] / narrow["low"]  # extrapolation is less certain


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(splitsim.InputError, match="local_steps"):
        splitsim.rounds_to_target(SHIPPED, 0)
    with pytest.raises(splitsim.InputError, match="convergence_path"):
        splitsim.rounds_to_target(tmp_path / "none.json", 2)


def test_the_docs_table_is_what_the_function_gives():
    page = (REPO / "docs" / "studies" / "convergence.md").read_text()
    block = page.split("<!-- rounds-interval-table -->")[1].split("<!-- /rounds-interval-table -->")[0]
    rows = [line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:]]
    assert rows
    for V, rounds, low, high in rows:
        answer = splitsim.rounds_to_target(SHIPPED, float(V))
        assert (rounds, low, high) == tuple(f"{answer[k]:.1f}" for k in ("rounds", "low", "high"))


def _measured_scenario(tmp_path, kind: str, **study):
    import yaml

    data = yaml.safe_load((REPO / "scenarios" / "fig2_measured_convergence.yaml").read_text())
    data["theory"]["convergence_path"] = str(SHIPPED)
    data["study"] = {"kind": kind, **study}
    path = tmp_path / "measured.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_delay_from_a_measured_curve_carries_one_new_seeds_interval(tmp_path, cli):
    """latency_vs_power on the shipped curve: each delay's 90 % band is the round time (T / rounds)
    times splitsim.rounds_to_target's interval at the strategy's V, in the CSV, summary.json, the
    report and the figure; the delay lies inside it. `simulate` gives the same band to each
    simulated delay."""
    import pandas as pd

    code, _, err = cli("run", _measured_scenario(tmp_path, "latency_vs_power", tx_power_dbm=[10]), "--out",
                       tmp_path / "sweep", "--no-progress")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "sweep" / "latency_vs_power.csv")
    assert len(table) == 4
    for row in table.itertuples():
        band = splitsim.rounds_to_target(SHIPPED, row.V)
        assert row.T_low_90_s == pytest.approx(row.T_s / row.I0 * band["low"], rel=1e-9)
        assert row.T_high_90_s == pytest.approx(row.T_s / row.I0 * band["high"], rel=1e-9)
        assert row.T_low_90_s < row.T_s < row.T_high_90_s
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    assert summary["delay_interval_90"]["level"] == 0.9
    assert {r["strategy"] for r in summary["rows"] if "T_low_90_s" in r} == set(table["strategy"])
    assert "90 %:" in (tmp_path / "sweep" / "report.md").read_text()

    code, out, err = cli("run", _measured_scenario(tmp_path, "simulate"), "--out", tmp_path / "sim", "--no-progress")
    assert code == 0, err
    simulations = json.loads((tmp_path / "sim" / "summary.json").read_text())["simulations"]
    for name, s in simulations.items():
        band = splitsim.rounds_to_target(SHIPPED, s["local_iterations"])
        per_round = s["total_delay_s"] / s["rounds"]
        assert s["total_delay_interval_90"]["low_s"] == pytest.approx(per_round * band["low"], rel=1e-9), name
        assert s["total_delay_interval_90"]["high_s"] == pytest.approx(per_round * band["high"], rel=1e-9), name
    assert "90 % of new seeds" in out


def test_the_bound_has_no_interval(tmp_path, cli):
    """FedsLLM's bound is not a measurement: no band beside its delays."""
    import pandas as pd

    code, _, err = cli("run", REPO / "scenarios" / "fedsllm_fig2.yaml", "--out", tmp_path / "out", "--no-progress")
    assert code == 0, err
    assert not any("90" in c for c in pd.read_csv(tmp_path / "out" / "latency_vs_power.csv").columns)
    assert "delay_interval_90" not in json.loads((tmp_path / "out" / "summary.json").read_text())


@pytest.mark.slow
def test_the_docs_measured_strategies_table_is_what_the_study_gives(tmp_path, cli):
    """docs/studies/convergence.md's table: fig2_measured_convergence.yaml at 10 dBm, the bound's
    and the measured curve's V, rounds and delay, with the measured delay's 90 % band."""
    import pandas as pd

    code, _, err = cli("run", REPO / "scenarios" / "fig2_measured_convergence.yaml", "--out", tmp_path / "out",
                       "--no-progress")
    assert code == 0, err
    at = lambda name: pd.read_csv(tmp_path / "out" / name).query("tx_power_dbm == 10").set_index("strategy")  # noqa: E731
    measured, bound = at("latency_vs_power.csv"), at("latency_vs_power_bound.csv")
    page = (REPO / "docs" / "studies" / "convergence.md").read_text()
    block = page.split("<!-- measured-strategies-table -->")[1].split("<!-- /measured-strategies-table -->")[0]
    rows = [line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:]]
    assert [r[0] for r in rows] == ["proposed", "EB", "FE", "BA"]

    def seconds(x):
        return f"{x:,.0f}"

    for name, on_bound, on_measured in rows:
        b, m = bound.loc[name], measured.loc[name]
        assert on_bound == f"{b.V:.3g}, {b.I0:.0f}, {seconds(b.T_s)} s"
        assert on_measured == (f"{m.V:.3g}, {m.I0:.1f}, {seconds(m.T_s)} s ({seconds(m.T_low_90_s)}–"
                               f"{seconds(m.T_high_90_s)} s)")


def test_the_docs_per_v_table_is_the_shipped_curves():
    """docs/studies/convergence.md's per-V table (every seed's rounds, the forms' fits, the held-out V's
    prediction, the check) is what scripts/docs_tables.py makes of the committed curve; the script also
    reproduces the page's other two tables' sources (`--check` passes)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_tables", REPO / "scripts" / "docs_tables.py")
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    curve = json.loads(SHIPPED.read_text())
    page = (REPO / "docs" / "studies" / "convergence.md").read_text()
    assert tables.table_in(page, "measured-rounds-table") == tables.measured_rounds_table(curve)
    assert tables.table_in(page, "rounds-interval-table") == tables.rounds_interval_table(SHIPPED)
    runs = {(r["local_steps"], r["seed"]) for r in curve["runs"]}
    assert runs == {(V, s) for V in curve["settings"]["local_steps"] for s in curve["settings"]["seeds"]}

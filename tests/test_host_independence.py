"""Simulated results do not depend on the host (issue 34, item 4): the re-solve time a re-planned
run counts is the base station's modelled budget unless the scenario asks for 'measured'."""

from __future__ import annotations

import json

import pytest
import yaml

import splitsim.analysis.replan as replan
from splitsim.scenarios.schema import REPLAN_SOLVE_BUDGET_S

SCENARIO = {"name": "moving", "seed": 3, "cell": {"users": 6}, "workload": {"dataset_samples": 600},
            "theory": {"epsilon0": 0.2},
            "channel": {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.5},
            "optimizer": {"strategies": ["proposed", "EB", "proposed_replan"], "replan_interval_s": 0.5},
            "study": {"kind": "robustness", "seeds": 2}}


def _run(tmp_path, cli, name: str, **optimizer) -> dict:
    data = json.loads(json.dumps(SCENARIO))
    data["optimizer"].update(optimizer)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("run", path, "--out", tmp_path / name, "--no-progress")
    assert code == 0, err
    return json.loads((tmp_path / name / "summary.json").read_text())


def test_two_runs_on_hosts_of_any_speed_give_identical_numbers(tmp_path, cli, monkeypatch):
    # a host of one speed, then a host ten times slower: the default never times the solver
    import splitsim.analysis.studies.robustness as robustness

    for module in (replan, robustness):
        monkeypatch.setattr(module, "measured_solve_s", lambda *a, **k: pytest.fail("the default timed this host"))
    monkeypatch.setattr(replan, "_MEASURED", {})
    first = _run(tmp_path, cli, "first")
    second = _run(tmp_path, cli, "second")
    assert first["metrics"] == second["metrics"]
    assert first["replan_solve_s"] == REPLAN_SOLVE_BUDGET_S
    assert first["replan_solve_s_source"] == "the base station's modelled budget"


def test_measured_solve_time_is_an_explicit_option_and_is_recorded(tmp_path, cli, monkeypatch):
    import splitsim.analysis.studies.robustness as robustness

    monkeypatch.setattr(robustness, "measured_solve_s", lambda *a, **k: 0.123)
    summary = _run(tmp_path, cli, "measured", replan_solve_s="measured")
    assert summary["replan_solve_s"] == 0.123
    assert summary["replan_solve_s_source"].startswith("measured on this machine")
    report = (tmp_path / "measured" / "report.md").read_text()
    assert "0.123 s" in report and "host-dependent" in report


@pytest.mark.parametrize("value", ["fast", -1.0, float("nan"), True])
def test_a_bad_solve_time_is_one_line(tmp_path, cli, value):
    data = json.loads(json.dumps(SCENARIO))
    data["optimizer"]["replan_solve_s"] = value
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "optimizer.replan_solve_s" in err, err


def test_a_robustness_run_without_a_terminal_says_how_far_it_is(tmp_path, capsys):
    """issue 34, item 16: `splitsim run` of a robustness study into a log file printed nothing for its
    whole run; it now logs a line about every 5 % of its runs, with the time left."""
    from helpers import run_cli

    data = json.loads(json.dumps(SCENARIO))
    path = tmp_path / "quiet.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = run_cli(["run", path, "--out", tmp_path / "out", "--no-progress"], capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("robustness: ")]
    assert lines and lines[-1].startswith("robustness: 6 of 6 runs"), err
    assert any("min left" in line for line in lines[:-1]), lines


def test_a_loop_without_a_terminal_logs_its_progress_unless_it_is_quick(monkeypatch, caplog):
    """issue 34, item 16: without a terminal (a log file, a batch job) the studies' loops (powers,
    cuts, budgets, simulated rounds, trained rounds) log a line about every 5 %, at least QUIET_S
    apart, with the time left; a loop quicker than that says nothing; --no-progress silences both."""
    import logging

    from splitsim.analysis import progress

    clock = {"now": 0.0}
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(progress.sys.stderr, "isatty", lambda: False, raising=False)
    caplog.set_level(logging.INFO, logger="splitsim.analysis")

    def run(seconds_each: float, enabled=None) -> list[str]:
        caplog.clear()
        for _ in progress.progress_iter(list(range(40)), "budgets", enabled):
            clock["now"] += seconds_each
        with progress.progress_bar(40, "train", enabled) as bar:
            for _ in range(40):
                clock["now"] += seconds_each
                bar.update(1)
        return [r.getMessage() for r in caplog.records]

    slow = run(3.0)  # 2 min per loop: a line every 10 s or so
    assert any(line.startswith("budgets: ") and "min left" in line for line in slow), slow
    assert any(line.startswith("train: 40 of 40 rounds") for line in slow), slow
    assert run(0.01) == []  # 0.4 s per loop
    assert run(3.0, enabled=False) == []


def test_the_time_left_comes_from_the_work_done_not_from_cached_rounds(monkeypatch, caplog):
    """issue 34, item 16 (the convergence ETA swung from 36 to 3 minutes): rounds resumed from a
    checkpoint, and rounds a run that stopped early never needed, are counted as done but at no
    cost. 100 rounds cached, then 10 s per trained round: with 200 of 400 left, 2000 s remain."""
    import logging

    from splitsim.analysis import progress

    clock = {"now": 0.0}
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock["now"])
    caplog.set_level(logging.INFO, logger="splitsim.analysis")
    bar = progress.ProgressLog(400, "convergence", "rounds", share=0.01)
    for _ in range(100):
        clock["now"] += 0.05  # a checkpoint's read
        bar.skip()
    assert caplog.records[-1].getMessage().endswith("time left not yet known"), caplog.records[-1].getMessage()
    for _ in range(100):
        clock["now"] += 10.0
        bar.step()
    last = caplog.records[-1].getMessage()
    assert last.startswith("convergence: 200 of 400 rounds (100 cached or not needed)"), last
    assert last.endswith("about 33.3 min left"), last  # 200 rounds x 10 s; counting the cached ones: 16.7


def test_a_profile_measured_under_load_is_measured_again_where_its_step_times_are_the_result(monkeypatch):
    """issue 34, item 5: a cached profile whose step times were taken under load is measured again
    by the callers whose result holds them ("if_loaded": the `profile` command, the testbed) when the
    host is quiet now, and kept (with its note) when the host is still busy or the caller only needs
    its shapes."""
    import splitsim.learning.profile as prof
    from splitsim.learning.profile import LOADED_PER_CPU, profile_model
    from splitsim.learning import LoraSpec, ModelSpec

    spec, lora = ModelSpec("bert-tiny", num_labels=2), LoraSpec(rank=2)
    load = {"now": 3.0}
    monkeypatch.setattr(prof, "host_load_per_cpu", lambda: load["now"])
    first = profile_model(spec, lora, 4, 16, remeasure=True)
    assert first.environment["load_per_cpu"] == 3.0 > LOADED_PER_CPU
    load["now"] = 2.0  # still busy: kept
    assert profile_model(spec, lora, 4, 16, remeasure="if_loaded").environment["load_per_cpu"] == 3.0
    load["now"] = 0.1  # quiet now: shapes-only callers keep it, the step-time callers measure again
    assert profile_model(spec, lora, 4, 16).environment["load_per_cpu"] == 3.0
    again = profile_model(spec, lora, 4, 16, remeasure="if_loaded")
    assert again.environment["load_per_cpu"] == 0.1
    assert profile_model(spec, lora, 4, 16).environment["load_per_cpu"] == 0.1  # and it replaced the cache


@pytest.mark.parametrize("name, says", [("fl_fedbuff_mrpc.yaml", "fl over 20 users"),
                                        ("sfl_fedbuff_mrpc.yaml", "sfl over 20 users"),
                                        ("scheme_comparison_mrpc.yaml", "splitllm + sfl + fl + sl over 20 users"),
                                        ("fl_dynamic.yaml", "x fl over 50 users")])
def test_validate_says_what_a_run_of_every_scheme_costs(cli, name, says):
    """issue 34: the one-line estimate (events, time, records) for the schemes simulated by epochs too,
    as for SFL's strategies; a robustness study's counts every strategy's seeds."""
    from helpers import REPO

    code, _, err = cli("validate", REPO / "scenarios" / name)
    assert code == 0, err
    line = next(x for x in err.splitlines() if x.startswith("estimate:"))
    assert says in line and "events" in line and "GiB of activity records" in line

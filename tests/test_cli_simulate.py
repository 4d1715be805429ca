"""`splitsim simulate` writes a complete, reproducible output folder."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from splitsim.scenarios import SCENARIO_DIR, load_scenario


def test_simulate_writes_summary_events_and_resolved_scenario(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, err = cli("simulate", SCENARIO_DIR / "tiny_sfl.yaml", "--out", out)
    assert code == 0, err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["splitsim_version"]
    assert "git_revision" in summary["provenance"]
    assert set(summary["simulations"]) == {"proposed", "EB", "FE", "BA"}
    for name, sim in summary["simulations"].items():  # paper-assumption mode: DES = optimizer
        assert sim["total_delay_s"] == pytest.approx(sim["optimizer_T_s"], rel=1e-6), name
    ba = summary["simulations"]["BA"]
    parts = ba["breakdown"]["critical_user"]
    assert sum(parts[k] for k in ("compute_s", "uplink_s", "downlink_s", "waiting_s")) == pytest.approx(
        ba["total_delay_s"])
    events = pd.read_parquet(out / "events.parquet")
    assert len(events) == sum(s["records"] for s in summary["simulations"].values())
    assert (events["strategy"] == "BA").sum() == ba["records"] > 0
    assert {"time_s", "node", "kind", "bytes", "duration_s", "strategy"} <= set(events.columns)
    resolved = out / "scenario.resolved.yaml"
    text = resolved.read_text()
    assert "git revision:" in text and "splitsim" in text.splitlines()[0]
    assert load_scenario(resolved) == load_scenario(SCENARIO_DIR / "tiny_sfl.yaml")
    assert "simulated training delay" in stdout


@pytest.mark.slow
def test_simulate_extended_and_csv_events(cli, tmp_path):
    out = tmp_path / "ext"
    code, _, err = cli("simulate", SCENARIO_DIR / "tiny_sfl_extended.yaml", "--out", out, "--events", "csv")
    assert code == 0, err
    events = pd.read_csv(out / "events.csv")
    assert {"downlink_gradient", "downlink_adapter"} <= set(events["kind"])
    summary = json.loads((out / "summary.json").read_text())["simulations"]["BA"]
    assert summary["paper_assumptions"] is False
    assert summary["total_delay_s"] > summary["optimizer_T_s"]


def test_simulate_into_a_file_path_is_a_clean_error(cli, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = cli("simulate", SCENARIO_DIR / "tiny_sfl.yaml", "--out", blocker / "sub")
    assert code == 2 and "--out" in err and "Traceback" not in err


def test_simulate_bad_scenario_exits_2(cli, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cell: {users: -3}\n")
    code, _, err = cli("simulate", bad, "--out", tmp_path / "o")
    assert code == 2 and "cell.users" in err


def test_events_none_keeps_no_record_so_the_memory_guard_does_not_refuse_it(tmp_path, cli, monkeypatch):
    """issue 34, item 13: `--events none` means no record is kept (it used to keep every record in
    memory, since none was streamed to a file, and the memory guard refused the run)."""
    import splitsim.analysis.guards as guards

    monkeypatch.setattr(guards, "RECORD_BYTES", 2**40)  # records a TiB each: no host could hold them
    code, _, err = cli("simulate", SCENARIO_DIR / "tiny_sfl.yaml", "--out", tmp_path / "kept")
    assert code == 0, err  # streamed to events.parquet round by round: no memory needed
    code, out, err = cli("simulate", SCENARIO_DIR / "tiny_sfl.yaml", "--out", tmp_path / "none", "--events", "none")
    assert code == 0, err
    summary = json.loads((tmp_path / "none" / "summary.json").read_text())
    assert summary["events_file"] is None and not list((tmp_path / "none").glob("events.*"))
    assert all(run["records"] == 0 for run in summary["simulations"].values())


def test_validate_and_run_state_what_the_simulation_will_cost(cli, tmp_path):
    """Issue 34, item 12: before any work, one line with the events, the time on the engine that will
    run and the records' memory (the same count the guards refuse on)."""
    from helpers import REPO

    code, _, err = cli("validate", REPO / "scenarios" / "tiny_sfl.yaml")
    assert code == 0, err
    line = next(l for l in err.splitlines() if l.startswith("estimate:"))
    assert "events" in line and "engine" in line and "GiB of activity records" in line

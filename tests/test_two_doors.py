"""One door: every shipped scenario gives the same answers through `import splitsim` and the CLI.

For each scenario file: the warnings of `validate`; SFL's allocations (`optimize` vs
`splitsim.optimise`: T, eta, every user's bandwidths); and the simulations (`simulate` vs
`splitsim.simulate`: every run's summary and its event table), on a copy cut to a few rounds so that
the whole set runs in about 40 s. The CLI is run in-process, each door on the same file.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

import splitsim
from helpers import REPO

SCENARIOS = sorted(p for p in (REPO / "scenarios").glob("*.yaml"))
TRAINING_ONLY = {"splitllm_train_mrpc.yaml", "splitllm_train_mrpc_reduced.yaml"}  # their job is `splitsim train`
# Summary fields that measure this machine, not the model: they differ between any two runs.
MACHINE_FIELDS = {"wall_s", "simpy_events_per_s", "provenance"}


def _marks(path):
    text = path.read_text(encoding="utf-8")
    marks = []
    data = (yaml.safe_load(text).get("training") or {}).get("data_path")
    if data is not None and not (path.parent / data).is_dir():  # read relative to the scenario file
        marks.append(pytest.mark.skip(reason=f"needs the MRPC files at {(path.parent / data).resolve()} (absent)"))
    return marks


def _short_copy(path, tmp_path):
    """The scenario cut to two rounds (SFL) or one epoch (the others), written as a file both doors read.
    A model is profiled weight-free (the same split step on the meta device: the shapes, FLOPs and
    memory both doors use, without the 9 GB a real ViT-base step at batch 32 takes)."""
    scenario = splitsim.load_scenario(path)
    changes = {"simulation.max_rounds": 2, "simulation.rounds": 1}
    if scenario.model is not None and scenario.model.profile_path is None and scenario.study.kind != "emulation":
        changes["model.weights"] = "none"  # the emulation runs real steps: its (small) model keeps its weights
    short = splitsim.with_changes(scenario, changes)
    file = tmp_path / path.name
    file.write_text(yaml.safe_dump(short.model_dump(mode="json", exclude_unset=True), sort_keys=False),
                    encoding="utf-8")
    return file


def _same(a, b, where=""):
    """Equal data, floats to 1e-12 relative (each door computes them afresh)."""
    if isinstance(a, dict) and isinstance(b, dict):
        assert set(a) - MACHINE_FIELDS == set(b) - MACHINE_FIELDS, where
        for key in set(a) - MACHINE_FIELDS:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            assert a is None and (b is None or not math.isfinite(b)) or b is None and not math.isfinite(a), where
        else:
            assert a == pytest.approx(b, rel=1e-12, abs=1e-12, nan_ok=True), where
    else:
        assert a == b, where


def _json_like(data):
    """What write_json makes of a Python summary: numpy to lists, non-finite floats to None."""
    from splitsim.analysis.outputs import _clean

    return _clean(data)


@pytest.mark.parametrize("path", [pytest.param(p, marks=_marks(p), id=p.stem) for p in SCENARIOS])
def test_every_shipped_scenario_gives_the_same_answers_through_both_doors(path, tmp_path, cli):
    code, out, err = cli("validate", path)
    assert code == 0, err
    cli_warnings = [line.removeprefix("warning: ") for line in err.splitlines() if line.startswith("warning: ")]
    assert cli_warnings == splitsim.validate(path)
    if path.name in TRAINING_ONLY:
        return

    file = _short_copy(path, tmp_path)
    scenario = splitsim.load_scenario(file)
    world = splitsim.realise(scenario)

    if scenario.scheme == "sfl":
        code, _, err = cli("optimize", file, "--out", tmp_path / "opt")
        assert code == 0, err
        written = json.loads((tmp_path / "opt" / "allocation.json").read_text())["strategies"]
        allocations = splitsim.optimise(world)
        assert list(written) == list(allocations)
        for name, alloc in allocations.items():
            _same(written[name]["T_s"], alloc.T_s, f"{name}.T_s")
            _same(written[name]["eta"], alloc.eta, f"{name}.eta")
            _same(_json_like(alloc.to_dict()), {k: v for k, v in written[name].items() if k != "energy"}, name)

    code, _, err = cli("simulate", file, "--out", tmp_path / "sim", "--events", "csv")
    assert code == 0, err
    summary = json.loads((tmp_path / "sim" / "summary.json").read_text())
    results = splitsim.simulate(world)
    assert list(summary["simulations"]) == list(results)
    for name, result in results.items():
        _same(summary["simulations"][name], _json_like(result.summary()), name)
    events_file = tmp_path / "sim" / "events.csv"
    if events_file.exists():
        written = pd.read_csv(events_file)
        mine = pd.concat([r.events_frame() for r in results.values()], ignore_index=True)
        assert list(written.columns) == list(mine.columns)
        assert len(written) == len(mine)
        for col in mine.columns:
            if pd.api.types.is_numeric_dtype(mine[col]):
                np.testing.assert_allclose(written[col].to_numpy(float), mine[col].to_numpy(float), rtol=1e-12)
            else:
                assert (written[col].astype(str) == mine[col].astype(str)).all(), col


@pytest.mark.parametrize("name", ["tiny_sfl.yaml", "fedsllm_fig2.yaml"])
def test_a_study_run_from_python_writes_what_splitsim_run_writes(name, tmp_path, cli):
    path = REPO / "scenarios" / name
    code, _, err = cli("run", path, "--out", tmp_path / "cli")
    assert code == 0, err
    study = splitsim.run_study(path, tmp_path / "api")
    written = json.loads((tmp_path / "cli" / "summary.json").read_text())
    _same(written["metrics"], study.metrics)
    assert written["headline"] == study.summary["headline"]
    # one vocabulary (#22.2): every study names its proposed allocation's headline delay alike
    assert "delay_proposed_s" in written["headline"] and written["headline_meaning"]
    assert sorted(p.name for p in (tmp_path / "cli").iterdir()) == sorted(p.name for p in study.out.iterdir())


def test_the_api_takes_a_scenario_object_wherever_it_takes_a_file(tmp_path):
    scenario = splitsim.with_changes(splitsim.load_scenario(REPO / "scenarios" / "tiny_sfl.yaml"),
                                     {"cell.users": 4})
    assert splitsim.validate(scenario) == []
    table = splitsim.sweep(scenario, {"theory.epsilon0": [0.1, 0.2]}, tmp_path / "sweep", workers=1)
    assert list(table["theory.epsilon0"]) == [0.1, 0.2]
    assert (table["status"] == "ok").all() and "delay_proposed_s" in table
    with pytest.raises(splitsim.InputError, match="expected a scenario file or a splitsim.Scenario"):
        splitsim.validate(42)


def test_the_package_has_a_version():
    from importlib import metadata

    assert splitsim.__version__ == metadata.version("splitsim")


def test_optimise_in_python_keeps_whole_prbs_and_the_energy_budget():
    """The two defects of the old API door: continuous bandwidths where the scenario asks for whole
    PRBs, and a delay-only allocation that broke the energy budget without a word."""
    scenario = splitsim.load_scenario(REPO / "scenarios" / "fig2_dynamic.yaml")
    allocations = splitsim.optimise(scenario)
    scs = scenario.radio.subcarrier_spacing_khz
    prb_hz = 12 * scs * 1e3  # 12 sub-carriers (3GPP TS 38.211 4.4.4.1)
    for alloc in allocations.values():
        assert "prb" in alloc.details
        prbs = np.asarray(alloc.b_s_hz) / prb_hz
        np.testing.assert_allclose(prbs, np.round(prbs), atol=1e-9)

    budget = 8.0
    energy = splitsim.with_changes(splitsim.load_scenario(REPO / "scenarios" / "fedsllm_fig2.yaml"),
                                   {"optimizer.energy_budget_j": budget, "study.kind": "simulate",
                                    "study.tx_power_dbm": [10.0]})
    world = splitsim.realise(energy)
    from splitsim.analysis.allocations import allocation_energy_summary

    proposed = splitsim.optimise(world)["proposed"]
    assert allocation_energy_summary(world, proposed)["worst_user_j"] <= budget * (1 + 1e-6)
    assert "energy" in splitsim.simulate(world, proposed).summary()

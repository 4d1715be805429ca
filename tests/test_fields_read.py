"""What a study reads, held against what changes its result (#22.10).

The studies declare what they read (analysis/studies); `validate` warns about, and `sweep`
refuses, every field the declaration says has no effect. The oracle here is the run itself: each
field declared ignored is changed to another valid value and the study run again; its metrics must
not move by a bit. And the fields the issue found swept into identical rows are declared ignored.
"""

from __future__ import annotations

import json
import typing

import pytest
from pydantic import BaseModel

import splitsim
from splitsim.analysis.studies import ignored_fields, ignored_reason
from helpers import REPO
from splitsim.scenarios import Scenario, ScenarioError


def _leaves(model: type[BaseModel], prefix: str) -> list[str]:
    paths = []
    for name, info in model.model_fields.items():
        inner = [a for a in typing.get_args(info.annotation) or [info.annotation]
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        if inner:
            paths += _leaves(inner[0], f"{prefix}{name}.")
        else:
            paths.append(f"{prefix}{name}")
    return paths


def _other_value(value, annotation):
    """A different valid-looking value of the same kind (None where there is no obvious one)."""
    choices = [a for a in typing.get_args(annotation) if not isinstance(a, type)]
    for arg in typing.get_args(annotation):
        choices += [a for a in typing.get_args(arg) if not isinstance(a, type)]
    if choices and value in choices and len(set(choices)) > 1:
        return next(c for c in choices if c != value)
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 if value else 0.25
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return [v * 1.5 if isinstance(v, float) else v + 1 for v in value]
    return None


def _field_annotation(path: str):
    model: typing.Any = Scenario
    for part in path.split("."):
        annotation = model.model_fields[part].annotation
        inner = [a for a in typing.get_args(annotation) or [annotation]
                 if isinstance(a, type) and issubclass(a, BaseModel)]
        model = inner[0] if inner else annotation
    return model


def _value(scenario, path: str):
    node = scenario
    for part in path.split("."):
        node = getattr(node, part)
    return node


MACHINE = {"wall_s", "simpy_events_per_s", "provenance", "records"}


def _result(scenario, out) -> dict:
    splitsim.run_study(scenario, out)
    summary = json.loads((out / "summary.json").read_text())
    runs = summary.get("simulations", {})
    return {"metrics": summary["metrics"],
            "runs": {name: {k: v for k, v in run.items() if k not in MACHINE} for name, run in runs.items()}}


CASES = {
    "fedsllm_fig2.yaml": {"study.tx_power_dbm": [0.0, 10.0], "study.sensitivity_lipschitz_L": [1.0],
                          "study.sensitivity_gamma_over_L": [1.0]},
    "tiny_sfl.yaml": {"simulation.max_rounds": 5, "simulation.record_events": False},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_a_field_declared_ignored_changes_nothing_in_the_result(name, tmp_path):
    base = splitsim.with_changes(splitsim.load_scenario(REPO / "scenarios" / name), CASES[name])
    reference = _result(base, tmp_path / "base")
    ignored = ignored_fields(base)
    paths = [p for p in _leaves(Scenario, "") if ignored_reason(base, p) is not None
             and not p.startswith("training.") and p not in CASES[name]]
    assert len(paths) > 10, ignored
    tried = 0
    for i, path in enumerate(paths):
        other = _other_value(_value(base, path), _field_annotation(path))
        if other is None:
            continue
        try:
            changed = splitsim.with_changes(base, {path: other})
            result = _result(changed, tmp_path / f"p{i}")
        except (ScenarioError, splitsim.InputError):
            continue  # not a valid change on its own (needs another field): nothing to compare
        tried += 1
        assert result == reference, f"{path} = {other!r} changed the result, but is declared: {ignored_reason(base, path)}"
    assert tried > 10


@pytest.mark.parametrize("path", ["cell.edge_servers", "radio.bs_tx_power_dbm", "radio.backhaul_rate_bps",
                                  "radio.max_tx_power_dbm", "simulation.downlink"])
def test_the_fields_a_fig2_sweep_repeated_into_identical_rows_are_declared_ignored(path):
    fig2 = splitsim.load_scenario(REPO / "scenarios" / "fedsllm_fig2.yaml")
    assert ignored_reason(fig2, path) is not None


def test_sweeping_a_field_the_study_does_not_read_is_refused_with_the_reason(tmp_path, cli):
    code, _, err = cli("sweep", REPO / "scenarios" / "fedsllm_fig2.yaml", "--set", "cell.edge_servers=0,2",
                       "--out", tmp_path / "s")
    assert code == 2 and "cell.edge_servers: has no effect in this sweep" in err and "SplitLLM" in err
    code, _, err = cli("sweep", REPO / "scenarios" / "fedsllm_fig2.yaml", "--set", "training.lr=1e-4,1e-3",
                       "--out", tmp_path / "t")
    assert code == 2 and "training.lr" in err and "splitsim train" in err and "study" in err

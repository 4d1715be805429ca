"""Redraw the docs' figures of training runs from their committed outputs (no training):

    .venv/bin/python scripts/redraw_figures.py

- docs/examples/time_to_accuracy_mrpc.png from scenarios/data/train_mrpc_reduced/rounds.csv (the run of
  `splitsim train scenarios/splitllm_train_mrpc_reduced.yaml`, about 1.5 h);
- docs/examples/mrpc_convergence.png from scenarios/data/mrpc_convergence.json (the run of
  `splitsim convergence scenarios/mrpc_convergence.yaml`, about 1 h 40 min).

The plots are the ones those commands draw (analysis.plots), so a change to a plot reaches the docs
without rerunning the training; `scripts/make_examples.sh --with-training` reruns the training itself.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from splitsim.analysis import plots
from splitsim.optimizer.convergence_fit import rounds_points

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "docs" / "examples"


def time_to_accuracy() -> Path:
    scenario = yaml.safe_load((REPO / "scenarios" / "splitllm_train_mrpc_reduced.yaml").read_text())
    table = pd.read_csv(REPO / "scenarios" / "data" / "train_mrpc_reduced" / "rounds.csv")
    title = f"{scenario['name']}: {scenario['model']['source']}, {scenario['cell']['users']} users"
    return plots.time_to_accuracy(table, EXAMPLES / "time_to_accuracy_mrpc.png", title)


def mrpc_convergence() -> Path:
    curve = json.loads((REPO / "scenarios" / "data" / "mrpc_convergence.json").read_text())
    identity = curve["identity"]
    points, _ = rounds_points(curve["runs"], max_rounds=identity["max_rounds"])
    comparison = ">=" if identity["metric"] == "eval_accuracy" else "<="
    title = (f"{curve['scenario']}: rounds to {identity['metric']} {comparison} {identity['target']:g} against local "
             "iterations V")
    return plots.convergence_fit(curve["runs"], points, curve["fit"], identity["max_rounds"],
                                 EXAMPLES / "mrpc_convergence.png", title, curve["check"])


if __name__ == "__main__":
    for path in (time_to_accuracy(), mrpc_convergence()):
        print(f"redrew {path.relative_to(REPO)}")

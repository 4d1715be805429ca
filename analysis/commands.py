"""`splitsim run`: the scenario's study, from the registry (analysis.studies), checked first."""

from __future__ import annotations

from pathlib import Path

from splitsim.scenarios import Scenario

from .checking import check_resources
from .studies import STUDIES


def run_study(scenario: Scenario, out_dir: str | Path, source: str = "", progress: bool | None = None) -> list[str]:
    """Run `study.kind` into `out_dir`; return the lines to print."""
    check_resources(scenario, "run")
    return STUDIES[scenario.study.kind].run(scenario, out_dir, source, progress)

"""Every check a command makes before working, for the CLI and the Python API alike.

A scenario is checked field by field when it is parsed (scenarios); `check_scenario` adds what
needs the command: the training section for `train`, the cost of the run (analysis.guards) for the
others, and returns the warnings (implausible values, fields the study does not read).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from scenarios import InputError, Problem, Scenario, ScenarioError, load_scenario
from scenarios.checks import implausible_values, scenario_warnings, training_problems

from .guards import check_resources


def check_scenario(scenario: Scenario, command: str = "run", source: str = "") -> list[Problem]:
    """Raise ScenarioError / InputError on anything `command` would reject before working; return
    the warnings (legal but implausible values, fields that have no effect)."""
    if command == "train":
        problems = training_problems(scenario)
        if problems:
            raise ScenarioError([replace(p, source=source) for p in problems])
    else:
        try:
            check_resources(scenario, command)
        except InputError as err:  # name the file, as the field checks do; and say what is implausible,
            slips = implausible_values(scenario)  # a unit slip is the usual cause of a run too big to finish
            raise type(err)([replace(p, source=p.source or source) for p in err.problems + slips]) from None
    return [replace(w, source=source) for w in scenario_warnings(scenario)]


def load_checked(path: str | Path, command: str = "run") -> tuple[Scenario, list[Problem]]:
    """Load a scenario file and check it for `command`: (scenario, warnings)."""
    scenario = load_scenario(path)
    return scenario, check_scenario(scenario, command, str(path))

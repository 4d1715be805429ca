"""Every check a command makes before working, for the CLI and the Python API alike.

A scenario is checked field by field and across sections when it is parsed (scenarios, and the
study's own checks that analysis.studies registers); `check_scenario` adds what needs the command:
the training section for `train`, the cost of the run for the others (the optimizer's memory, the
energy budget, the study's own cost from its declaration), and returns the warnings: implausible
values and fields that have no effect in the scenario's study.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from splitsim.scenarios import InputError, Problem, Scenario, ScenarioError, load_scenario
from splitsim.scenarios.checks import explicit_paths, implausible_values, scenario_warnings, training_problems

from .guards import check_availability_trace, check_energy_aware, check_optimizer
from .studies import STUDIES, ignored_reason, study_of


def check_resources(scenario: Scenario, command: str) -> None:
    """Everything that can be estimated before `command` works: the optimizer's memory, the energy
    budget, and the study's or the simulation's cost (SFL's with a model only after its profile:
    analysis.simulation checks it before the first simulation)."""
    if scenario.model is not None:  # every command that reads a model profiles it first
        check_profile_memory(scenario)
    if command == "run":
        study = STUDIES[scenario.study.kind]
        check_optimizer(scenario)
        study.check_cost(scenario)
    elif command == "optimize":
        check_optimizer(scenario)
        check_energy_aware(scenario)
    elif command == "simulate":
        if scenario.scheme == "sfl":
            check_optimizer(scenario)  # first: the cost check below solves problem (17)
        STUDIES["simulate"].check_cost(scenario)
    elif command == "profile":
        return
    check_availability_trace(scenario)


def check_profile_memory(scenario: Scenario) -> None:
    """A profile that would be measured with real weights, refused before anything is built when its
    weights or one step cannot fit here (learning.profile.profile_memory_error)."""
    from splitsim.learning import LearningError
    from splitsim.learning.profile import profile_memory_error

    try:
        error = profile_memory_error(scenario.model)
    except LearningError:
        raise
    except Exception:  # noqa: BLE001 - a pre-check: what stops the estimate, the profiler reports in its own words
        return
    if error is not None:
        raise error


_UNSET = object()


def _value_at(data: dict, path: str):
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return _UNSET
        data = data[part]
    return data


def ignored_field_warnings(scenario: Scenario) -> list[Problem]:
    """A warning for each field the scenario sets, to other than its default, that its study does
    not read (a field set to its default changes nothing either way: scenario.resolved.yaml, which
    writes every field, re-runs without a warning for each)."""
    warnings = []
    mine, defaults = scenario.model_dump(mode="json"), Scenario().model_dump(mode="json")
    for path in explicit_paths(scenario):
        why = ignored_reason(scenario, path)
        if why is None or path.startswith("training"):
            continue
        default = _value_at(defaults, path)
        if default is not _UNSET and _value_at(mine, path) == default:
            continue
        warnings.append(Problem(path, f"has no effect in this scenario: {why}"))
    return warnings


def check_scenario(scenario: Scenario, command: str = "run", source: str = "") -> list[Problem]:
    """Raise ScenarioError / InputError on anything `command` would reject before working; return
    the warnings (legal but implausible values, fields that have no effect)."""
    if study_of(scenario) is None:  # parsed before the studies were registered: check it now
        from .studies import study_problems

        raise ScenarioError([replace(p, source=source) for p in study_problems(scenario)])
    if command == "train":
        problems = training_problems(scenario)
        if problems:
            raise ScenarioError([replace(p, source=source) for p in problems])
    elif command == "link":
        from .link import link_problems

        problems = link_problems(scenario)
        if problems:
            raise ScenarioError([replace(p, source=source) for p in problems])
        return [replace(w, source=source) for w in scenario_warnings(scenario)]
    else:
        try:
            check_resources(scenario, command)
        except InputError as err:  # name the file, as the field checks do; and say what is implausible,
            named = {p.field for p in err.problems}  # a unit slip is the usual cause of a run too big to finish:
            slips = [p for p in implausible_values(scenario) if p.field not in named]  # said, unless its field is
            raise type(err)([replace(p, source=p.source or source) for p in err.problems + slips]) from None
    warnings = scenario_warnings(scenario) + ignored_field_warnings(scenario)
    return [replace(w, source=source) for w in warnings]


def load_checked(path: str | Path, command: str = "run", changes: dict | None = None) -> tuple[Scenario, list[Problem]]:
    """Load a scenario file, apply a command option's `changes` (dotted paths), check it for
    `command`: (scenario, warnings)."""
    scenario = load_scenario(path)
    if changes:
        from splitsim.scenarios import parse_scenario, set_path

        data = scenario.model_dump(mode="json", exclude_unset=True)
        for dotted, value in changes.items():
            data = set_path(data, dotted, value)
        scenario = parse_scenario(data, source=str(path), base_dir=Path(path).parent)
    return scenario, check_scenario(scenario, command, str(path))


__all__ = ["check_resources", "check_scenario", "ignored_field_warnings", "load_checked"]

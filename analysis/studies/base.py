"""What a study declares: the interface every module of analysis/studies/ fills in once.

`splitsim run`, `validate`, `sweep`, the Python API and `splitsim schema` read these declarations
(through the table in analysis/studies/__init__.py) and nothing else: what a study needs, which
fields it reads, its own guards, its cost, its run, its headline and its figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from splitsim.scenarios import Problem, Scenario

SCHEMES = ("sfl", "splitllm", "fl", "sl")

RunFunction = Callable[[Scenario, Path, str, "bool | None"], list[str]]  # (scenario, out, source, progress) -> lines


def _never(scenario: Scenario) -> bool:
    return False


def _no_problems(scenario: Scenario) -> list[Problem]:
    return []


def _nothing_ignored(scenario: Scenario) -> dict[str, str]:
    return {}


def _no_cost(scenario: Scenario) -> None:
    return None


def _own_scheme(scenario: Scenario) -> list[str]:
    return [scenario.scheme]


@dataclass(frozen=True)
class Study:
    """One study kind.

    - `reads`: the `study.*` fields the study reads (every other one is flagged as having no effect);
    - `needs_model`: a `model` section is required; `schemes` the schemes it accepts (`scheme_hint`
      says what to do otherwise);
    - `simulates`: whether it simulates under the scenario's dynamics (a time-varying channel, users
      who come and go) — otherwise those fields are an error;
    - `solves_problem_17`: whether it solves FedsLLM's allocation (else `theory` and `optimizer` do
      nothing); `energy_aware`: whether it reads `optimizer.energy_budget_j` / `energy_weight`;
      `whole_prbs`: whether it applies `radio.subcarrier_spacing_khz`;
    - `schemes_run`: the schemes whose tiers it builds (scheme_comparison: several);
    - `problems`: its own checks, before any work; `ignores`: fields it sets itself (path -> why);
      `check_cost`: its resource guard (raises InputError naming the field to change);
    - `trains`: it trains for real (reads `training` and `convergence`); its runs checkpoint, so
      `splitsim run` resumes it in the same folder;
    - `dynamic_strategies`: it simulates an optimised bandwidth (SFL's problem (17), or FL's adapter
      uplink), so it runs the strategies for a cell that moves (optimizer.strategies proposed_replan
      and robust);
    - `run`: (scenario, out folder, source file, progress) -> lines to print; it writes summary.json
      with `metrics`, `headline` (`delay_<who>_s`, analysis.metrics) and `headline_meaning`;
    - `figure`: the file name of its main figure.
    """

    kind: str
    title: str
    run: RunFunction
    reads: frozenset[str]
    headline_meaning: str
    figure: str | None
    needs_model: bool = False
    schemes: tuple[str, ...] = SCHEMES
    scheme_hint: str = ""
    simulates: Callable[[Scenario], bool] = _never
    solves_problem_17: Callable[[Scenario], bool] = _never
    energy_aware: Callable[[Scenario], bool] = _never
    whole_prbs: Callable[[Scenario], bool] = _never
    schemes_run: Callable[[Scenario], list[str]] = _own_scheme
    problems: Callable[[Scenario], list[Problem]] = _no_problems
    ignores: Callable[[Scenario], dict[str, str]] = _nothing_ignored
    check_cost: Callable[[Scenario], None] = _no_cost
    trains: bool = False
    dynamic_strategies: Callable[[Scenario], bool] = _never  # runs proposed_replan and robust


def is_sfl(scenario: Scenario) -> bool:
    return scenario.scheme == "sfl"

"""splitsim's public Python API: the functions a notebook needs, each returning plain data or pandas.

    import splitsim
    scenario = splitsim.load_scenario(splitsim.example_path("fedsllm_fig2"))   # or your own YAML file
    scenario = splitsim.with_changes(scenario, {"cell.users": 20})   # validated, like a file
    world = splitsim.realise(scenario)                               # the channel draw, the demand
    allocations = splitsim.optimise(world)                           # proposed, EB, FE, BA
    splitsim.allocation_table(allocations)                           # a DataFrame
    result = splitsim.simulate(world, allocations["proposed"])       # one strategy's run
    runs = splitsim.simulate(world)                                  # every run `splitsim simulate` makes
    study = splitsim.run_study(scenario, "out/study")                # tables, summary, figures
    table = splitsim.sweep(splitsim.example_path("fedsllm_fig2"), {"cell.users": [10, 20]}, "out/sweep")
    splitsim.register_strategy("mine", my_strategy)                  # your own, beside proposed, EB, FE, BA

The `splitsim` command line calls the same functions (see splitsim.api for which). The parts live
below this one namespace: `splitsim.scenarios` (typed scenarios), `splitsim.netsim` (the cell and
the discrete-event simulator), `splitsim.learning` (models, profiles, real training),
`splitsim.optimizer` (problem (17) and its baselines), `splitsim.analysis` (studies, CLI, reports).
Names are imported on first use, so that `import splitsim.netsim` alone stays light (a testbed
device process imports no study).
"""

from __future__ import annotations

from importlib import import_module

_HOMES = {
    "splitsim.api": ("StudyResult", "allocation_table", "link_curve", "optimise", "profile", "realise", "rounds_to_target",
                     "run_study", "simulate", "sweep", "validate", "with_changes"),
    "splitsim.scenarios": ("InputError", "Scenario", "ScenarioError", "example_path", "examples", "load_scenario",
                           "parse_scenario"),
    "splitsim.scenarios.custom_strategies": ("register_strategy",),
    "splitsim.scenarios.nr_tbs": ("transport_block_bits",),
    "splitsim.optimizer.custom": ("StrategyDecision", "StrategyProblem"),
}
_HOME_OF = {name: home for home, names in _HOMES.items() for name in names}

__all__ = ["__version__", *sorted(_HOME_OF)]


def __getattr__(name: str):
    if name == "__version__":
        from splitsim.analysis.outputs import package_version

        return package_version()
    if name in _HOME_OF:
        value = getattr(import_module(_HOME_OF[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'splitsim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

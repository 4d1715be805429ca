"""splitsim's public Python API: the functions a notebook needs, each returning plain data or pandas.

    import splitsim
    scenario = splitsim.load_scenario("scenarios/fedsllm_fig2.yaml")
    scenario = splitsim.with_changes(scenario, {"cell.users": 20})   # validated, like a file
    world = splitsim.realise(scenario)                               # the channel draw, the demand
    allocations = splitsim.optimise(world)                           # proposed, EB, FE, BA
    splitsim.allocation_table(allocations)                           # a DataFrame
    result = splitsim.simulate(world, allocations["proposed"])       # one strategy's run
    runs = splitsim.simulate(world)                                  # every run `splitsim simulate` makes
    study = splitsim.run_study(scenario, "out/study")                # tables, summary, figures
    table = splitsim.sweep("scenarios/fedsllm_fig2.yaml", {"cell.users": [10, 20]}, "out/sweep")

The `splitsim` command line calls the same functions (see splitsim.api for which).
"""

from analysis.outputs import package_version as _package_version
from scenarios import InputError, Scenario, ScenarioError, load_scenario, parse_scenario

from .api import (
    StudyResult,
    allocation_table,
    optimise,
    profile,
    realise,
    run_study,
    simulate,
    sweep,
    validate,
    with_changes,
)

__version__ = _package_version()

__all__ = [
    "__version__", "InputError", "Scenario", "ScenarioError", "StudyResult", "allocation_table", "load_scenario", "optimise",
    "parse_scenario", "profile", "realise", "run_study", "simulate", "sweep", "validate", "with_changes",
]

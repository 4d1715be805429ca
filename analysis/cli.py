"""The `splitsim` command line. Bad input gives one line per problem on stderr and exit status 2."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from scenarios import InputError, Scenario, ScenarioError, load_scenario

from .outputs import package_version

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="splitsim: simulate split and federated LoRA fine-tuning over a wireless cell.",
)

ScenarioFile = Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing).")]
Progress = Annotated[Optional[bool], typer.Option("--progress/--no-progress",
                                                  help="Progress bar (default: when stderr is a terminal).")]


class EventsFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"
    none = "none"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"splitsim {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """splitsim: how long does split / federated LoRA fine-tuning take on this wireless cell?"""


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Scenario YAML files.", show_default=False)]) -> None:
    """Check scenario files: exit 0, or one line per problem (file: field: message (got value)) and exit 2."""
    problems = []
    for path in files:
        try:
            load_scenario(path)
            typer.echo(f"{path}: ok")
        except ScenarioError as err:
            problems.extend(err.problems)
    if problems:
        raise ScenarioError(problems)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion and validation)."""
    typer.echo(json.dumps(Scenario.model_json_schema(), indent=2))


@app.command()
def profile(file: ScenarioFile, out: OutDir) -> None:
    """Measure the scenario model's split steps at every cut; write profile.json and print tables."""
    from .runs import run_profile

    for line in run_profile(load_scenario(file), out, source=str(file)):
        typer.echo(line)


@app.command()
def optimize(file: ScenarioFile, out: OutDir) -> None:
    """Allocate bandwidth and eta for every strategy (proposed, EB, FE, BA); write allocation.json."""
    from .runs import run_optimize

    for line in run_optimize(load_scenario(file), out, source=str(file)):
        typer.echo(line)


@app.command()
def simulate(file: ScenarioFile, out: OutDir,
             events: Annotated[EventsFormat, typer.Option(help="Format of the event records.")] = EventsFormat.parquet,
             progress: Progress = None) -> None:
    """Simulate the scenario's scheme (SFL: every allocation strategy); write summary, events, scenario."""
    from .runs import run_simulate

    summaries = run_simulate(load_scenario(file), out, source=str(file), events_format=events.value,
                             progress=progress)
    for name, s in summaries.items():
        versus = f"optimizer: {s['optimizer_T_s']:.6g} s; " if "optimizer_T_s" in s else ""
        typer.echo(f"{name:>8}: simulated training delay {s['total_delay_s']:.6g} s over {s['rounds']:.6g} rounds "
                   f"({versus}{s['records']} records)")
    typer.echo(f"-> {out}")


@app.command()
def run(file: ScenarioFile, out: OutDir, progress: Progress = None) -> None:
    """Run the study named in the scenario's `study` section and write its output folder."""
    from .runs import run_study

    scenario = load_scenario(file)
    for line in run_study(scenario, out, source=str(file), progress=progress):
        typer.echo(line)


@app.command()
def train(file: ScenarioFile, out: OutDir, progress: Progress = None) -> None:
    """Fine-tune the model with each scheme and partition for real; resume from checkpoints in OUT."""
    from .train_run import run_training

    for line in run_training(load_scenario(file), out, source=str(file), progress=progress):
        typer.echo(line)


class Engine(str, Enum):
    local = "local"
    ray = "ray"


@app.command()
def sweep(file: ScenarioFile, out: OutDir,
          set_: Annotated[list[str], typer.Option("--set", help="PATH=V1,V2,...: a scenario field (dotted path) "
                                                                "and its values; repeat for a grid.")],
          engine: Annotated[Engine, typer.Option(help="Run points in local processes or on Ray.")] = Engine.local,
          workers: Annotated[Optional[int], typer.Option(help="Parallel points (default: cores).")] = None,
          address: Annotated[Optional[str], typer.Option(help="Ray cluster address (default: a local Ray).")] = None,
          progress: Progress = None) -> None:
    """Run the scenario's study over a grid of field values; resumable; writes results.csv."""
    from .sweep import run_sweep

    for line in run_sweep(file, set_, out, engine.value, workers, address, progress):
        typer.echo(line)


def main() -> None:
    """Console entry point: runs the app, turning bad input into one-line errors and exit status 2."""
    try:
        app()
    except InputError as err:
        for line in str(err).splitlines():
            typer.echo(f"error: {line}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()

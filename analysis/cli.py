"""The `splitsim` command line. Bad input gives one line per problem on stderr and exit status 2."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from dataclasses import replace
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from splitsim.scenarios import InputError, ScenarioError

from .interrupted import Interrupted, TermAsInterrupt

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="splitsim: simulate split and federated LoRA fine-tuning over a wireless cell.",
)

ScenarioFile = Annotated[Path, typer.Argument(help="Scenario YAML file.", show_default=False)]
OutDir = Annotated[Path, typer.Option("--out", "-o", help="Output folder (created if missing). A folder that holds "
                                                       "another run's output is refused (see --overwrite).")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace the output of another run in --out (only a "
                                                             "folder that holds a splitsim run is ever emptied).")]
Progress = Annotated[Optional[bool], typer.Option("--progress/--no-progress",
                                                  help="Progress bar (default: when stderr is a terminal).")]


class EventsFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"
    none = "none"


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        try:
            version = metadata.version("splitsim")
        except metadata.PackageNotFoundError:
            version = "0+unknown"
        typer.echo(f"splitsim {version}")
        raise typer.Exit()


def _load(path: Path, command: str, changes: dict | None = None):
    """Load and check a scenario for `command` (every check that needs no work), print its warnings.
    `changes` ({"simulation.record_events": False}) apply before the checks, as the command's options."""
    from .checking import load_checked

    scenario, warnings = load_checked(path, command, changes)
    for problem in warnings:
        typer.echo(f"warning: {problem.line()}", err=True)
    return scenario


@contextlib.contextmanager
def _interruptible(command: str, file: Path, out: Path):
    """Ctrl-C (or SIGTERM as KeyboardInterrupt) in a one-shot command: say what is left and how to
    rerun it (typer would otherwise exit 130 without a word)."""
    from .outputs import record_outputs

    try:
        with TermAsInterrupt():
            yield
    except KeyboardInterrupt:
        raise Interrupted([f"interrupted: {out} is incomplete (its files may be missing or partial); rerun "
                           f"`splitsim {command} {file} --out {out}` to compute it again from the start (the same "
                           "inputs reuse the folder)"]) from None
    finally:
        record_outputs(out)  # what this run wrote: a rerun deletes these and nothing else


def _claim(out: Path, command: str, scenario, overwrite: bool, resumable: bool = False) -> Path:
    from .outputs import claim_out_dir

    return claim_out_dir(out, command, scenario, resumable=resumable, overwrite=overwrite)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """splitsim: how long does split / federated LoRA fine-tuning take on this wireless cell?"""


@app.command()
def validate(files: Annotated[list[Path], typer.Argument(help="Scenario YAML files.", show_default=False)]) -> None:
    """Check scenario files without running anything: exit 0, or one line per problem and exit 2.

    Every check a run would make before working: each field, the model (preset, folder or hub id)
    and its cuts, what the study needs, and the estimated cost (events, memory). Warnings (values
    that are legal but implausible, fields the study does not read) do not fail validation."""
    problems = []
    for path in files:
        try:
            _load(path, "run")
            typer.echo(f"{path}: ok")
        except ScenarioError as err:
            problems.extend(err.problems)
        except InputError as err:
            problems.extend(replace(p, source=p.source or str(path)) for p in err.problems)
    if problems:
        raise ScenarioError(problems)


@app.command()
def schema() -> None:
    """Print the JSON Schema of scenario files (for editor completion and validation)."""
    from .studies import scenario_json_schema

    typer.echo(json.dumps(scenario_json_schema(), indent=2))


@app.command()
def profile(file: ScenarioFile, out: OutDir, overwrite: Overwrite = False,
            remeasure: Annotated[bool, typer.Option("--remeasure", help="Measure again, replacing the cached "
                                                    "profile (e.g. one measured while the machine was busy).")]
            = False) -> None:
    """Measure the scenario model's split steps at every cut; write profile.json and print tables."""
    from .runs import run_profile

    _one_shot("profile", file, out, overwrite,
              lambda scenario, folder: run_profile(scenario, folder, source=str(file), remeasure=remeasure))


def _one_shot(command: str, file: Path, out: Path, overwrite: bool, lines) -> None:
    """Load and check `file` for `command`, claim `out`, print the lines `lines(scenario, out)` yields;
    Ctrl-C says what is left (a command that does not resume)."""
    scenario = _load(file, command)
    out = _claim(out, command, scenario, overwrite)
    with _interruptible(command, file, out):
        for line in lines(scenario, out):
            typer.echo(line)


@app.command()
def optimize(file: ScenarioFile, out: OutDir, overwrite: Overwrite = False) -> None:
    """Allocate bandwidth and eta for every strategy (proposed, EB, FE, BA); write allocation.json."""
    from .runs import run_optimize

    _one_shot("optimize", file, out, overwrite, lambda scenario, folder: run_optimize(scenario, folder, source=str(file)))


@app.command()
def simulate(file: ScenarioFile, out: OutDir,
             events: Annotated[EventsFormat, typer.Option(help="Format of the event records.")] = EventsFormat.parquet,
             progress: Progress = None, overwrite: Overwrite = False) -> None:
    """Simulate the scenario's scheme (SFL: every allocation strategy); write summary, events, scenario."""
    from .runs import run_simulate

    # --events none keeps no record at all: the checks (and the memory guard) see it so
    scenario = _load(file, "simulate", {"simulation.record_events": False} if events == EventsFormat.none else None)
    out = _claim(out, "simulate", scenario, overwrite)
    with _interruptible("simulate", file, out):
        summaries = run_simulate(scenario, out, source=str(file), events_format=events.value, progress=progress)
    for name, s in summaries.items():
        versus = f"optimizer: {s['optimizer_T_s']:.6g} s; " if "optimizer_T_s" in s else ""
        typer.echo(f"{name:>8}: simulated training delay {s['total_delay_s']:.6g} s over {s['rounds']:.6g} rounds "
                   f"({versus}{s['records']} records)")
    typer.echo(f"-> {out}")


@app.command()
def run(file: ScenarioFile, out: OutDir, progress: Progress = None, overwrite: Overwrite = False) -> None:
    """Run the study named in the scenario's `study` section and write its output folder."""
    scenario = _load(file, "run")
    _run_study_command("run", file, out, scenario, progress, overwrite)


@app.command()
def link(file: ScenarioFile, out: OutDir, overwrite: Overwrite = False) -> None:
    """The scenario's NR uplink curve beside Shannon (radio.nr, radio.subcarrier_spacing_khz): MCS,
    BLER and goodput per Hz against SINR; write link.csv, link.png, summary.json, report.md."""
    from .link import run_link

    _one_shot("link", file, out, overwrite, lambda scenario, folder: run_link(scenario, folder, source=str(file)))


@app.command()
def example(name: Annotated[Optional[str], typer.Argument(help="A shipped scenario (see --list).",
                                                          show_default=False)] = None,
            out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder, as for `run`.")] = None,
            list_: Annotated[bool, typer.Option("--list", help="List the shipped scenarios and their files.")] = False,
            progress: Progress = None, overwrite: Overwrite = False) -> None:
    """Run a scenario shipped with splitsim (as `splitsim run` on its file), or list them: no clone needed.

    Its file (to copy and edit) is printed first; `splitsim.example_path(NAME)` gives it in Python."""
    from splitsim.scenarios import example_path, examples

    if list_ or name is None:
        for stem, path in examples().items():
            typer.echo(f"{stem}\t{path}")
        return
    file = example_path(name)
    if out is None:
        raise InputError("say where the run's output goes: --out DIR", field="--out", value=None)
    typer.echo(f"scenario: {file}")
    scenario = _load(file, "run")
    _run_study_command("run", file, out, scenario, progress, overwrite)


def _run_study_command(command: str, file: Path, out: Path, scenario, progress, overwrite: bool) -> None:
    """Run the scenario's study into `out`; a study that trains resumes from its checkpoints."""
    from .commands import run_study
    from .studies import STUDIES

    resumable = STUDIES[scenario.study.kind].trains
    out = _claim(out, command, scenario, overwrite, resumable=resumable)
    if not resumable:
        with _interruptible(command, file, out):
            for line in run_study(scenario, out, source=str(file), progress=progress):
                typer.echo(line)
        return
    _resumable(command, file, out, lambda: run_study(scenario, out, source=str(file), progress=progress),
               "every finished round is checkpointed in the cache (SPLITSIM_CACHE_DIR)")


def _resumable(command: str, file: Path, out: Path, lines, kept: str) -> None:
    """Print the lines of a run that checkpoints as it goes; Ctrl-C or SIGTERM says how to resume."""
    from .outputs import record_outputs

    try:
        with TermAsInterrupt():
            for line in lines():
                typer.echo(line)
    except KeyboardInterrupt:
        raise Interrupted([f"interrupted: {kept}; rerun `splitsim {command} {file} --out {out}` to resume from "
                           "there"]) from None
    finally:
        record_outputs(out)


@app.command()
def convergence(file: ScenarioFile, out: OutDir, progress: Progress = None, overwrite: Overwrite = False) -> None:
    """Measure rounds-to-target against local iterations by real training, fit the convergence curve,
    and check the proposed allocation's time to accuracy (the scenario's study must be `convergence`)."""
    scenario = _load(file, "run")
    if scenario.study.kind != "convergence":
        raise ScenarioError([_problem("study.kind", "`splitsim convergence` runs study 'convergence' (set study.kind: "
                                      "convergence, or use `splitsim run` for this study)", scenario.study.kind, file)])
    _run_study_command("convergence", file, out, scenario, progress, overwrite)


@app.command()
def emulate(file: ScenarioFile, out: OutDir, progress: Progress = None, overwrite: Overwrite = False) -> None:
    """Run the scenario's scheme for real, one process per device over links shaped to the simulator's
    rates, and compare the measured rounds with the simulator's (the scenario's study must be `emulation`)."""
    scenario = _load(file, "run")
    if scenario.study.kind != "emulation":
        raise ScenarioError([_problem("study.kind", "`splitsim emulate` runs study 'emulation' (set study.kind: "
                                      "emulation, or use `splitsim run` for this study)", scenario.study.kind, file)])
    _run_study_command("emulate", file, out, scenario, progress, overwrite)


def _problem(field: str, message: str, value, file: Path):
    from splitsim.scenarios import Problem

    return Problem(field, message, value, True, source=str(file))


@app.command()
def train(file: ScenarioFile, out: OutDir, progress: Progress = None, overwrite: Overwrite = False) -> None:
    """Fine-tune the model with each scheme and partition for real; resume from checkpoints in OUT."""
    from .train_run import run_training

    scenario = _load(file, "train")
    # A training run may be resumed with more rounds: its identity leaves training.rounds out.
    identity = scenario.model_copy(update={"training": scenario.training.model_copy(update={"rounds": 1})})
    out = _claim(out, "train", identity, overwrite, resumable=True)
    _resumable("train", file, out, lambda: run_training(scenario, out, source=str(file), progress=progress),
               f"{out} keeps every finished round (checkpoints/)")


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
          max_points: Annotated[int, typer.Option(help="Refuse a grid of more points than this (each point is a "
                                                       "whole study).")] = 5_000,
          progress: Progress = None, overwrite: Overwrite = False) -> None:
    """Run the scenario's study over a grid of field values; resumable; writes results.csv and sweep.png."""
    from .sweep import run_sweep

    for line in run_sweep(file, set_, out, engine.value, workers, address, progress, overwrite, max_points):
        typer.echo(line)


class _EchoHandler(logging.Handler):
    """Progress notes of the packages (model building, profiling, cache hits) as lines on stderr."""

    def emit(self, record: logging.LogRecord) -> None:
        typer.echo(self.format(record), err=True)


def _show_progress_notes() -> None:
    handler = _EchoHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("splitsim.learning", "splitsim.analysis"):
        logger = logging.getLogger(name)
        if not any(isinstance(h, _EchoHandler) for h in logger.handlers):
            logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def main() -> None:
    """Console entry point: runs the app, turning bad input into one-line errors and exit status 2."""
    _show_progress_notes()
    # a user's own strategy module ("my_strategies:greedy") may sit in the folder the command runs
    # in, as with `python -m`; appended, so it never shadows an installed package
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        app()
    except InputError as err:
        for line in str(err).splitlines():
            typer.echo(f"error: {line}", err=True)
        sys.exit(2)
    except Interrupted as err:  # an interrupted command says what it kept and how to resume
        for line in err.lines:
            typer.echo(line, err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
    except RuntimeError as err:
        from splitsim.netsim.testbed.errors import DeviceFailure

        if not isinstance(err, DeviceFailure):
            raise
        typer.echo(f"error: {err}", err=True)  # a device process failed mid-run: stopped, nothing left behind
        sys.exit(1)


if __name__ == "__main__":
    main()

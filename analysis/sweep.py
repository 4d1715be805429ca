"""`splitsim sweep`: a grid over any scenario fields, run in local processes or on a Ray cluster.

Every point is validated before any work starts, and so is every swept field: one that the study
does not read (say radio.max_tx_power_dbm in a latency_vs_power study, which sets the power itself)
is an error, not a column of identical rows. A point's identity is its whole resolved scenario and
the splitsim version: `points/<id>/result.json` records both, and a rerun reuses a finished point
only when both are unchanged. The folder belongs to one base scenario (`run.json`): a sweep of an
edited scenario into it is refused (or, with --overwrite, replaces it).

Each worker writes its point's `result.json` the moment the point finishes, so nothing finished is
lost: Ctrl-C or SIGTERM stops the sweep at once (no new point starts, running ones are stopped) and
says how to resume; a worker that dies (killed, out of memory) stops it the same way. A point whose
input is infeasible (a cut over the memory limit) is recorded as `infeasible` with the reason; an
unexpected failure as `error`; neither stops the sweep. `results.csv` is the tidy table (grid
values, status, every headline metric of the study: delays per strategy or scheme, reductions);
`sweep.png` plots the headline delays against the first swept field.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shlex
import signal
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from splitsim.scenarios import InputError, Problem, Scenario, ScenarioError, parse_scenario, read_yaml, set_path
from splitsim.scenarios.checks import implausible_values
from splitsim.scenarios.loader import resolve_paths

from .interrupted import Interrupted, TermAsInterrupt
from .outputs import claim_out_dir, package_version, scenario_digest, write_json, write_resolved_scenario
from .outputs import record_outputs
from .studies import ignored_reason
from .progress import ProgressLog, progress_bar, shows_bar as _shows_bar
from .report import Report


@dataclass(frozen=True)
class SweepPoint:
    """One grid point: the values set (dotted path -> value), the full scenario data, its identity."""

    key: str
    values: dict[str, Any]
    data: dict
    digest: str  # SHA-256 of the resolved scenario and the splitsim version


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside [...] or {...}."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p.strip() for p in parts]


def parse_set(expression: str) -> tuple[str, list[Any]]:
    """'cell.users=10,20,50' -> ('cell.users', [10, 20, 50]); values are read as YAML ('1e6', 'true', '[1, 3]')."""
    if "=" not in expression:
        raise InputError("expected PATH=VALUE[,VALUE...]", field="--set", value=expression)
    path, _, raw = expression.partition("=")
    path = path.strip()
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*", path):
        raise InputError("not a dotted field path", field="--set", value=expression)
    values = []
    for item in _split_top_level(raw):
        if item == "":
            raise InputError("empty value", field=f"--set {path}", value=raw)
        try:
            values.append(read_yaml(f"v: {item}")["v"])
        except ScenarioError:
            raise InputError("cannot read this value", field=f"--set {path}", value=item) from None
    return path, values


def _point_key(values: dict[str, Any], digest: str) -> str:
    readable = "_".join(f"{k.split('.')[-1]}-{v}" for k, v in values.items())
    readable = re.sub(r"[^A-Za-z0-9._-]+", "", readable)[:60]
    return f"{readable}-{digest[:12]}"


def _point_digest(scenario: Scenario) -> str:
    return hashlib.sha256(f"{scenario_digest(scenario)} {package_version()}".encode()).hexdigest()


def expand_grid(base: dict, sets: list[tuple[str, list[Any]]], base_dir: str | Path | None = None) -> list[SweepPoint]:
    """All points of the grid, each validated; raises one ScenarioError listing every bad point.

    A swept path must exist in the schema, change something the study reads, and (for model.*)
    find a model section in the base scenario."""
    if not sets:
        raise InputError("give at least one --set PATH=VALUES", field="--set", value=None)
    paths = [p for p, _ in sets]
    if len(set(paths)) != len(paths):
        raise InputError("each path may be set once", field="--set", value=paths)
    from splitsim.scenarios.schema import AGGREGATION_FIELDS

    simulated_fl = base.get("scheme", "sfl") in ("fl", "sfl") and \
        (base.get("study") or {}).get("kind", "simulate") == "simulate"
    training = [p for p in paths if (p == "training" or p.startswith("training."))
                and not (simulated_fl and p.removeprefix("training.") in AGGREGATION_FIELDS)]  # FL's, SFL's aggregation
    if training:
        kind = (base.get("study") or {}).get("kind", "simulate")
        raise InputError(f"has no effect in a sweep: a sweep runs the scenario's study ('{kind}', as `splitsim run`), "
                         "which trains nothing; training.* is read only by `splitsim train`, which a sweep does not "
                         "run", field=f"--set {training[0]}", value=None)
    for path in paths:
        if path.startswith("model.") and not isinstance(base.get("model"), dict):
            raise InputError(f"the scenario has no model section, so setting {path} would silently build a default "
                             "model; add a model section (model.source, ...) to the scenario first",
                             field=f"--set {path}", value=None)
    points, problems = [], []
    for combo in itertools.product(*(values for _, values in sets)):
        values = dict(zip(paths, combo))
        data = base
        label = ", ".join(f"{k}={v!r}" for k, v in values.items())
        try:
            for path, value in values.items():
                data = set_path(data, path, value)
            data = resolve_paths(data, base_dir if base_dir is not None else Path.cwd())
            scenario = parse_scenario(data)
        except ScenarioError as err:
            problems += [Problem(p.field, f"{p.message} [at {label}]", p.value, p.has_value, "--set")
                         for p in err.problems]
            continue
        for path in paths:
            why = ignored_reason(scenario, path)
            if why is not None:
                problems.append(Problem(path, f"has no effect in this sweep: {why}", source="--set"))
        # a warning in one run is an error in a sweep: the slip would repeat over every row
        problems += [Problem(p.field, f"{p.message} [at {label}]", p.value, p.has_value, "--set")
                     for p in implausible_values(scenario)]
        digest = _point_digest(scenario)
        points.append(SweepPoint(_point_key(values, digest), values, data, digest))
    if problems:
        unique = list({p.line(): p for p in problems}.values())
        raise ScenarioError(unique)
    return points


def _worker_init() -> None:
    """Workers leave Ctrl-C to the driver, which stops them; each runs single-threaded (one per core)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def run_point(data: dict, point_dir: str, digest: str, values: dict | None = None, key: str = "") -> dict:
    """Run one point's study, write its `result.json` at once, and return its row (never raises
    for a bad point: its status says `infeasible` or `error`)."""
    from .commands import run_study

    try:
        scenario = parse_scenario(data)
        folder = claim_out_dir(point_dir, "run", scenario)
        run_study(scenario, folder, progress=False)
        summary = json.loads((folder / "summary.json").read_text())
        outcome = {"status": "ok", "message": "", **summary.get("metrics", {})}
        headline = summary.get("headline", [])
    except InputError as err:
        outcome, headline = {"status": "infeasible", "message": str(err).splitlines()[0]}, []
    except Exception as err:  # noqa: BLE001 - one point's bug must not stop the sweep; it is reported
        tail = traceback.format_exc().strip().splitlines()[-1]
        outcome, headline = {"status": "error", "message": f"{type(err).__name__}: {tail}"}, []
    row = {**(values or {}), "point": key, **outcome}
    folder = Path(point_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "result.json", {"inputs_sha256": digest, "splitsim_version": package_version(),
                                        "headline": headline, "row": row})
    return row


def _prepare_profiles(points: list[SweepPoint]) -> None:
    """Measure every distinct model profile once, in this process, so workers read the cache."""
    from .world import load_profile

    seen = set()
    for point in points:
        scenario = parse_scenario(point.data)
        if scenario.model is None:
            continue
        key = json.dumps(scenario.model.model_dump(mode="json"), sort_keys=True)
        if key not in seen:
            seen.add(key)
            try:
                load_profile(scenario)
            except InputError:
                pass  # the point will report it as infeasible


def _finished(out: Path, point: SweepPoint) -> dict | None:
    """The recorded row of a point computed from exactly these inputs, or None."""
    path = out / "points" / point.key / "result.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except ValueError:
        return None
    if record.get("inputs_sha256") != point.digest or "row" not in record:
        return None
    return record["row"]


def _point_args(out: Path, point: SweepPoint) -> tuple:
    return point.data, str(out / "points" / point.key), point.digest, point.values, point.key


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Stop at once: cancel queued points and terminate the workers running the others."""
    processes = list(getattr(pool, "_processes", {}).values())  # no public API before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


def _run_local(todo: list[SweepPoint], out: Path, workers: int, on_row) -> None:
    if workers <= 1:
        for point in todo:
            on_row(run_point(*_point_args(out, point)))
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"), initializer=_worker_init)
    try:
        pending = {pool.submit(run_point, *_point_args(out, p)): p for p in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                pending.pop(future)
                on_row(future.result())
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)


def _run_ray(todo: list[SweepPoint], out: Path, workers: int, address: str | None, on_row) -> None:
    try:
        import ray
    except ImportError:
        raise InputError("the Ray engine needs Ray: pip install 'splitsim[ray]'", field="--engine",
                         value="ray") from None
    started = False
    if not ray.is_initialized():
        kwargs = {"address": address} if address else {"num_cpus": workers}
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local instance
        ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR", **kwargs)
        started = True
    pending: dict = {}
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(run_point)
        pending = {remote.remote(*_point_args(out, p)): p for p in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                pending.pop(ref)
                on_row(ray.get(ref))
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()


def resume_command(scenario_path: str | Path, sets: list[str], out: Path, engine: str, workers: int | None,
                   address: str | None) -> str:
    args = ["splitsim", "sweep", str(scenario_path)]
    for expression in sets:
        args += ["--set", expression]
    args += ["--out", str(out)]
    if engine != "local":
        args += ["--engine", engine]
    if workers:
        args += ["--workers", str(workers)]
    if address:
        args += ["--address", address]
    return shlex.join(args)


MAX_POINTS = 5_000
"""Grid points a sweep runs without `max_points` raised: each is a whole study (seconds to minutes)."""


def grid_size(grid: list[tuple[str, list[Any]]]) -> int:
    size = 1
    for _, values in grid:
        size *= len(values)
    return size


def _base_of(scenario: str | Path | Scenario) -> tuple[Scenario, dict, Path | None, str]:
    """(scenario, its explicit data, the folder its relative paths are read from, a name for messages)
    of a scenario file or a Scenario object (splitsim.sweep takes both)."""
    from splitsim.scenarios import load_scenario

    if isinstance(scenario, Scenario):
        return scenario, scenario.model_dump(mode="json", exclude_unset=True), None, scenario.name
    base_scenario = load_scenario(scenario)
    base = read_yaml(Path(scenario).read_text(encoding="utf-8"), str(scenario))
    return base_scenario, base, Path(scenario).resolve().parent, str(scenario)


def run_sweep(scenario_path: str | Path | Scenario, sets: list[str], out_dir: str | Path, engine: str = "local",
              workers: int | None = None, address: str | None = None, progress: bool | None = None,
              overwrite: bool = False, max_points: int = MAX_POINTS) -> list[str]:
    """Expand, validate, run (reusing finished points of identical inputs) and tabulate a sweep.

    A grid of more than `max_points` points is refused before it is expanded; without a terminal,
    progress goes to the log (a line about every 5 % of the points, with the time left)."""
    from .checking import check_scenario

    if engine not in ("local", "ray"):
        raise InputError("engine must be 'local' or 'ray'", field="--engine", value=engine)
    if workers is not None and workers < 1:
        raise InputError("needs at least one worker", field="--workers", value=workers)
    if max_points < 1:
        raise InputError("must be at least 1", field="--max-points", value=max_points)
    base_scenario, base, base_dir, source = _base_of(scenario_path)
    grid = [parse_set(s) for s in sets]
    size = grid_size(grid)
    if size > max_points:
        raise InputError(f"the grid has {size:,} points (each a whole study), over the limit of {max_points:,}; "
                         "sweep fewer values, or raise --max-points knowingly", field="--set",
                         value=" x ".join(str(len(v)) for _, v in grid))
    points = expand_grid(base, grid, base_dir)  # every point valid, or nothing runs
    for point in points:
        check_scenario(parse_scenario(point.data), "run", "--set")
    chosen_workers = workers
    workers = workers or min(len(points), os.cpu_count() or 1)
    out = claim_out_dir(out_dir, "sweep", base_scenario, resumable=True, overwrite=overwrite)
    write_resolved_scenario(base_scenario, out, source)
    write_json(out / "sweep.json", {"scenario": source, "grid": {p: v for p, v in grid},
                                    "engine": engine, "workers": workers, "points": len(points)})
    rows: dict[str, dict] = {}
    todo = []
    for point in points:
        row = _finished(out, point)
        if row is not None:
            rows[point.key] = row
        else:
            todo.append(point)
    skipped = len(rows)
    resume = resume_command(scenario_path if not isinstance(scenario_path, Scenario)
                            else out / "scenario.resolved.yaml", sets, out, engine, chosen_workers, address)
    log = ProgressLog(len(todo), "sweep", "points") if not _shows_bar(progress) else None
    try:
        with TermAsInterrupt(), progress_bar(len(points), "sweep", progress, unit="point") as bar:
            bar.update(skipped)
            if todo:
                _prepare_profiles(todo)

            def on_row(row: dict) -> None:
                rows[row["point"]] = row
                bar.update(1)
                if log is not None:
                    log.step()

            if engine == "local":
                _run_local(todo, out, workers, on_row)
            else:
                _run_ray(todo, out, workers, address, on_row)
    except KeyboardInterrupt:
        _write_table(out, points, rows, grid, base_scenario, source, skipped, engine, workers,
                     interrupted=True)
        raise Interrupted([f"interrupted: {len(rows)} of {len(points)} points are finished and recorded in "
                           f"{out / 'points'}", f"resume with: {resume}"], 130) from None
    except BrokenProcessPool:
        _write_table(out, points, rows, grid, base_scenario, source, skipped, engine, workers,
                     interrupted=True)
        raise Interrupted(["a sweep worker died (killed, or out of memory) while running a point",
                           f"{len(rows)} of {len(points)} points are finished and recorded in {out / 'points'}",
                           f"resume with: {resume}"], 1) from None
    finally:
        record_outputs(out)  # the table written last is the run's too: listed again below
    table = _write_table(out, points, rows, grid, base_scenario, source, skipped, engine, workers)
    record_outputs(out)
    counts = table["status"].value_counts().to_dict()
    return [f"{len(points)} points: " + ", ".join(f"{n} {s}" for s, n in counts.items())
            + f" ({skipped} done before, {len(todo)} run now)", f"-> {out / 'results.csv'}"]


def _meaning(out: Path, points: list[SweepPoint]) -> str:
    """What the study's headline delays are (its summary's headline_meaning), from the first point."""
    for point in points:
        try:
            summary = json.loads((out / "points" / point.key / "summary.json").read_text())
        except (OSError, ValueError):
            continue
        return summary.get("headline_meaning", "")
    return ""


def _headline(out: Path, points: list[SweepPoint], rows: dict) -> list[str]:
    """The headline metrics the points' studies name (first finished point that names them)."""
    for point in points:
        if point.key in rows and rows[point.key].get("status") == "ok":
            try:
                return json.loads((out / "points" / point.key / "result.json").read_text()).get("headline", [])
            except (OSError, ValueError):
                continue
    return []


def _write_table(out: Path, points: list[SweepPoint], rows: dict, grid, base_scenario: Scenario, source: str,
                 skipped: int, engine: str, workers: int, interrupted: bool = False) -> pd.DataFrame:
    from . import plots

    paths = [p for p, _ in grid]
    table = pd.DataFrame([rows.get(p.key, {**p.values, "point": p.key, "status": "not run", "message": ""})
                          for p in points])
    table.to_csv(out / "results.csv", index=False)
    headline = [m for m in _headline(out, points, rows) if m in table]
    counts = table["status"].value_counts().to_dict()
    report = Report(f"Sweep over {', '.join(paths)}", base_scenario.name, source)
    report.paragraph(f"{len(points)} points ({skipped} already done before this run), engine {engine}, "
                     f"{workers} workers. Status: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ". "
                     + ("**The sweep was interrupted**: rerun the same command to finish it. " if interrupted else "")
                     + "Each point's full study output is in `points/<point>/`; `results.csv` has one row per point.")
    report.table(table.drop(columns=["point"]), "Results:")
    if headline and (table["status"] == "ok").any():
        plots.sweep_metrics(table[table["status"] == "ok"], paths, headline, out / "sweep.png",
                            f"{base_scenario.name}: {base_scenario.study.kind} study", _meaning(out, points))
        report.figure("sweep.png", f"{', '.join(headline)} against {paths[0]}"
                      + (f", one line per value of {', '.join(paths[1:])}" if len(paths) > 1 else ""))
    report.write(out)
    return table

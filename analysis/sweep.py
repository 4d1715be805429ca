"""`splitsim sweep`: a grid over any scenario fields, run in local processes or on a Ray cluster.

Every point is validated before any work starts. Each point runs the scenario's study in
`DIR/points/<id>/`; as soon as it finishes, its row (the grid values, a status and the study's
headline metrics) is written to `DIR/points/<id>/result.json`, so a killed sweep loses nothing and
a rerun skips every finished point. A point whose input is infeasible (say, a cut whose memory
exceeds the device) is recorded as `infeasible` with the reason; an unexpected failure as `error`;
neither stops the sweep. `DIR/results.csv` is the tidy table of all points.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pandas as pd

from scenarios import InputError, Problem, Scenario, ScenarioError, parse_scenario, read_yaml, set_path

from .outputs import prepare_out_dir, write_json, write_resolved_scenario
from .progress import progress_bar
from .report import Report


@dataclass(frozen=True)
class SweepPoint:
    """One grid point: the values set (dotted path -> value) and the full scenario data."""

    key: str
    values: dict[str, Any]
    data: dict


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


def _point_key(values: dict[str, Any]) -> str:
    text = json.dumps(values, sort_keys=True, default=str)
    readable = "_".join(f"{k.split('.')[-1]}-{v}" for k, v in values.items())
    readable = re.sub(r"[^A-Za-z0-9._-]+", "", readable)[:60]
    return f"{readable}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def expand_grid(base: dict, sets: list[tuple[str, list[Any]]]) -> list[SweepPoint]:
    """All points of the grid, each validated; raises one ScenarioError listing every bad point."""
    if not sets:
        raise InputError("give at least one --set PATH=VALUES", field="--set", value=None)
    paths = [p for p, _ in sets]
    if len(set(paths)) != len(paths):
        raise InputError("each path may be set once", field="--set", value=paths)
    points, problems = [], []
    for combo in itertools.product(*(values for _, values in sets)):
        values = dict(zip(paths, combo))
        data = base
        try:
            for path, value in values.items():
                data = set_path(data, path, value)
            parse_scenario(data)
        except ScenarioError as err:
            label = ", ".join(f"{k}={v!r}" for k, v in values.items())
            problems += [Problem(p.field, f"{p.message} [at {label}]", p.value, p.has_value, "--set")
                         for p in err.problems]
            continue
        points.append(SweepPoint(_point_key(values), values, data))
    if problems:
        unique = list({p.line(): p for p in problems}.values())
        raise ScenarioError(unique)
    return points


def run_point(data: dict, point_dir: str) -> dict:
    """Run one point's study; return its status and headline metrics (never raises)."""
    from .runs import run_study

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        scenario = parse_scenario(data)
        run_study(scenario, point_dir, progress=False)
        summary = json.loads((Path(point_dir) / "summary.json").read_text())
        return {"status": "ok", "message": "", **summary.get("metrics", {})}
    except InputError as err:
        return {"status": "infeasible", "message": str(err).splitlines()[0]}
    except Exception as err:  # noqa: BLE001 - one point's bug must not stop the sweep; it is reported
        tail = traceback.format_exc().strip().splitlines()[-1]
        return {"status": "error", "message": f"{type(err).__name__}: {tail}"}


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


def _record(out: Path, point: SweepPoint, outcome: dict) -> dict:
    row = {**point.values, "point": point.key, **outcome}
    folder = out / "points" / point.key
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / "result.json", {"row": row})
    return row


def _finished(out: Path, point: SweepPoint) -> dict | None:
    path = out / "points" / point.key / "result.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["row"]
    except (ValueError, KeyError):
        return None


def _run_local(todo: list[SweepPoint], out: Path, workers: int, on_row) -> None:
    if workers <= 1:
        for point in todo:
            on_row(_record(out, point, run_point(point.data, str(out / "points" / point.key))))
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending = {pool.submit(run_point, p.data, str(out / "points" / p.key)): p for p in todo}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                point = pending.pop(future)
                on_row(_record(out, point, future.result()))


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
    try:
        remote = ray.remote(num_cpus=1)(run_point)
        pending = {remote.remote(p.data, str(out / "points" / p.key)): p for p in todo}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                point = pending.pop(ref)
                on_row(_record(out, point, ray.get(ref)))
    finally:
        if started:
            ray.shutdown()


def run_sweep(scenario_path: str | Path, sets: list[str], out_dir: str | Path, engine: str = "local",
              workers: int | None = None, address: str | None = None, progress: bool | None = None) -> list[str]:
    """Expand, validate, run (skipping finished points) and tabulate a sweep."""
    from scenarios import load_scenario

    base_scenario: Scenario = load_scenario(scenario_path)
    base = read_yaml(Path(scenario_path).read_text(encoding="utf-8"), str(scenario_path))
    grid = [parse_set(s) for s in sets]
    points = expand_grid(base, grid)  # every point valid, or nothing runs
    if engine not in ("local", "ray"):
        raise InputError("engine must be 'local' or 'ray'", field="--engine", value=engine)
    workers = workers or min(len(points), os.cpu_count() or 1)
    if workers < 1:
        raise InputError("needs at least one worker", field="--workers", value=workers)
    out = prepare_out_dir(out_dir)
    write_resolved_scenario(base_scenario, out, str(scenario_path))
    write_json(out / "sweep.json", {"scenario": str(scenario_path), "grid": {p: v for p, v in grid},
                                    "engine": engine, "workers": workers, "points": len(points)})
    rows = {}
    todo = []
    for point in points:
        row = _finished(out, point)
        if row is not None:
            rows[point.key] = row
        else:
            todo.append(point)
    skipped = len(rows)
    if todo:
        _prepare_profiles(todo)
    with progress_bar(len(points), "sweep", progress, unit="point") as bar:
        bar.update(skipped)

        def on_row(row: dict) -> None:
            rows[row["point"]] = row
            bar.update(1)

        if engine == "local":
            _run_local(todo, out, workers, on_row)
        else:
            _run_ray(todo, out, workers, address, on_row)
    table = pd.DataFrame([rows[p.key] for p in points])
    table.to_csv(out / "results.csv", index=False)
    counts = table["status"].value_counts().to_dict()
    report = Report(f"Sweep over {', '.join(p for p, _ in grid)}", base_scenario.name, str(scenario_path))
    report.paragraph(f"{len(points)} points ({skipped} already done before this run), engine {engine}, "
                     f"{workers} workers. Status: " + ", ".join(f"{n} {s}" for s, n in counts.items()) + ". "
                     "Each point's full study output is in `points/<point>/`; `results.csv` has one row per point.")
    report.table(table.drop(columns=["point"]), "Results:")
    report.write(out)
    return [f"{len(points)} points: " + ", ".join(f"{n} {s}" for s, n in counts.items())
            + f" ({skipped} done before, {len(todo)} run now)", f"-> {out / 'results.csv'}"]

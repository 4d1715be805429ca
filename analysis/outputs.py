"""Output folders: every one holds the resolved scenario stamped with version and git revision."""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from scenarios import InputError, Scenario, scenario_to_yaml


@functools.lru_cache(maxsize=1)
def package_version() -> str:
    try:
        return metadata.version("splitsim")
    except metadata.PackageNotFoundError:
        return "0+unknown"


@functools.lru_cache(maxsize=1)
def git_revision() -> str:
    """`git rev-parse HEAD` of the source checkout (+ '-dirty' with local changes), or 'unknown'."""
    root = Path(__file__).resolve().parent.parent
    try:
        rev = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return rev + ("-dirty" if dirty else "")


def provenance() -> dict:
    return {"splitsim_version": package_version(), "git_revision": git_revision(),
            "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create the output folder (parents too); a clear InputError if that is impossible."""
    path = Path(out_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create output folder: {err.strerror}", field="--out", value=str(path)) from None
    if not path.is_dir():
        raise InputError("output path exists and is not a folder", field="--out", value=str(path))
    return path


def write_resolved_scenario(scenario: Scenario, out_dir: Path, source: str = "") -> Path:
    """Write `scenario.resolved.yaml`: every default filled in, stamped with version and revision."""
    stamp = provenance()
    header = (f"Resolved scenario written by splitsim {stamp['splitsim_version']}\n"
              f"git revision: {stamp['git_revision']}\ncreated: {stamp['created_utc']}\n"
              + (f"from: {source}\n" if source else "")
              + f"Re-run with: splitsim run {out_dir / 'scenario.resolved.yaml'} --out NEW_DIR")
    path = out_dir / "scenario.resolved.yaml"
    path.write_text(scenario_to_yaml(scenario, header), encoding="utf-8")
    return path


def _clean(value: Any) -> Any:
    """JSON-safe: numpy to Python, non-finite floats to None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_json(path: Path, data: dict) -> Path:
    """Write JSON atomically (temp file, then rename), with provenance added at the top."""
    payload = {"provenance": provenance(), **_clean(data)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path

"""Output folders: every one holds the resolved scenario stamped with version and git revision."""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import math
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from splitsim.scenarios import InputError, Scenario, scenario_to_dict, scenario_to_yaml


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


MANIFEST = "run.json"
"""The file that says which run an output folder belongs to: command, scenario digest, version."""


def scenario_digest(scenario: Scenario) -> str:
    """SHA-256 of the resolved scenario (every default filled in) and of the contents of the data
    files it names (an availability trace, a stored profile): the identity of a run's input, so
    that editing such a file, under the same name, is a new run."""
    text = json.dumps(scenario_to_dict(scenario), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(text.encode())
    for path in input_files(scenario):
        digest.update(f"\0{path}\0".encode())
        if Path(path).is_file():
            digest.update(hashlib.sha256(Path(path).read_bytes()).digest())
    return digest.hexdigest()


def input_files(scenario: Scenario) -> list[str]:
    """The data files a scenario reads besides itself."""
    files = [scenario.simulation.availability_trace]
    if scenario.model is not None:
        files.append(scenario.model.profile_path)
    return [f for f in files if f is not None]


def run_identity(command: str, scenario: Scenario) -> dict:
    return {"command": command, "scenario": scenario.name, "scenario_sha256": scenario_digest(scenario),
            "splitsim_version": package_version()}


def _same_run(a: dict, b: dict) -> bool:
    keys = ("command", "scenario_sha256", "splitsim_version")
    return all(a.get(k) == b.get(k) for k in keys)


def _describe(manifest: dict) -> str:
    stamp = manifest.get("provenance", {})
    return (f"`splitsim {manifest.get('command', '?')}` of scenario '{manifest.get('scenario', '?')}' "
            f"(splitsim {manifest.get('splitsim_version', '?')}, {stamp.get('created_utc', '?')})")


def _files_under(path: Path) -> list[str]:
    """Every file below `path`, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() or p.is_symlink())


def _empty(path: Path, manifest: dict) -> None:
    """Delete what the run recorded in `manifest` wrote: its `files` (listed when it ended or was
    interrupted), else everything but the `other_files` that were there before it (a run killed
    before it could list its files); then the folders this left empty. A user's own files stay."""
    written = manifest.get("files")
    keep = set(manifest.get("other_files") or [])
    doomed = set(written) if isinstance(written, list) else set(_files_under(path)) - keep
    doomed |= {MANIFEST, "scenario.resolved.yaml"}
    for rel in sorted(doomed, reverse=True):
        entry = path / rel
        if (entry.is_file() or entry.is_symlink()) and rel not in keep:
            entry.unlink()
    for folder in sorted((p for p in path.rglob("*") if p.is_dir() and not p.is_symlink()),
                         key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def record_outputs(out_dir: str | Path) -> None:
    """List in run.json the files this run wrote (every file in the folder but the user's own that
    were there when it was claimed), so that a rerun or --overwrite deletes exactly those."""
    path = Path(out_dir)
    manifest_path = path / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    keep = set(manifest.get("other_files") or [])
    manifest["files"] = [f for f in _files_under(path) if f not in keep and f != MANIFEST
                         and not f.endswith(".tmp")]
    manifest.pop("provenance", None)
    write_json(manifest_path, manifest)


def claim_out_dir(out_dir: str | Path, command: str, scenario: Scenario, *, resumable: bool = False,
                  overwrite: bool = False) -> Path:
    """Make `out_dir` this run's folder, so that its contents always belong to one run.

    - new or empty: claimed (`run.json` written);
    - holds the same run (same command, resolved scenario and splitsim version): a resumable command
      (sweep, train) keeps what is there and resumes; any other starts afresh, its files deleted (only
      the files run.json lists as the run's: a user's own notes in the folder stay);
    - holds another run, or files that are not a splitsim run: an InputError (field --out) unless
      `overwrite`, which empties a folder that holds a splitsim run (never any other folder).
    """
    path = prepare_out_dir(out_dir)
    identity = run_identity(command, scenario)
    entries = list(path.iterdir())
    manifest_path = path / MANIFEST
    manifest = None
    if manifest_path.is_file():
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except ValueError:
            manifest = {}
    if entries:
        if manifest is not None and _same_run(manifest, identity):
            if resumable:
                return path
            _empty(path, manifest)
        elif overwrite:
            if manifest is None and not (path / "scenario.resolved.yaml").is_file():
                raise InputError("is not empty and holds no splitsim run: refusing to empty it; choose a new folder",
                                 field="--out", value=str(path))
            _empty(path, manifest or {})
        elif manifest is None:
            raise InputError("is not empty and holds no splitsim run (no run.json); choose a new or empty folder",
                             field="--out", value=str(path))
        else:
            change = "other inputs" if manifest.get("command") == command else "another command"
            raise InputError(f"holds the output of {_describe(manifest)}, a run with {change}; choose a new --out, "
                             "or pass --overwrite to replace it", field="--out", value=str(path))
    write_json(manifest_path, {**identity, "files": None, "other_files": _files_under(path)})
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

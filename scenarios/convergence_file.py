"""A measured convergence file (`splitsim convergence`'s convergence.json): reading it, and whether it
was measured for the scenario that uses it (`theory.source: measured`).

The file holds every run's curve, the rounds-to-target per V and the fits (optimizer/convergence_fit.py);
what a study needs of it is the FedsLLM form's fitted (a, v): R(V) = a / (1 - 2^(-V/v)), the same
(a, v) as the bound's I0 = a / (1 - eta), V = v log2(1/eta), so every study that solves problem (17)
uses the measured curve through `optimizer.delay_model.convergence_constants`.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

from .errors import Problem

CONVERGENCE_FORMAT = 1

IDENTITY_FIELDS = ("model", "task", "scheme", "users", "partition", "batch_size", "sequence_length")
"""What a convergence file must share with the scenario that uses it (its `identity`)."""


class ConvergenceFileError(ValueError):
    """A convergence file that cannot be used; the message says why."""


@functools.lru_cache(maxsize=32)
def _read(path: str, mtime_ns: int) -> dict:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise ConvergenceFileError(f"cannot be read ({type(err).__name__})") from None
    except json.JSONDecodeError as err:
        raise ConvergenceFileError(f"is not JSON (line {err.lineno})") from None
    if not isinstance(data, dict) or data.get("format") != CONVERGENCE_FORMAT:
        raise ConvergenceFileError(f"is not a splitsim convergence file (format {CONVERGENCE_FORMAT})")
    fit = (data.get("fit") or {}).get("fedsllm") or {}
    a, v = fit.get("a"), fit.get("v")
    if not all(isinstance(x, (int, float)) and math.isfinite(x) and x > 0 for x in (a, v)):
        raise ConvergenceFileError("holds no fitted (a, v) of the FedsLLM form (the fit failed when it was written)")
    if not isinstance(data.get("identity"), dict):
        raise ConvergenceFileError("has no identity (model, scheme, users, ...)")
    return data


def read_convergence(path: str | Path) -> dict:
    """The parsed convergence file (cached while the file is unchanged); ConvergenceFileError if unusable."""
    p = Path(path)
    if not p.is_file():
        raise ConvergenceFileError("no such file")
    return _read(str(p.resolve()), p.stat().st_mtime_ns)


def measured_constants(path: str | Path) -> tuple[float, float]:
    """(a, v) of the FedsLLM form fitted to the measured rounds-to-target."""
    fit = read_convergence(path)["fit"]["fedsllm"]
    return float(fit["a"]), float(fit["v"])


def scenario_identity(scenario) -> dict:
    """What a convergence measurement of `scenario` is for (IDENTITY_FIELDS)."""
    m = scenario.model
    return {"model": None if m is None else m.source, "task": None if m is None else m.task,
            "scheme": scenario.scheme, "users": scenario.cell.users, "partition": scenario.convergence.partition,
            "batch_size": None if m is None else m.batch_size,
            "sequence_length": None if m is None else m.sequence_length}


def convergence_file_problems(scenario) -> list[Problem]:
    """With `theory.source: measured`: the file exists, is a fitted convergence file, and was measured
    for this scenario's model, task, scheme, users, partition, batch size and sequence length."""
    theory = scenario.theory
    if theory.source != "measured" or not theory.convergence_path:
        return []
    field = "theory.convergence_path"
    try:
        data = read_convergence(theory.convergence_path)
    except ConvergenceFileError as err:
        return [Problem(field, str(err), theory.convergence_path, True)]
    if scenario.model is None:
        return [Problem("model", "a measured convergence curve belongs to a model: add the model section it was "
                                 "measured with", None, True)]
    ours, theirs = scenario_identity(scenario), data["identity"]
    wrong = [f"{key} {theirs.get(key)!r} (the scenario: {ours[key]!r})" for key in IDENTITY_FIELDS
             if theirs.get(key) != ours[key]]
    if wrong:
        return [Problem(field, "was measured for another setting: " + "; ".join(wrong), theory.convergence_path, True)]
    return []

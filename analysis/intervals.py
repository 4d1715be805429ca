"""Prediction intervals carried from a measured convergence curve into the delays computed from it.

With `theory.source: measured` the rounds a training needs are R(V) fitted to real training, whose
seeds scatter by ~20 %: one new seed needs between `low` and `high` rounds, 90 % of the time
(optimizer.convergence_fit.SeedFit.interval: the seeds' scatter and the fit's uncertainty, fitted by
maximum likelihood to every run). Every delay is rounds × the time of a round, so such a seed's delay
lies between the round time × low and × high: "459 s (90 %: 270–693 s)". Under FedsLLM's bound
(`theory.source: bound`) there is no interval: the bound is a guarantee of its constants, not a
measurement.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

LEVEL = 0.9  # the prediction level reported everywhere


@lru_cache(maxsize=8)
def _seed_fit(path: str, mtime_ns: int):
    from splitsim.optimizer.convergence_fit import fit_seeds
    from splitsim.scenarios.convergence_file import read_convergence

    return fit_seeds(read_convergence(path)["runs"])


def rounds_interval(theory, local_steps, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray] | None:
    """(low, high): the `level` prediction interval of one new seed's rounds at V = `local_steps`
    (shapes of local_steps); None under the bound, or where the file's runs cannot give an interval
    (fewer than 3 reached the target)."""
    if theory.source != "measured" or not theory.convergence_path:
        return None
    path = Path(theory.convergence_path)
    try:
        fit = _seed_fit(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError):
        return None
    return fit_interval(fit, local_steps, level)


def fit_interval(fit, local_steps, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) rounds of a SeedFit (optimizer.convergence_fit.fit_seeds) at V = `local_steps`."""
    band = fit.interval(np.asarray(local_steps, dtype=float), level)
    return band["low"], band["high"]


def with_delay_interval(table, theory, delay_column: str = "T_s", steps_column: str = "V",
                        rounds_column: str = "I0", fit=None):
    """`table` (a DataFrame with the delay, V and rounds columns) with `<delay>_low_90_s` and
    `<delay>_high_90_s` beside the delay: the delay per round times one new seed's rounds at the
    low and high ends of their interval (measured convergence only, or with a SeedFit `fit`; the
    table as it is otherwise)."""
    steps = table[steps_column].to_numpy(dtype=float) if len(table) else None
    band = None if steps is None else fit_interval(fit, steps) if fit is not None else rounds_interval(theory, steps)
    if band is None:
        return table
    table = table.copy()
    per_round = table[delay_column] / table[rounds_column]
    stem = delay_column[:-2] if delay_column.endswith("_s") else delay_column
    at = table.columns.get_loc(delay_column) + 1
    table.insert(at, f"{stem}_low_90_s", per_round * band[0])
    table.insert(at + 1, f"{stem}_high_90_s", per_round * band[1])
    return table


def delay_interval(theory, local_steps: float, rounds: float, delay_s: float) -> dict | None:
    """{"low_s", "high_s", "level"}: a training of `rounds` rounds of V = `local_steps` that took
    `delay_s`, for one new seed (None under the bound)."""
    band = rounds_interval(theory, local_steps)
    if band is None:
        return None
    return {"low_s": float(delay_s / rounds * band[0]), "high_s": float(delay_s / rounds * band[1]), "level": LEVEL}


def _seconds(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def interval_text(delay_s: float, interval: dict | None) -> str:
    """'46 s' or '46 s (90 %: 38–61 s)'."""
    if interval is None:
        return f"{_seconds(delay_s)} s"
    return (f"{_seconds(delay_s)} s ({100 * interval['level']:.0f} %: {_seconds(interval['low_s'])}–"
            f"{_seconds(interval['high_s'])} s)")

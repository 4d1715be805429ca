"""Choosing eta: the paper's grid 0.01 ... 0.99 and an exact bounded 1-D search.

The training delay is T(eta) = I0(eta)·P*(V(eta)), where P*(V) is the optimal per-round time
with V local iterations (a strategy's bandwidth rule gives it). The grid evaluates T on the
paper's 99 points; the exact search refines with bounded Brent minimisation between the grid
neighbours of the best grid point (or, with integer counts, enumerates every V: for V local
iterations the smallest eta, 2^(-V/v), gives the fewest rounds).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from .delay_model import global_rounds, local_iterations

ETA_MIN, ETA_MAX = 1e-4, 1.0 - 1e-6  # bounds of the exact search


def paper_eta_grid(step: float = 0.01) -> np.ndarray:
    """0.01, 0.02, ..., 0.99 (FedsLLM §III.E)."""
    n = int(round(1.0 / step))
    return np.round(np.arange(1, n) * step, 12)


@dataclass(frozen=True)
class EtaChoice:
    """The best eta on the grid and by the exact search, with the delays they give (s)."""

    eta: float  # exact search
    T_s: float
    eta_grid: float
    T_grid_s: float
    grid_eta: np.ndarray
    grid_T_s: np.ndarray
    evaluations: int

    def summary(self) -> dict:
        return {"eta_exact": self.eta, "T_exact_s": self.T_s, "eta_grid": self.eta_grid, "T_grid_s": self.T_grid_s,
                "eta_evaluations": self.evaluations}


def choose_eta(per_round_s: Callable[[float], float], a: float, v: float, counts: str,
               grid: np.ndarray) -> EtaChoice:
    """Minimise T(eta) = I0(eta)·per_round_s(V(eta)) on `grid` and exactly.

    If `per_round_s` has a `many(V_array)` method, the grid is evaluated with one call to it."""
    calls = 0

    def T(eta: float) -> float:
        nonlocal calls
        calls += 1
        return float(global_rounds(eta, a, counts) * per_round_s(local_iterations(eta, v, counts)))

    many = getattr(per_round_s, "many", None)
    if many is not None:  # the per-round rule can solve the whole grid at once
        V_grid = local_iterations(np.asarray(grid, dtype=float), v, counts)
        grid_T = global_rounds(np.asarray(grid, dtype=float), a, counts) * many(V_grid)
        calls += len(grid)
    else:
        grid_T = np.array([T(float(e)) for e in grid])
    best = int(np.argmin(grid_T))
    best_eta, best_T = float(grid[best]), float(grid_T[best])
    if counts == "integer":
        v_max = math.ceil(v * math.log2(1.0 / ETA_MIN))
        candidates = [(2.0 ** (-V / v)) for V in range(1, v_max + 1)]
        values = [(T(e), e) for e in candidates if ETA_MIN <= e <= ETA_MAX]
        exact_T, exact_eta = min(values + [(best_T, best_eta)])
    else:
        low = float(grid[best - 1]) if best > 0 else ETA_MIN
        high = float(grid[best + 1]) if best < len(grid) - 1 else ETA_MAX
        res = minimize_scalar(T, bounds=(low, high), method="bounded", options={"xatol": 1e-10 * high})
        exact_eta, exact_T = (float(res.x), float(res.fun)) if res.fun < best_T else (best_eta, best_T)
    return EtaChoice(eta=exact_eta, T_s=exact_T, eta_grid=best_eta, T_grid_s=best_T, grid_eta=np.asarray(grid),
                     grid_T_s=grid_T, evaluations=calls)

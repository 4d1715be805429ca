"""Rounds-to-target against local iterations V: the measured points and the curves fitted to them.

FedsLLM's bound (Lemmas 1-2) gives I0 = a / (1 - eta) rounds of V = v log2(1/eta) local iterations;
eliminating eta, R(V) = a / (1 - 2^(-V/v)) — the form the optimiser uses. Two alternatives are fitted
beside it so that the data can say whether that form is the right one:

- `inverse`:  R(V) = a1 + a2 / V (rounds fall as 1/V towards a floor; local SGD's usual picture),
- `drift`:    R(V) = a1 + a2 / V + a3 V (client drift: too many local steps start to cost rounds).

Each is a weighted least-squares fit (weights 1 / sigma^2 from the seeds' spread at each V; scipy's
`least_squares`, positive constants through their logarithms), compared by the small-sample Akaike
criterion AICc on the weighted residuals: the lower is better, a difference above 2 is notable,
above 10 decisive (Burnham & Anderson, "Model Selection and Multimodel Inference", 2002, §2.6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

FORMS = ("fedsllm", "inverse", "drift")
FORM_TEXT = {"fedsllm": "a / (1 - 2^(-V/v))", "inverse": "a1 + a2 / V", "drift": "a1 + a2 / V + a3 V"}
PARAMS = {"fedsllm": ("a", "v"), "inverse": ("a1", "a2"), "drift": ("a1", "a2", "a3")}


def fedsllm_rounds(V, a: float, v: float):
    """R(V) = a / (1 - 2^(-V/v)): FedsLLM's I0 = a/(1 - eta) at eta = 2^(-V/v)."""
    return a / (1.0 - np.exp2(-np.asarray(V, dtype=float) / v))


def predict(form: str, params: dict, V):
    V = np.asarray(V, dtype=float)
    if form == "fedsllm":
        return fedsllm_rounds(V, params["a"], params["v"])
    if form == "inverse":
        return params["a1"] + params["a2"] / V
    return params["a1"] + params["a2"] / V + params["a3"] * V


@dataclass(frozen=True)
class RoundsPoint:
    """Rounds-to-target at one V over the seeds: their mean (a censored seed counts as max_rounds,
    so the mean is then a lower bound), the spread used as the fit's sigma, and the counts."""

    local_steps: int
    mean_rounds: float
    sigma_rounds: float
    reached: int
    censored: int

    @property
    def lower_bound(self) -> bool:
        return self.censored > 0


SIGMA_FLOOR_ROUNDS = 0.5
SIGMA_FLOOR_SHARE = 0.05
"""The fit's sigma at a V is at least max(0.5 round, 5 % of the mean): rounds are whole numbers, and
two or three seeds that happen to agree must not get an infinite weight."""


def rounds_points(runs: list[dict], max_rounds: int) -> tuple[list[RoundsPoint], list[int]]:
    """Per V (ascending): the points of the V where some seed reached the target, and the V where
    none did (left out of the fit: their rounds are only known to exceed max_rounds).
    `runs`: dicts with local_steps and rounds_to_target (None: censored)."""
    by_v: dict[int, list] = {}
    for run in runs:
        by_v.setdefault(int(run["local_steps"]), []).append(run["rounds_to_target"])
    points, never = [], []
    for V in sorted(by_v):
        values = by_v[V]
        reached = [float(r) for r in values if r is not None]
        if not reached:
            never.append(V)
            continue
        filled = np.array(reached + [float(max_rounds)] * (len(values) - len(reached)))
        spread = float(filled.std(ddof=1)) if len(filled) > 1 else 0.0
        sigma = max(spread, SIGMA_FLOOR_ROUNDS, SIGMA_FLOOR_SHARE * float(filled.mean()))
        points.append(RoundsPoint(V, float(filled.mean()), sigma, len(reached), len(values) - len(reached)))
    return points, never


@dataclass(frozen=True)
class Fit:
    form: str
    params: dict
    predicted: list[float]
    residuals: list[float]  # measured - predicted, in rounds
    weighted_sse: float
    aicc: float

    def to_dict(self) -> dict:
        return {"form": FORM_TEXT[self.form], **self.params, "predicted": self.predicted, "residuals": self.residuals,
                "weighted_sse": self.weighted_sse, "aicc": self.aicc}


def aicc(weighted_sse: float, n: int, k: int) -> float:
    """Small-sample Akaike criterion of a least-squares fit with k constants to n points (inf when
    n <= k + 1: too few points to compare)."""
    if n <= k + 1:
        return math.inf
    return n * math.log(max(weighted_sse, 1e-300) / n) + 2 * k + 2 * k * (k + 1) / (n - k - 1)


def fit_form(form: str, points: list[RoundsPoint]) -> Fit:
    """Weighted least squares of `form` to the points (positive constants)."""
    V = np.array([p.local_steps for p in points], dtype=float)
    R = np.array([p.mean_rounds for p in points], dtype=float)
    w = 1.0 / np.array([p.sigma_rounds for p in points], dtype=float)
    names = PARAMS[form]
    k = len(names)
    if len(points) < k:
        raise ValueError(f"the {form} form has {k} constants and needs at least {k} points, got {len(points)}")
    floor = float(R.min())
    starts = {"fedsllm": [(max(floor * 0.9, 1e-3), float(np.median(V)) * s) for s in (0.3, 1.0, 3.0)],
              "inverse": [(max(floor * 0.8, 1e-3), max(float((R.max() - floor) * V.min()), 1e-3))],
              "drift": [(max(floor * 0.8, 1e-3), max(float((R.max() - floor) * V.min()), 1e-3), 1e-3)]}[form]

    def residual(log_params):
        params = dict(zip(names, np.exp(log_params)))
        return (predict(form, params, V) - R) * w

    best = None
    for start in starts:
        result = least_squares(residual, np.log(np.asarray(start, dtype=float)), method="trf", max_nfev=5000)
        if best is None or result.cost < best.cost:
            best = result
    params = {n: float(x) for n, x in zip(names, np.exp(best.x))}
    predicted = predict(form, params, V)
    sse = float(np.sum(((predicted - R) * w) ** 2))
    return Fit(form, params, [float(x) for x in predicted], [float(x) for x in R - predicted], sse,
               aicc(sse, len(points), k))


def fit_all(points: list[RoundsPoint]) -> dict:
    """Every form's fit, and which the data favour and by how much: by AICc where at least two forms
    have one (n > k + 1 points); else, with as few V as 3, among the two-constant forms by weighted
    SSE (equal numbers of constants, so the smaller residual is the better fit)."""
    fits = {form: fit_form(form, points) for form in FORMS if len(points) >= len(PARAMS[form])}
    out = {form: fit.to_dict() for form, fit in fits.items()}
    finite = {f: fit.aicc for f, fit in fits.items() if math.isfinite(fit.aicc)}
    if len(finite) >= 2:
        best = min(finite, key=finite.get)
        out.update(criterion="AICc", better=best, delta_aicc_fedsllm=finite.get("fedsllm", math.inf) - finite[best])
    else:
        two = {f: fit.weighted_sse for f, fit in fits.items() if len(PARAMS[f]) == 2}
        best = min(two, key=two.get)
        out.update(criterion="weighted SSE (too few V for AICc)", better=best, delta_aicc_fedsllm=None)
    out["sse_ratio_fedsllm"] = fits["fedsllm"].weighted_sse / max(fits[best].weighted_sse, 1e-300)
    return out


def leave_one_out(points: list[RoundsPoint]) -> list[dict]:
    """For each V (when at least 2 others remain, which fix the form's 2 constants): the FedsLLM form
    fitted without it, its prediction there and the error against the measured rounds."""
    rows = []
    if len(points) < 3:
        return rows
    for i, held in enumerate(points):
        fit = fit_form("fedsllm", points[:i] + points[i + 1:])
        guess = float(fedsllm_rounds(held.local_steps, fit.params["a"], fit.params["v"]))
        rows.append({"local_steps": held.local_steps, "measured_rounds": held.mean_rounds, "predicted_rounds": guess,
                     "error_pct": 100.0 * (guess - held.mean_rounds) / held.mean_rounds, "a": fit.params["a"],
                     "v": fit.params["v"]})
    return rows

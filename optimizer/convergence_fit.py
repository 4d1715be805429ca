"""Rounds-to-target against local iterations V: the measured points and the curves fitted to them.

FedsLLM's bound (Lemmas 1-2) gives I0 = a / (1 - eta) rounds of V = v log2(1/eta) local iterations;
eliminating eta, R(V) = a / (1 - 2^(-V/v)) — the form the optimiser uses. Two alternatives are fitted
beside it so that the data can say whether that form is the right one:

- `inverse`:  R(V) = a1 + a2 / V (rounds fall as 1/V towards a floor; local SGD's usual picture),
- `drift`:    R(V) = a1 + a2 / V + a3 V (client drift: too many local steps start to cost rounds).

Each is a weighted least-squares fit (weights 1 / sigma^2 from the seeds' spread at each V; scipy's
`least_squares`, positive constants through their logarithms). The form is chosen by how well it
predicts a V it was not fitted to (leave one V out: the root mean square of the relative errors);
the small-sample Akaike criterion AICc on the weighted residuals (Burnham & Anderson, "Model
Selection and Multimodel Inference", 2002, §2.6) is reported beside it where there are enough V.
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
    """Every form's fit, and which the data favour: by the error of predicting each V from the others
    (leave one V out: `held_out`; the root mean square of the relative errors), among the forms that
    can be so tested — every two-constant form from 3 V, the drift form from 4. AICc (where n > k + 1)
    and the weighted SSE are kept beside it."""
    fits = {form: fit_form(form, points) for form in FORMS if len(points) >= len(PARAMS[form])}
    out = {form: fit.to_dict() for form, fit in fits.items()}
    finite = {f: fit.aicc for f, fit in fits.items() if math.isfinite(fit.aicc)}
    out["delta_aicc_fedsllm"] = finite.get("fedsllm", math.inf) - min(finite.values()) if len(finite) >= 2 else None
    tested = held_out(points)
    for form, errors in tested.items():
        out[form]["held_out_errors_pct"] = errors
        out[form]["held_out_rms_pct"] = float(np.sqrt(np.mean(np.square(errors))))
    if len(tested) >= 2:
        best = min(tested, key=lambda f: out[f]["held_out_rms_pct"])
        out["criterion"] = "held-out error (leave one V out)"
    elif len(finite) >= 2:
        best = min(finite, key=finite.get)
        out["criterion"] = "AICc"
    else:
        two = {f: fit.weighted_sse for f, fit in fits.items() if len(PARAMS[f]) == 2}
        best = min(two, key=two.get)
        out["criterion"] = "weighted SSE (too few V to hold one out)"
    out["better"] = best
    out["sse_ratio_fedsllm"] = fits["fedsllm"].weighted_sse / max(fits[best].weighted_sse, 1e-300)
    return out


def held_out(points: list[RoundsPoint]) -> dict[str, list[float]]:
    """Per form that leaves at least as many V as it has constants when one is held out: the relative
    error (%) of its fit without each V, predicting that V."""
    out = {}
    for form in FORMS:
        if len(points) - 1 < len(PARAMS[form]):
            continue
        errors = []
        for i, held in enumerate(points):
            fit = fit_form(form, points[:i] + points[i + 1:])
            guess = float(predict(form, fit.params, held.local_steps))
            errors.append(100.0 * (guess - held.mean_rounds) / held.mean_rounds)
        out[form] = errors
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


# ---- one new seed's rounds: a prediction interval ------------------------------------------------
# Seeds scatter multiplicatively (runs at one V differ by ~20 %, more at few local steps), so each
# run's rounds are modelled as R(V) · exp(e), e ~ N(0, s²), with R the FedsLLM form. (a, v, s) are
# fitted by maximum likelihood on every run (not on per-V means), a run that never reached the target
# entering as censored: its rounds are only known to exceed the rounds it trained (Tobit likelihood).
# A new seed's log-rounds at V then has variance s² (its own scatter) + gᵀ C g (the fit's uncertainty,
# C the inverse observed information of (ln a, ln v), g the gradient of ln R(V)); the interval is
# ln R(V) ± t_{n-2} · sqrt(...) with s² and C corrected by n / (n - 2) from their ML values (n runs, 2
# constants of the curve):
# the standard nonlinear-regression prediction interval (Seber & Wild, "Nonlinear Regression", 1989,
# §5.1), held against simulated data in tests/test_convergence_interval.py (coverage of new draws).


@dataclass(frozen=True)
class SeedFit:
    """A form fitted to every run, with the seeds' log-scatter and the fit's covariance."""

    form: str
    params: dict  # the form's constants (PARAMS[form])
    log_sigma: float  # s: standard deviation of ln(rounds) across seeds, bias-corrected
    covariance: np.ndarray  # (k, k): of the constants' logarithms
    runs: int
    censored: int

    @property
    def a(self) -> float:  # FedsLLM's constants, where the form is FedsLLM's
        return self.params["a"]

    @property
    def v(self) -> float:
        return self.params["v"]

    def rounds(self, local_steps) -> np.ndarray:
        return predict(self.form, self.params, local_steps)

    def interval(self, local_steps, level: float = 0.9) -> dict:
        """{'rounds': R(V), 'low', 'high'}: the `level` prediction interval of one new seed's rounds."""
        from scipy.stats import t as student_t

        V = np.asarray(local_steps, dtype=float)
        center = self.rounds(V)
        grad = _log_form_gradient(self.form, self.params, V)
        fit_var = np.einsum("...i,ij,...j->...", grad, self.covariance, grad)
        spread = np.sqrt(self.log_sigma**2 + fit_var)
        q = student_t.ppf(0.5 + level / 2, max(self.runs - len(self.params), 1))
        return {"rounds": center, "low": center * np.exp(-q * spread), "high": center * np.exp(q * spread)}


def _log_form_gradient(form: str, params: dict, V: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """d ln R(V) / d(ln constants) (..., k): for FedsLLM's form in closed form, (1, (V ln2 / v)
    2^(-V/v) / (1 - 2^(-V/v))); for the others by central differences."""
    V = np.asarray(V, dtype=float)
    if form == "fedsllm":
        x = np.exp2(-V / params["v"])
        return np.stack([np.ones_like(V), (V * math.log(2) / params["v"]) * x / (1 - x)], axis=-1)
    out = []
    for name in PARAMS[form]:
        up = {**params, name: params[name] * math.exp(step)}
        down = {**params, name: params[name] * math.exp(-step)}
        out.append((np.log(predict(form, up, V)) - np.log(predict(form, down, V))) / (2 * step))
    return np.stack(out, axis=-1)


def fit_seeds(runs: list[dict], form: str = "fedsllm") -> SeedFit:
    """Maximum-likelihood fit of R(V)·exp(N(0, s²)) to every run (dicts with local_steps,
    rounds_to_target — None when censored — and the censoring bound: censored_after where the crossing is
    read from a smoothed curve, else rounds_trained), R one of FORMS with positive constants."""
    from scipy.optimize import minimize
    from scipy.stats import norm

    names = PARAMS[form]
    k = len(names)
    V = np.array([float(r["local_steps"]) for r in runs])
    hit = np.array([r["rounds_to_target"] is not None for r in runs])
    y = np.log(np.array([float(r["rounds_to_target"] if r["rounds_to_target"] is not None
                               else r.get("censored_after") or r["rounds_trained"]) for r in runs]))
    if hit.sum() < k + 1 or len(set(V[hit])) < k:
        raise ValueError(f"a prediction interval needs at least {k + 1} runs that reached the target, at {k} or "
                         "more V")

    def nll(theta):
        theta = np.clip(theta, -50.0, 50.0)
        ln_s = theta[-1]
        with np.errstate(all="ignore"):
            mu = np.log(predict(form, dict(zip(names, np.exp(theta[:-1]))), V))
            s = math.exp(ln_s)
            z = (y - mu) / s
            value = -(np.sum(norm.logpdf(z[hit]) - ln_s) + np.sum(norm.logsf(z[~hit])))
        return float(value) if np.isfinite(value) else 1e300

    points, _ = rounds_points(runs, max_rounds=int(max(np.exp(y))) + 1)
    if len(points) >= k:
        start = fit_form(form, points).params
    else:
        start = {"fedsllm": {"a": float(np.exp(y.min())), "v": 2.0}}.get(form) or \
            {name: 1.0 for name in names}
    best = None
    for ln_s0 in (math.log(0.1), math.log(0.3)):
        x0 = np.array([math.log(max(start[n], 1e-9)) for n in names] + [ln_s0])
        for method in ("BFGS", "Nelder-Mead"):  # BFGS is fast; Nelder-Mead where it stalls
            result = minimize(nll, x0, method=method, options={"maxiter": 20000} if method == "Nelder-Mead" else {})
            if result.success:
                break
        if best is None or result.fun < best.fun:
            best = result
    n = len(runs)
    hessian = _numeric_hessian(nll, best.x)
    try:
        covariance = np.linalg.inv(hessian)[:k, :k]
    except np.linalg.LinAlgError:
        covariance = np.full((k, k), np.inf)
    sigma = math.exp(best.x[-1]) * math.sqrt(n / max(n - k, 1))
    covariance = covariance * (n / max(n - k, 1))
    params = {name: float(math.exp(x)) for name, x in zip(names, best.x[:-1])}
    return SeedFit(form, params, sigma, covariance, n, int((~hit).sum()))


def _numeric_hessian(f, x: np.ndarray, step: float = 1e-4) -> np.ndarray:
    """Central-difference Hessian of a scalar function (the negative log-likelihood's)."""
    k = len(x)
    h = np.zeros((k, k))
    for i in range(k):
        for j in range(i, k):
            e_i, e_j = np.eye(k)[i] * step, np.eye(k)[j] * step
            value = (f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j) + f(x - e_i - e_j)) / (4 * step * step)
            h[i, j] = h[j, i] = value
    return h

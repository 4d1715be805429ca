"""The structured energy solver's users settled at fixed globals: per-user 2-D Newton from a
first-order prediction, and, for the users it leaves, two nested monotone 1-D roots kept inside a
bracket (lam from the time, then pi from the budget). See structured.py.
"""

from __future__ import annotations

import math

import numpy as np


from .problem import EnergyRoundProblem
from .structured_user import _NEWTON_SETTLE_STEPS, _NU_START, _OPEN_STEP, _SHORTEST_STEP, _SUBSET_SHARE, _Point


def _evaluate(prob: EnergyRoundProblem, cols: np.ndarray, ln_lam: np.ndarray, ln_pi: np.ndarray | None,
              g: np.ndarray, warm: dict) -> _Point:
    """The responses of the users `cols` (all rows) at prices ln lam and ln pi (None: pi = w, no
    budget price), on the sub-problem of those users; warm starts are read and written back."""
    n, K = prob.shape
    sub = prob.columns(cols) if cols.size < K else prob
    sub_warm = {side: {key: arr[:, cols] for key, arr in values.items()} for side, values in warm.items()}
    z = np.zeros((n, cols.size, 2))
    z[..., 0] = ln_lam[:, cols]
    if ln_pi is None:
        binding = np.zeros((n, cols.size), dtype=bool)
    else:
        nu = np.exp(ln_pi[:, cols]) - prob.weight
        binding = nu > 0
        z[..., 1] = np.log(np.where(binding, nu, 1.0))
    pt = _Point(sub, z, g, binding, sub_warm)
    for side, values in sub_warm.items():
        for key, arr in values.items():
            warm.setdefault(side, {}).setdefault(key, np.zeros((n, K)))[:, cols] = arr
    return pt


def _root_decreasing(evaluate, x: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float,
                     active: np.ndarray | None = None, max_iter: int = 200) -> tuple[np.ndarray, np.ndarray, int]:
    """Roots of decreasing functions, one per entry (n, K), by Newton kept inside a bracket.

    `evaluate(x, active)` returns (F, dF/dx) on the entries `active` (others: anything). Entries
    start at x inside (lo, hi) (either may be infinite: the bracket grows by 2 a step until F
    changes sign). Only the entries `active` (default all) are solved. Returns (x, converged,
    evaluations); an entry is converged when |F| <= tol."""
    x, lo, hi = x.copy(), lo.copy(), hi.copy()
    active = np.ones(x.shape, dtype=bool) if active is None else active.copy()
    converged = np.zeros(x.shape, dtype=bool)
    evaluations = 0
    for _ in range(max_iter):
        F, dF = evaluate(x, active)
        evaluations += 1
        with np.errstate(invalid="ignore"):
            done = active & (np.abs(F) <= tol)
        converged |= done
        active &= ~done
        lo = np.where(active & (F > 0), x, lo)
        hi = np.where(active & (F < 0), x, hi)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            newton = x - F / dF
        # towards an open end of the bracket, Newton may move at most _OPEN_STEP (F may be flat there)
        newton = np.clip(newton, np.where(np.isfinite(lo), -np.inf, x - _OPEN_STEP),
                         np.where(np.isfinite(hi), np.inf, x + _OPEN_STEP))
        inside = np.isfinite(newton) & (dF < 0) & (newton > lo) & (newton < hi)
        bounded = np.isfinite(lo) & np.isfinite(hi)
        with np.errstate(invalid="ignore"):
            fallback = np.where(bounded, 0.5 * (lo + hi), np.where(F > 0, x + 2.0, x - 2.0))
        step = np.where(inside, newton, fallback)
        # a bracket shrunk to float resolution: the root is there, to the precision F allows
        exhausted = bounded & (hi - lo <= 4e-16 * np.maximum(1.0, np.abs(x)))
        active &= ~exhausted
        converged |= exhausted & (np.abs(F) <= 1e3 * tol)
        x = np.where(active, step, x)
        if not active.any():
            break
    return x, converged, evaluations


def _settle_users(prob: EnergyRoundProblem, z: np.ndarray, g: np.ndarray, warm: dict,
                  tol: float) -> tuple[np.ndarray, np.ndarray, _Point, int]:
    """Solve every user's own equations at fixed globals g, from the prices z. Returns (z, binding,
    point, evaluations).

    Users are independent at fixed g, and each user's are two nested monotone 1-D roots:
    - time: at fixed energy price pi, the round time falls as lam (the price of time relative to
      bandwidth) rises, so lam(pi) with F1 = 0 is a bracketed root;
    - budget: along lam(pi), the energy falls as its price rises (the user trades time for energy at
      the margin), so a user over its budget at nu = 0 (pi = w) binds, with pi the root of
      e(pi) = E; the others are slack.
    Bracketing makes both global (the responses have kinks at the power cap and clock bounds)."""
    n, K = prob.shape
    w = prob.weight
    budget = prob.budget_j[:, None]
    evaluations = 0
    state = {"ln_lam": z[..., 0].copy()}

    def time_root(ln_pi: np.ndarray | None, active: np.ndarray) -> tuple[_Point, np.ndarray]:
        """lam with F1 = 0 for the users active (any row) at ln pi; returns their point and columns."""
        nonlocal evaluations
        cols = np.flatnonzero(active.any(axis=0))
        P = g[:, 0][:, None]
        box = {}

        def f(x, act):
            ln_lam = state["ln_lam"].copy()
            ln_lam[:, cols] = x
            box["pt"] = pt = _evaluate(prob, cols, ln_lam, ln_pi, g, warm)
            d_lam = pt.user_partials()[0]
            return pt.F1 / P, d_lam / P

        start = state["ln_lam"][:, cols]
        x, _, used = _root_decreasing(f, start, np.full(start.shape, -np.inf), np.full(start.shape, np.inf), tol,
                                      max_iter=60)
        evaluations += used
        state["ln_lam"][:, cols] = x
        return box["pt"], cols

    # every user without a budget price
    pt0, _ = time_root(None, np.ones((n, K), dtype=bool))
    binding = np.isfinite(budget) & (pt0.energy > budget * (1.0 + 1e-12))
    ln_pi = np.full((n, K), -np.inf)
    if binding.any():
        with np.errstate(divide="ignore"):
            clock_price = state["ln_lam"] - np.log(2.0 * np.where(prob.power_full_w > 0, prob.power_full_w, np.inf))
            previous = np.where(z[..., 1] > -np.inf, np.log(w + np.exp(z[..., 1])), clock_price + math.log(_NU_START))
        lo = np.full((n, K), math.log(w) if w > 0 else -np.inf)
        lo = np.where(np.isfinite(lo), lo, np.minimum(previous, clock_price) - 30.0)  # e(pi) = e(0) there
        start = np.maximum(previous, lo + 1e-9)
        scale_e = np.where(np.isfinite(budget), budget, 1.0)

        def g_budget(x, act):
            ln_pi_all = np.full((n, K), math.log(w) if w > 0 else -np.inf)
            ln_pi_all[act] = x[act]
            pt, cols = time_root(ln_pi_all, act)
            d_lam, d_pi, e_lam, e_pi = pt.user_partials()
            with np.errstate(divide="ignore", invalid="ignore"):
                total = e_pi - e_lam * d_pi / d_lam  # de/d ln pi along lam(pi)
            F = np.full((n, K), np.nan)
            dF = np.full((n, K), np.nan)
            F[:, cols] = (pt.energy - budget) / scale_e
            dF[:, cols] = total / scale_e
            return F, dF

        x, _, used = _root_decreasing(g_budget, np.where(binding, start, lo), lo, np.full((n, K), np.inf), tol,
                                      active=binding, max_iter=60)
        ln_pi = np.where(binding, x, -np.inf)
        time_root(np.where(binding, ln_pi, math.log(w) if w > 0 else -np.inf), np.ones((n, K), dtype=bool))
    z = z.copy()
    z[..., 0] = state["ln_lam"]
    with np.errstate(divide="ignore", invalid="ignore"):
        nu = np.exp(ln_pi) - w
    binding = binding & (nu > 0)
    z[..., 1] = np.where(binding, np.log(np.where(binding, nu, 1.0)), -np.inf)
    return z, binding, _Point(prob, z, g, binding, warm), evaluations


def _settle(prob: EnergyRoundProblem, z: np.ndarray, g: np.ndarray, binding: np.ndarray, warm: dict,
            tol: float) -> tuple[np.ndarray, np.ndarray, _Point]:
    """The users settled at globals g (what `_settle_users` finds), from prices z that are already
    close (the last settled point moved to first order, `_Point.predict`) and its binding set.

    Users are independent at fixed g. Each is first settled by a damped 2-D Newton of its own
    (`_newton_users`), on the users not yet settled alone once they are few; a user Newton leaves
    unsettled (a poor start, a kink between it and the root: the responses are only piecewise
    smooth), or whose budget turns out to bind or not to bind after all, is then settled by the
    bracketed nested roots (`_settle_users`), on those users alone."""
    z = z.copy()
    z[..., 1] = np.where(binding, z[..., 1], -np.inf)
    if not np.isfinite(z[..., 0]).all() or not np.isfinite(z[..., 1][binding]).all():
        z_new, b_new, pt, _ = _settle_users(prob, z, g, warm, tol)
        return z_new, b_new, pt
    binding = binding.copy()
    pt = _Point(prob, z, g, binding, warm)
    few = int(_SUBSET_SHARE * prob.shape[1])
    if (pt.user_merit > tol * tol).any(axis=0).sum() > few:
        z, _, pt = _newton_users(prob, z, g, binding, warm, tol, pt, stop_at=few)
    settled = pt.user_merit <= tol * tol
    cols = np.flatnonzero((~settled).any(axis=0))
    if cols.size:
        z[:, cols], settled[:, cols] = _on_columns(prob, cols, warm, lambda sub, w: _newton_users(
            sub, z[:, cols], g, binding[:, cols], w, tol)[:2])
        pt = _Point(prob, z, g, binding, warm)
    budget = prob.budget_j[:, None]
    with np.errstate(invalid="ignore"):
        over = ~binding & np.isfinite(budget) & (pt.energy > budget * (1.0 + 1e-12))
    settled &= ~over & (~binding | (pt.nu > 0))
    slow = np.flatnonzero((~settled).any(axis=0))
    if slow.size:
        def nested(sub, w):
            z_sub, b_sub, _, _ = _settle_users(sub, z[:, slow], g, w, tol)
            return z_sub, b_sub
        z[:, slow], binding[:, slow] = _on_columns(prob, slow, warm, nested)
        pt = _Point(prob, z, g, binding, warm)
    return z, binding, pt


def _settle_start(prob: EnergyRoundProblem, z: np.ndarray, g: np.ndarray, warm: dict,
                  tol: float) -> tuple[np.ndarray, np.ndarray, _Point]:
    """The users settled at globals g from the start's prices z, whose binding set is not known yet:
    every user settled without a budget price first (per-user Newton in ln lam), then the users over
    their budget bind, from the price at which the clock starts to slow (`_settle` from there; the
    nested roots for whoever Newton leaves)."""
    n, K = prob.shape
    z = z.copy()
    slack = np.zeros((n, K), dtype=bool)
    z[..., 1] = -np.inf
    z, settled, pt = _newton_users(prob, z, g, slack, warm, tol)
    if not settled.all():
        z_new, b_new, pt, _ = _settle_users(prob, z, g, warm, tol)
        return z_new, b_new, pt
    budget = prob.budget_j[:, None]
    binding = np.isfinite(budget) & (pt.energy > budget * (1.0 + 1e-12))
    if not binding.any():
        return z, binding, pt
    w = prob.weight
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_pi = z[..., 0] - np.log(2.0 * np.where(prob.power_full_w > 0, prob.power_full_w, np.inf)) + math.log(_NU_START)
        nu = np.exp(ln_pi) - w
    binding &= np.isfinite(nu) & (nu > 0)
    z[..., 1] = np.where(binding, np.log(np.where(binding, nu, 1.0)), -np.inf)
    return _settle(prob, z, g, binding, warm, tol)


def _on_columns(prob: EnergyRoundProblem, cols: np.ndarray, warm: dict, work):
    """`work(sub_problem, sub_warm)` on the users `cols` alone, their warm starts written back."""
    sub_warm = {side: {key: arr[:, cols] for key, arr in values.items()} for side, values in warm.items()}
    out = work(prob.columns(cols), sub_warm)
    for side, values in sub_warm.items():
        for key, arr in values.items():
            warm[side][key][:, cols] = arr
    return out


def _newton_users(prob: EnergyRoundProblem, z: np.ndarray, g: np.ndarray, binding: np.ndarray, warm: dict,
                  tol: float, pt: _Point | None = None, stop_at: int = 0) -> tuple[np.ndarray, np.ndarray, _Point]:
    """Each user's two equations (one for a slack budget) by its own damped Newton, from z (whose
    point is `pt` when given), until at most `stop_at` users are left unsettled (the caller goes on
    with those alone, which is cheaper than evaluating all): (z, settled (n, K), the point at z).
    The Jacobian is the 2x2 block of `user_partials` in (ln lam, ln nu); a step that does not lower
    a user's residual is halved for that user alone, and a user whose step has shrunk below
    _SHORTEST_STEP stops, unsettled."""
    n, K = prob.shape
    budget = prob.budget_j[:, None]
    scale_e = np.where(np.isfinite(budget), budget, 1.0)
    P = g[:, 0][:, None]
    alpha = np.ones((n, K))
    pt = _Point(prob, z, g, binding, warm) if pt is None else pt
    for _ in range(_NEWTON_SETTLE_STEPS):
        merit = pt.user_merit
        moving = (merit > tol * tol) & (alpha >= _SHORTEST_STEP)
        if moving.any(axis=0).sum() <= stop_at:
            break
        d_lam, d_pi, e_lam, e_pi = pt.user_partials()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            share = np.where(binding, pt.nu / np.where(pt.pi > 0, pt.pi, 1.0), 0.0)  # d ln pi / d ln nu
            a11, a12 = d_lam / P, d_pi * share / P
            a21, a22 = e_lam / scale_e, e_pi * share / scale_e
            f1, f2 = pt.F1 / P, pt.F2 / scale_e
            det = a11 * a22 - a12 * a21
            step_lam = np.where(binding, -(a22 * f1 - a12 * f2) / det, -f1 / a11)
            step_nu = np.where(binding, -(a11 * f2 - a21 * f1) / det, 0.0)
        step_lam = np.clip(np.where(np.isfinite(step_lam), step_lam, 0.0), -_OPEN_STEP, _OPEN_STEP)
        step_nu = np.clip(np.where(np.isfinite(step_nu), step_nu, 0.0), -_OPEN_STEP, _OPEN_STEP)
        trial = z.copy()
        trial[..., 0] += np.where(moving, alpha * step_lam, 0.0)
        trial[..., 1] = np.where(binding, z[..., 1] + np.where(moving, alpha * step_nu, 0.0), -np.inf)
        new = _Point(prob, trial, g, binding, warm)
        better = (new.user_merit < merit) | ~moving
        if better.all():
            z, pt = trial, new
            alpha = np.minimum(1.0, 2.0 * alpha)
            continue
        # keep the users whose residual fell; the others retry from where they were with half the step
        z = np.where(better[..., None], trial, z)
        alpha = np.where(better, np.minimum(1.0, 2.0 * alpha), 0.5 * alpha)
        pt = _Point(prob, z, g, binding, warm)
    return z, pt.user_merit <= tol * tol, pt

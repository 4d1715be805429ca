"""Structured solver for problem (17) at a fixed eta: Newton's method on its optimality conditions.

Per round, with V local iterations and w_k compute seconds per iteration, problem (17) is

    minimise P  s.t.  V·(w_k + t_s,k) + t_c,k <= P,   t_s,k >= t_s,min,k·phi(c_s,k / b_s,k),
                      t_c,k >= t_c,min,k·phi(c_c,k / b_c,k),   sum b_s <= B_s,   sum b_c <= B_c,

and T = I0·P (see fdma_math for phi and t_min). At the optimum every user's time constraint is
tight (Lemma 3), both budgets are used up, and with prices mu_s, mu_c on the two bandwidth pools
each user splits its communication time where the marginal bandwidth costs balance:

    mu_s·|db_s/dt_s| = V·mu_c·|db_c/dt_c|   <=>   ln m(x_c) - ln m(x_s) = ln(mu_c/mu_s) + kappa_k,

with x = c/b the sub-band SNR, m(x) = x^2·phi'(x) and kappa_k = ln V + 2 ln(c_c/c_s) + ln(S_s/S_c).
That is 2K + 2 equations in the log-SNRs (u_k, v_k) = (ln x_s,k, ln x_c,k), the log price ratio
and P. Their Jacobian is block diagonal (a 2x2 block per user) bordered by two coupling rows and
columns, so each Newton step costs O(K): eliminate the per-user blocks, solve a 2x2 system for
(d ln price ratio, dP), back-substitute. A backtracking line search on the scaled residual keeps
it global; warm starts (from a neighbouring eta or power) usually converge in 3-5 steps.

A cold start comes from `solve_single_pool`: bisection on P where, for a given P, each user's
bandwidth need is the Lambert-W closed form for sending V·s + s_c bits in P - V·w_k seconds over
one pool of B_s + B_c. When c_s = c_c and B_s = B_c this is already the exact optimum (then
b_s = b_c for every user, with the price ratio S_c/(V·S_s)); otherwise Newton finishes in a few steps.

The problem is convex, so these conditions are necessary and sufficient: a point that satisfies
them to machine precision is the optimum. `optimizer.allocation` verifies the result against the
unscaled constraints and falls back to cvxpy if anything is off.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from splitsim.scenarios.types import LN2

from .fdma_math import bandwidth_for_time_hz, phi_derivatives


@dataclass(frozen=True)
class PerRoundProblem:
    """Problem (17) at one eta, in per-round form. Arrays have shape (K,); bits, Hz and seconds."""

    V: float  # local iterations per round
    compute_s: np.ndarray  # w_k: client + server compute seconds per local iteration
    c_s_hz: np.ndarray  # c = g·p/N0 on the link to the main server
    c_c_hz: np.ndarray  # c on the link to the fed server
    s_bits: float
    s_c_bits: float
    B_s_hz: float
    B_c_hz: float
    weights: np.ndarray | None = None  # (K,): user k runs V·w_k local iterations (None: all 1)

    @property
    def w(self) -> np.ndarray:
        return np.ones_like(self.c_s_hz) if self.weights is None else self.weights

    @property
    def t_s_min(self) -> np.ndarray:
        return self.s_bits * LN2 / self.c_s_hz

    @property
    def t_c_min(self) -> np.ndarray:
        return self.s_c_bits * LN2 / self.c_c_hz


@dataclass(frozen=True)
class NewtonState:
    """A point of the optimality system: log-SNRs (K,), log price ratio ln(mu_c/mu_s), P (s).

    In a batch of n problems, u and v have shape (n, K) and ell and P shape (n,)."""

    u: np.ndarray
    v: np.ndarray
    ell: float | np.ndarray
    P: float | np.ndarray

    def row(self, i: int) -> NewtonState:
        return NewtonState(self.u[i], self.v[i], float(self.ell[i]), float(self.P[i]))


@dataclass(frozen=True)
class PerRoundSolution:
    """The optimum of a `PerRoundProblem`: P (s per round) and the bandwidths (Hz) behind it."""

    P_s: float
    b_s_hz: np.ndarray
    b_c_hz: np.ndarray
    state: NewtonState
    iterations: int
    converged: bool
    residual: float


def solve_single_pool(prob: PerRoundProblem, rel_tol: float = 1e-14) -> tuple[float, np.ndarray]:
    """Bisection (Brent) on P when each user sends V·s + s_c bits a round over one sub-band of a
    pool of (B_s + B_c)/2, on c_s.

    Returns (P, b) with b the per-user sub-band (K,), from the Lambert-W closed form of the need.
    Exact for problem (17) when c_s = c_c and B_s = B_c: then b_s = b_c = b for every user (the
    time V·t_s + t_c is that of V·s + s_c bits on one sub-band). A start point otherwise.
    """
    bits = prob.V * prob.w * prob.s_bits + prob.s_c_bits
    budget = 0.5 * (prob.B_s_hz + prob.B_c_hz)
    busy = prob.V * prob.w * prob.compute_s
    return min_max_pool(bits, busy, prob.c_s_hz, budget, rel_tol)


def min_max_pool(bits: np.ndarray | float, busy_s: np.ndarray, snr_coeff_hz: np.ndarray, budget_hz: float,
                 rel_tol: float = 1e-14) -> tuple[float, np.ndarray]:
    """min over b of max_k busy_k + bits_k / (b_k·log2(1 + c_k/b_k)) s.t. sum b = budget: (P, b (K,)).

    Every user's time falls as its sub-band grows, so at the optimum all finish at P, the root of
    sum_k b_k(P) = budget with b_k(P) the Lambert-W bandwidth that sends bits_k in P - busy_k
    (fdma_math.bandwidth_for_time_hz), found by Brent's method. `bits` (K,) or one value (bits),
    `busy_s` (K,) seconds before the transfer, `snr_coeff_hz` (K,) c = g·p/N0."""
    c = np.asarray(snr_coeff_hz, dtype=float)
    busy = np.asarray(busy_s, dtype=float)

    def excess(P: float) -> float:
        return float(bandwidth_for_time_hz(bits, P - busy, c).sum() - budget_hz)

    low = float(np.max(busy + bits * LN2 / c))  # no bandwidth is ever enough at or below this
    high = low * 2.0
    while excess(high) > 0:
        low, high = high, high * 2.0
    P = brentq(excess, low, high, xtol=rel_tol * high, rtol=max(rel_tol, 4.5e-16), maxiter=200)
    return P, bandwidth_for_time_hz(bits, P - busy, c)


def _kappa(prob: PerRoundProblem, V: np.ndarray) -> np.ndarray:
    return (np.log(V)[:, None] + np.log(prob.w) + 2 * np.log(prob.c_c_hz / prob.c_s_hz)
            + np.log(prob.s_bits / prob.s_c_bits))


def _consistent_state(prob: PerRoundProblem, V: np.ndarray, u: np.ndarray, v: np.ndarray) -> NewtonState:
    """Complete log-SNRs (n, K) into a state: P = the slowest user, ell = the median price ratio."""
    f_s, d1_s, _ = phi_derivatives(np.exp(u))
    f_c, d1_c, _ = phi_derivatives(np.exp(v))
    P = np.max(V[:, None] * prob.w * (prob.compute_s + prob.t_s_min * f_s) + prob.t_c_min * f_c, axis=1)
    ell = np.median((2 * v + np.log(d1_c)) - (2 * u + np.log(d1_s)) - _kappa(prob, V), axis=1)
    return NewtonState(u, v, ell, P)


def single_pool_start(prob: PerRoundProblem) -> NewtonState:
    """A cold start from `solve_single_pool`, its sub-bands scaled to each budget."""
    _, b = solve_single_pool(prob, rel_tol=1e-12)
    mean_budget = 0.5 * (prob.B_s_hz + prob.B_c_hz)
    u = np.log(prob.c_s_hz / (b * prob.B_s_hz / mean_budget))[None, :]
    v = np.log(prob.c_c_hz / (b * prob.B_c_hz / mean_budget))[None, :]
    return _consistent_state(prob, np.array([prob.V]), u, v).row(0)


class _System:
    """Residuals (and, on demand, the Newton step) of n optimality systems at once."""

    def __init__(self, prob: PerRoundProblem, V: np.ndarray, kappa: np.ndarray, st: NewtonState):
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # trial points may overshoot
            self._evaluate(prob, V, kappa, st)

    def _evaluate(self, prob: PerRoundProblem, V: np.ndarray, kappa: np.ndarray, st: NewtonState) -> None:
        self.prob, self.V, self.st = prob, V, st
        self.x_s, self.x_c = np.exp(st.u), np.exp(st.v)
        self.f_s, self.d1_s, self.d2_s = phi_derivatives(self.x_s)
        self.f_c, self.d1_c, self.d2_c = phi_derivatives(self.x_c)
        self.b_s = prob.c_s_hz / self.x_s
        self.b_c = prob.c_c_hz / self.x_c
        Vc = V[:, None] * prob.w
        self.r1 = (2 * st.v + np.log(self.d1_c)) - (2 * st.u + np.log(self.d1_s)) - st.ell[:, None] - kappa
        self.r2 = Vc * (prob.compute_s + prob.t_s_min * self.f_s) + prob.t_c_min * self.f_c - st.P[:, None]
        self.g1 = self.b_s.sum(axis=1) - prob.B_s_hz
        self.g2 = self.b_c.sum(axis=1) - prob.B_c_hz
        r2_scaled = self.r2 / np.maximum(st.P, 1e-300)[:, None]
        g_s, g_c = self.g1 / prob.B_s_hz, self.g2 / prob.B_c_hz
        self.merit = (self.r1**2).sum(axis=1) + (r2_scaled**2).sum(axis=1) + g_s**2 + g_c**2
        self.worst = np.maximum.reduce([np.abs(self.r1).max(axis=1), np.abs(r2_scaled).max(axis=1),
                                        np.abs(g_s), np.abs(g_c)])

    def newton_step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        prob, Vc = self.prob, self.V[:, None] * self.prob.w
        a_s = 2.0 + self.x_s * self.d2_s / self.d1_s  # d ln m / d ln x
        a_c = 2.0 + self.x_c * self.d2_c / self.d1_c
        p_s = Vc * prob.t_s_min * self.x_s * self.d1_s  # d r2 / d u
        p_c = prob.t_c_min * self.x_c * self.d1_c  # d r2 / d v
        det = -a_s * p_c - a_c * p_s
        a_u = (-p_c * self.r1 + a_c * self.r2) / det
        b_u, c_u = p_c / det, -a_c / det
        a_v = (p_s * self.r1 + a_s * self.r2) / det
        b_v, c_v = -p_s / det, -a_s / det
        # border rows: d g1 / d u_k = -b_s,k, so the Newton rows read  sum_k b_s,k du_k = g1  (and v, g2)
        m11, m12 = (self.b_s * b_u).sum(axis=1), (self.b_s * c_u).sum(axis=1)
        m21, m22 = (self.b_c * b_v).sum(axis=1), (self.b_c * c_v).sum(axis=1)
        rhs1 = self.g1 - (self.b_s * a_u).sum(axis=1)
        rhs2 = self.g2 - (self.b_c * a_v).sum(axis=1)
        det2 = m11 * m22 - m12 * m21
        d_ell = (rhs1 * m22 - m12 * rhs2) / det2
        d_P = (m11 * rhs2 - m21 * rhs1) / det2
        return (a_u + b_u * d_ell[:, None] + c_u * d_P[:, None], a_v + b_v * d_ell[:, None] + c_v * d_P[:, None],
                d_ell, d_P)


def _newton(prob: PerRoundProblem, V: np.ndarray, st: NewtonState, tol: float,
            max_iterations: int) -> tuple[NewtonState, _System, int]:
    """Damped Newton on n systems at once; each row has its own step length (Armijo backtracking)."""
    kappa = _kappa(prob, V)
    sys_ = _System(prob, V, kappa, st)
    iterations = 0
    while iterations < max_iterations:
        active = sys_.worst > tol
        if not active.any():
            break
        iterations += 1
        du, dv, d_ell, d_P = sys_.newton_step()
        biggest = np.maximum(np.abs(du).max(axis=1), np.abs(dv).max(axis=1))
        alpha = np.minimum(1.0, 4.0 / np.maximum(biggest, 1e-300))  # at most a factor e^4 in any SNR
        shrink = st.P + alpha * d_P <= 0
        alpha = np.where(shrink, np.minimum(alpha, 0.5 * st.P / np.where(shrink, -d_P, 1.0)), alpha)
        alpha = np.where(active, alpha, 0.0)
        pending = active.copy()
        new = st
        for _ in range(40):
            a = alpha[:, None]
            trial = NewtonState(st.u + a * du, st.v + a * dv, st.ell + alpha * d_ell, st.P + alpha * d_P)
            trial_sys = _System(prob, V, kappa, trial)
            ok = pending & np.isfinite(trial_sys.merit) & (trial_sys.merit <= (1.0 - 1e-4 * alpha) * sys_.merit)
            if ok.any():
                keep = ok[:, None]
                new = NewtonState(np.where(keep, trial.u, new.u), np.where(keep, trial.v, new.v),
                                  np.where(ok, trial.ell, new.ell), np.where(ok, trial.P, new.P))
                pending &= ~ok
            if not pending.any():
                break
            alpha = np.where(pending, alpha * 0.5, 0.0)
        if new is st:
            break  # no row could make progress
        st = new
        sys_ = _System(prob, V, kappa, st)
    return st, sys_, iterations


def solve_per_round(prob: PerRoundProblem, start: NewtonState | None = None, tol: float = 1e-12,
                    max_iterations: int = 100) -> PerRoundSolution:
    """Solve one per-round problem by damped Newton from `start` (default: the single-pool start)."""
    st = start if start is not None else single_pool_start(prob)
    batch = NewtonState(st.u[None, :], st.v[None, :], np.array([st.ell], dtype=float), np.array([st.P], dtype=float))
    st, sys_, iterations = _newton(prob, np.array([prob.V], dtype=float), batch, tol, max_iterations)
    worst = float(sys_.worst[0])
    return PerRoundSolution(P_s=float(st.P[0]), b_s_hz=sys_.b_s[0], b_c_hz=sys_.b_c[0], state=st.row(0),
                            iterations=iterations, converged=worst <= max(tol, 1e-9), residual=worst)


def solve_per_round_batch(prob: PerRoundProblem, V_values: np.ndarray, tol: float = 1e-10,
                          max_iterations: int = 100) -> list[PerRoundSolution]:
    """Solve the problem at many V at once (e.g. a whole eta grid) as one batched Newton system.

    Every row starts from the cold solution at the median V, with P and the price ratio made
    consistent for its own V; `prob.V` is ignored.
    """
    V = np.asarray(V_values, dtype=float)
    pivot = PerRoundProblem(**{**prob.__dict__, "V": float(np.median(V))})
    seed = solve_per_round(pivot, tol=tol).state
    st = _consistent_state(prob, V, np.tile(seed.u, (len(V), 1)), np.tile(seed.v, (len(V), 1)))
    st, sys_, iterations = _newton(prob, V, st, tol, max_iterations)
    return [PerRoundSolution(P_s=float(st.P[i]), b_s_hz=sys_.b_s[i], b_c_hz=sys_.b_c[i], state=st.row(i),
                             iterations=iterations, converged=bool(sys_.worst[i] <= max(tol, 1e-9)),
                             residual=float(sys_.worst[i])) for i in range(len(V))]

"""Problem (17) at a fixed eta in cvxpy: DPP, built once per number of users, solved by Clarabel.

The raw problem (Hz, bits, seconds) is badly scaled: sub-band SNRs c/b span 1e-2 ... 1e8 across a
cell, and generic conic solvers then stall or return allocations that violate their own
constraints. The primary form is normalised per user around a reference allocation (b0, t0) —
the single-pool Lambert-W estimate of `structured.solve_single_pool` — so that every variable is
O(1) at the optimum:

    b = b0·z,  t = t0·y,  P = P0·p,   h = c/b0 (SNR at b0),  kappa = max(h, 1),
    ln(1 + h) / y  <=  z·ln(kappa) - rel_entr(z, z/kappa + h/kappa)     [= z·ln(1 + h/z)]
    (V·t0_s·y_s + V·w + t0_c·y_c) / P0 <= p,   sum(b0_s·z_s)/B_s <= 1,   sum(b0_c·z_c)/B_c <= 1.

Splitting ln(1 + h/z) = ln(kappa) + ln((z + h)/(kappa·z)) keeps the exponential-cone entries near 1
for high-SNR users as well. Every coefficient is a `cp.Parameter`, so one compiled problem serves
all eta values and powers. A second, plainer form (MHz, Mbit, seconds per round) is the first
fallback. The caller verifies every answer against the unscaled constraints.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import cvxpy as cp
import numpy as np

from splitsim.scenarios.types import LN2, fdma_rate_bps

from .structured import PerRoundProblem, solve_single_pool


@dataclass
class ConvexResult:
    """Bandwidths from a cvxpy solve (K,), their true per-round time, and the attempts made."""

    P_s: float  # the true per-round time of the bandwidths (within rel_tol of the solver's objective)
    b_s_hz: np.ndarray | None
    b_c_hz: np.ndarray | None
    status: str
    form: str
    attempts: list[str] = field(default_factory=list)


def per_round_time_s(prob: PerRoundProblem, b_s_hz: np.ndarray, b_c_hz: np.ndarray) -> float:
    """The true per-round time of an allocation: budgets enforced by scaling down, times from rates."""
    b_s = b_s_hz * min(1.0, prob.B_s_hz / float(b_s_hz.sum()))
    b_c = b_c_hz * min(1.0, prob.B_c_hz / float(b_c_hz.sum()))
    t_s = prob.s_bits / fdma_rate_bps(b_s, prob.c_s_hz)
    t_c = prob.s_c_bits / fdma_rate_bps(b_c, prob.c_c_hz)
    return float(np.max(prob.V * prob.w * (prob.compute_s + t_s) + t_c))


class _NormalisedForm:
    """The per-user normalised form (module docstring)."""

    name = "normalised"
    names = ("a_s", "a_c", "a_w", "l_s", "l_c", "w_s", "w_c", "ik_s", "ik_c", "hk_s", "hk_c", "lk_s", "lk_c")

    def __init__(self, users: int):
        k = users
        self.par = {n: cp.Parameter(k, nonneg=True, name=n) for n in self.names}
        g = self.par
        self.y_s, self.y_c = cp.Variable(k, name="y_s"), cp.Variable(k, name="y_c")
        self.z_s, self.z_c = cp.Variable(k, name="z_s"), cp.Variable(k, name="z_c")
        self.p = cp.Variable(name="p")
        constraints = [
            cp.multiply(g["a_s"], self.y_s) + g["a_w"] + cp.multiply(g["a_c"], self.y_c) <= self.p,
            cp.multiply(g["l_s"], cp.inv_pos(self.y_s))
            <= cp.multiply(g["lk_s"], self.z_s) - cp.rel_entr(self.z_s, cp.multiply(g["ik_s"], self.z_s) + g["hk_s"]),
            cp.multiply(g["l_c"], cp.inv_pos(self.y_c))
            <= cp.multiply(g["lk_c"], self.z_c) - cp.rel_entr(self.z_c, cp.multiply(g["ik_c"], self.z_c) + g["hk_c"]),
            g["w_s"] @ self.z_s <= 1.0,
            g["w_c"] @ self.z_c <= 1.0,
        ]
        self.problem = cp.Problem(cp.Minimize(self.p), constraints)

    def load(self, prob: PerRoundProblem) -> None:
        P_single, b = solve_single_pool(prob, rel_tol=1e-10)
        mean_budget = 0.5 * (prob.B_s_hz + prob.B_c_hz)
        self.b0_s, self.b0_c = b * prob.B_s_hz / mean_budget, b * prob.B_c_hz / mean_budget
        h_s, h_c = prob.c_s_hz / self.b0_s, prob.c_c_hz / self.b0_c
        t0_s = prob.s_bits / fdma_rate_bps(self.b0_s, prob.c_s_hz)
        t0_c = prob.s_c_bits / fdma_rate_bps(self.b0_c, prob.c_c_hz)
        Vk = prob.V * prob.w
        self.P0 = float(np.max(Vk * (prob.compute_s + t0_s) + t0_c))
        k_s, k_c = np.maximum(h_s, 1.0), np.maximum(h_c, 1.0)
        values = {"a_s": Vk * t0_s / self.P0, "a_c": t0_c / self.P0, "a_w": Vk * prob.compute_s / self.P0,
                  "l_s": np.log1p(h_s), "l_c": np.log1p(h_c), "w_s": self.b0_s / prob.B_s_hz,
                  "w_c": self.b0_c / prob.B_c_hz, "ik_s": 1.0 / k_s, "ik_c": 1.0 / k_c, "hk_s": h_s / k_s,
                  "hk_c": h_c / k_c, "lk_s": np.log(k_s), "lk_c": np.log(k_c)}
        for name, value in values.items():
            self.par[name].value = value

    def result(self) -> tuple[float, np.ndarray, np.ndarray] | None:
        if self.z_s.value is None or self.p.value is None:
            return None
        return float(self.p.value) * self.P0, self.z_s.value * self.b0_s, self.z_c.value * self.b0_c


class _MegaForm:
    """The plain scaled form: bandwidth in MHz, bits in Mbit, time in seconds per round."""

    name = "mhz"

    def __init__(self, users: int):
        k = users
        self.V = cp.Parameter(k, nonneg=True, name="V")  # V·w_k per user
        self.Vw = cp.Parameter(k, nonneg=True, name="Vw")
        self.c_s, self.c_c = cp.Parameter(k, nonneg=True, name="c_s"), cp.Parameter(k, nonneg=True, name="c_c")
        self.s_ln2, self.sc_ln2 = cp.Parameter(nonneg=True), cp.Parameter(nonneg=True)
        self.B_s, self.B_c = cp.Parameter(nonneg=True), cp.Parameter(nonneg=True)
        self.t_s, self.t_c = cp.Variable(k), cp.Variable(k)
        self.b_s, self.b_c = cp.Variable(k), cp.Variable(k)
        self.P = cp.Variable()
        constraints = [
            cp.multiply(self.V, self.t_s) + self.Vw + self.t_c <= self.P,
            self.s_ln2 * cp.inv_pos(self.t_s) <= -cp.rel_entr(self.b_s, self.b_s + self.c_s),
            self.sc_ln2 * cp.inv_pos(self.t_c) <= -cp.rel_entr(self.b_c, self.b_c + self.c_c),
            cp.sum(self.b_s) <= self.B_s,
            cp.sum(self.b_c) <= self.B_c,
        ]
        self.problem = cp.Problem(cp.Minimize(self.P), constraints)

    def load(self, prob: PerRoundProblem) -> None:
        self.V.value = prob.V * prob.w
        self.Vw.value = prob.V * prob.w * prob.compute_s
        self.c_s.value, self.c_c.value = prob.c_s_hz / 1e6, prob.c_c_hz / 1e6
        self.s_ln2.value, self.sc_ln2.value = prob.s_bits / 1e6 * LN2, prob.s_c_bits / 1e6 * LN2
        self.B_s.value, self.B_c.value = prob.B_s_hz / 1e6, prob.B_c_hz / 1e6

    def result(self) -> tuple[float, np.ndarray, np.ndarray] | None:
        if self.b_s.value is None or self.P.value is None:
            return None
        return float(self.P.value), self.b_s.value * 1e6, self.b_c.value * 1e6


class ConvexSolver:
    """Solves `PerRoundProblem`s with cvxpy + Clarabel, trying forms and settings in turn.

    Attempts, in order: the normalised form; the same without Clarabel's equilibration; the same with
    more iterative refinement; the MHz form with less regularisation; the MHz form as is. An
    attempt counts only with status 'optimal' and an allocation whose true per-round time (budgets
    enforced, times from the Shannon rates) matches the reported objective to `rel_tol`. On wide
    random cells about 2 % of problems defeat every attempt; the caller then falls back to the
    structured solver.
    """

    def __init__(self, users: int, rel_tol: float = 1e-6):
        self.users = users
        self.rel_tol = rel_tol
        self._forms: dict[str, object] = {}

    def _form(self, name: str):
        if name not in self._forms:
            self._forms[name] = _NormalisedForm(self.users) if name == "normalised" else _MegaForm(self.users)
        return self._forms[name]

    def is_dpp(self) -> bool:
        return all(self._form(n).problem.is_dcp(dpp=True) for n in ("normalised", "mhz"))

    def solve(self, prob: PerRoundProblem) -> ConvexResult:
        attempts: list[str] = []
        refine = {"iterative_refinement_reltol": 1e-14, "iterative_refinement_abstol": 1e-14,
                  "iterative_refinement_max_iter": 30, "max_iter": 400}
        plan = (("normalised", {}), ("normalised", {"equilibrate_enable": False}), ("normalised", refine),
                ("mhz", {"static_regularization_constant": 1e-10, "max_iter": 400}), ("mhz", {}))
        for name, options in plan:
            form = self._form(name)
            label = name + ("" if not options else "+" + ",".join(sorted(options)))
            try:
                form.load(prob)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    form.problem.solve(solver=cp.CLARABEL, **options)
                status = form.problem.status
            except (cp.SolverError, ValueError, ArithmeticError) as err:
                attempts.append(f"{label}: {type(err).__name__}")
                continue
            found = form.result()
            if status != cp.OPTIMAL or found is None:
                attempts.append(f"{label}: {status}")
                continue
            P_reported, b_s, b_c = found
            b_s, b_c = np.maximum(b_s, 1e-300), np.maximum(b_c, 1e-300)
            P_true = per_round_time_s(prob, b_s, b_c)
            if not np.isfinite(P_true) or abs(P_true - P_reported) > self.rel_tol * P_true:
                attempts.append(f"{label}: unverified (reported {P_reported:.9g} s, true {P_true:.9g} s)")
                continue
            attempts.append(f"{label}: optimal")
            return ConvexResult(P_true, b_s, b_c, status, name, attempts)
        return ConvexResult(float("nan"), None, None, "failed", "", attempts)

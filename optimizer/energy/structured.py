"""The energy-aware per-round problem solved exactly on its optimality conditions (structured Newton).

The problem (`energy_solver.EnergyRoundProblem`): at a fixed eta, minimise the round time P (or
(1 - w)·P + w·sum_k e_k) over each user's compute time per iteration tau_k (clock f = f_max·tau0/tau),
upload times t and bandwidths b (the least power that meets the rate, so p·t = psi(t·b)), subject
to the round time, each user's energy budget E, p <= p_max, f_min <= f <= f_max and the two pools.

Structure (every claim is checked by the tests against IPOPT and brute force).

- Every user's time constraint is tight at the optimum (a user with slack could return bandwidth,
  or spend the slack on a lower clock or power), so its idle energy is p_idle·W·sigma, a constant.
- With multipliers mu_s, mu_c on the pools, lambda_k on user k's time and nu_k >= 0 on its budget,
  the Lagrangian separates per user into three independent pieces, with energy price
  pi_k = w + nu_k and net time price lam_k = lambda_k - pi_k·p_idle > 0:

      compute   min_tau  pi·W·k0/tau^2 + lam·W·tau     ->  tau = clip((2·pi·k0/lam)^(1/3), tau0, tau_max)
      upload    min_t,b  m·b + pi·psi(t·b) + lam·t,  t >= S/r(b)     (m = mu_s/W for the activations,
                                                                       mu_c for the adapters)

  An upload below its power cap solves g(u)/sqrt(u) = sqrt(lam·m)·c/(pi·p_max·sqrt(S·ln2)) for
  u = S·ln2/(t·b), g(u) = (u - 1)·e^u + 1 (increasing; Newton in ln u converges from any start,
  the function being convex and increasing there), and then t/b = m/lam. When that point would need
  p > p_max the upload runs at p_max and its sub-band SNR x = c/b solves x^2·phi'(x) =
  m·c^2/((pi·p_max + lam)·S·ln2), phi as in `fdma_math` (d ln / d ln x lies in [1.79, 2]).
- What is left is 2 equations per user (time tight; budget tight, or nu = 0) and 3 global ones
  (both pools used up; sum_k lam_k = 1 - w, the stationarity in P). At fixed globals the users are
  independent ("settling" them, `_settle`): each user runs a damped 2-D Newton of its own from a
  first-order prediction of its prices (`_Point.predict`), which converges in two or three
  evaluations of all users; a user it leaves (a kink between the start and the root), or whose
  budget turns out to bind or not, is settled by two nested monotone 1-D roots kept inside a
  bracket (`_settle_users`: lam(pi) from the time, then pi from the budget; a user over its budget
  at nu = 0 binds, the others are slack), on those users alone. Bracketing makes these global
  although the responses have kinks (the power cap, the clock bounds). The globals (P, ln mu_s,
  ln mu_c) are found by Newton with the users following: the Jacobian is a 2x2 block per user
  bordered by 3 rows and columns, so a step costs O(K) (eliminate the blocks, solve 3x3), with a
  backtracking line search on the globals' scaled residual; far from the answer the users are
  settled only to 1e-4 of the globals' residual (an inexact Newton; the step accounts for what is
  left), to the last digit at the end. Where a user's response has a kink near the iterate (one
  user at the power cap and a clock bound with its budget binding makes the sum of lam jump in
  slope), Newton's one-sided Jacobian points across it and the line search stalls; MINPACK's
  Powell hybrid method (trust region, given the exact Jacobian of the settled point) then takes the
  three globals from there, kept only where it lowers the residual. Near the answer a step the
  line search has to halve twice goes to it at once.
- P has a floor (`round_time_floor_s`): below it some user cannot meet its time and budget at any
  bandwidth, and its prices diverge. So the Newton variable is ln(P - floor), and the start sits
  above both the floor and the (17) round time, where no user needs a huge bandwidth.

Why the answer is exact: at a converged point the primal is feasible (time and budgets to the
residual, caps and clock bounds by construction) and the multipliers are dual feasible, so the
Lagrange dual function at them is a lower bound on the optimum. `gap` reports
(primal - dual)/primal: a certificate of optimality computed from the answer itself.

The parts live in three files: structured_user.py (each user's response and its Jacobian),
structured_settle.py (the users settled at fixed globals), and this one (the globals: the start,
Newton with a line search, Powell's hybrid method, the certificate).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

from splitsim.scenarios.types import LN2

from ..fdma_math import phi_derivatives
from ..structured import PerRoundProblem, solve_per_round
from .problem import EnergyRoundProblem, EnergyRoundSolution
from .structured_settle import _settle, _settle_start
from .structured_user import (_HYBRID_EVALUATIONS, _HYBRID_TRIES, _INEXACT, _NEAR_MERIT, _NEAR_SHORT_STEP, _NU_START,
                              _SHORT_STEP, _SHORTEST_STEP, _START_TRIES, _Point)


class _Reached(Exception):
    """The hybrid method's iterate meets the tolerance: stop it there (MINPACK knows only a step tolerance)."""

    def __init__(self, x: np.ndarray):
        super().__init__()
        self.x = x


def _powell_hybrid(prob: EnergyRoundProblem, z: np.ndarray, g: np.ndarray, binding: np.ndarray, floor: float,
                   warm: dict, user_tol: float, target: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Point]:
    """(z, g, binding, point) of one problem (z (1, K, 2), g (1, 3)) from MINPACK's Powell hybrid method on the
    globals' scaled residuals in (ln(P - P_floor), ln mu_s, ln mu_c), the users settled at every
    evaluation: its trust region carries it across the kinks that stall Newton. Its Jacobian is the
    exact one of the settled point (`global_jacobian`); it stops at the first point whose squared
    residual is at most `target`."""
    scale = np.array([prob.B_s_hz, prob.B_c_hz, 1.0 - prob.weight])
    state = {"z": z, "binding": binding, "point": None}
    settled_at: dict[bytes, tuple] = {}  # x -> (z, binding, point): MINPACK asks for the Jacobian where it evaluated

    def globals_at(x: np.ndarray) -> np.ndarray:
        return np.array([[floor + math.exp(x[0]), x[1], x[2]]])

    def settle(x: np.ndarray) -> tuple:
        key = np.asarray(x, dtype=float).tobytes()
        if key not in settled_at:
            g_x = globals_at(x)
            start = state["z"] if state["point"] is None else state["point"].predict(g_x)
            found = _settle(prob, start, g_x, state["binding"], warm, user_tol)
            if np.isfinite(found[2].global_merit[0]):
                state["z"], state["binding"], state["point"] = found
            settled_at[key] = found
        return settled_at[key]

    def residual(x: np.ndarray) -> np.ndarray:
        pt = settle(x)[2]
        if pt.global_merit[0] <= target:
            raise _Reached(np.array(x, dtype=float))
        return np.where(np.isfinite(pt.G[0]), pt.G[0] / scale, 1e10)

    def jacobian(x: np.ndarray) -> np.ndarray:
        """d residual / dx with the users following: the Schur complement of the Newton system."""
        J = settle(x)[2].global_jacobian()[0]
        J[:, 0] *= math.exp(x[0])  # P = floor + e^x0
        J = J / scale[:, None]
        return np.where(np.isfinite(J), J, 0.0)

    start = np.array([math.log(g[0, 0] - floor), g[0, 1], g[0, 2]])
    try:
        x = scipy.optimize.root(residual, start, jac=jacobian, method="hybr",
                                options={"xtol": 1e-15, "maxfev": _HYBRID_EVALUATIONS}).x
    except _Reached as reached:
        x = reached.x
    z_found, binding, pt = settle(x)
    return z_found, globals_at(x), binding, pt


def round_time_floor_s(prob: EnergyRoundProblem) -> np.ndarray:
    """(n,) the round time every answer must exceed: max over users of the least P at which the user
    can meet its time and budget with unlimited bandwidth.

    With unlimited bandwidth an upload at p_max takes its wideband time S·ln2/c (the rate saturates
    at c/ln2) and spends its energy floor p_max·S·ln2/c; it can be neither faster nor cheaper. So
    user k's time needs P > W·(tau + sigma + S·ln2/c_s) + S_c·ln2/c_c with tau >= tau0, and its budget
    needs a compute energy W·k0/tau^2 <= E - (everything else at its floor), i.e. tau >=
    sqrt(W·k0/(E - rest)). Above this P every user's two equations have a finite solution at any
    pool prices (its energy at an infinite energy price tends to its unlimited-bandwidth minimum at
    that P); at or below it some user has none. So P is sought as P_floor + e^s, which keeps every
    iterate where the users can settle."""
    W = prob.W
    budget = prob.budget_j[:, None]
    k0 = prob.power_full_w * prob.tau0_s ** 3
    rest = prob.round_energy_floor_j() - np.where(np.isfinite(prob.tau_max_s), W * k0 / prob.tau_max_s ** 2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tau_budget = np.where(np.isfinite(budget) & (k0 > 0), np.sqrt(W * k0 / (budget - rest)), 0.0)
    tau_need = np.maximum(prob.tau0_s, tau_budget)
    wideband_s = prob.s_bits * LN2 / prob.c_s_hz
    wideband_c = prob.s_c_bits * LN2 / prob.c_c_hz
    return (W * (prob.sigma_s + tau_need + wideband_s) + wideband_c).max(axis=1)


def _start(prob: EnergyRoundProblem) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers and P of the delay-optimal (17) solution of every row: the start point.

    At the (17) optimum every upload is at p_max and every clock at f_max, so the cap conditions give
    lam_k / mu_s from the activation upload and mu_c / mu_s from the adapter upload."""
    n, K = prob.shape
    z, g = np.zeros((n, K, 2)), np.zeros((n, 3))
    state = None
    for i in range(n):
        p17 = PerRoundProblem(V=1.0, compute_s=prob.tau0_s + prob.sigma_s, c_s_hz=prob.c_s_hz, c_c_hz=prob.c_c_hz,
                              s_bits=prob.s_bits, s_c_bits=prob.s_c_bits, B_s_hz=prob.B_s_hz, B_c_hz=prob.B_c_hz,
                              weights=prob.W[i])
        sol = solve_per_round(p17, start=state, tol=1e-10)
        if not sol.converged and state is not None:
            sol = solve_per_round(p17, tol=1e-10)
        state = sol.state
        x_s, x_c = prob.c_s_hz / sol.b_s_hz, prob.c_c_hz / sol.b_c_hz
        _, d1_s, _ = phi_derivatives(x_s)
        _, d1_c, _ = phi_derivatives(x_c)
        a_s, a_c = prob.s_bits * LN2, prob.s_c_bits * LN2
        # m = (pi·p_max + lam)·a·M(x)/c^2 with pi = 0: lam/mu_s = c_s^2/(W·a_s·M(x_s)); mu_c = lam·a_c·M(x_c)/c_c^2
        lam_rel = prob.c_s_hz ** 2 / (prob.W[i] * a_s * x_s ** 2 * d1_s)
        mu_c_rel = np.exp(np.median(np.log(lam_rel * a_c * x_c ** 2 * d1_c / prob.c_c_hz ** 2)))
        mu_s = (1.0 - prob.weight) / lam_rel.sum()
        z[i, :, 0] = np.log(lam_rel * mu_s)
        # a binding budget starts at the energy price where the clock begins to slow: nu = lam/(2·P_full)
        z[i, :, 1] = np.log(_NU_START * lam_rel * mu_s / (2.0 * np.maximum(prob.power_full_w, 1e-300)))
        g[i] = [sol.P_s, math.log(mu_s), math.log(mu_c_rel * mu_s)]
    return z, g


def solve_energy_kkt(prob: EnergyRoundProblem, tol: float = 1e-12, max_steps: int = 100) -> EnergyRoundSolution:
    """Solve every problem of the batch on its optimality conditions (module docstring).

    Newton on the three globals (P, ln mu_s, ln mu_c), every user solving its own equations exactly
    at each (`_settle_users`), so that one user's kink cannot shorten every user's step. A row is
    converged when the globals' scaled residuals are below `tol`, every user's below `tol`/10, and
    every user's budget is met. `newton_steps` counts the global steps. Rows whose budget is below a
    user's energy floor are infeasible (P = inf) and not solved."""
    n, K = prob.shape
    if np.any(prob.W <= 0):
        raise ValueError("every user needs a positive iteration count W")
    feasible = np.all(prob.round_energy_floor_j() < prob.budget_j[:, None], axis=1)
    out = EnergyRoundSolution(P_s=np.full(n, np.inf), tau_s=np.full((n, K), np.nan), t_s_s=np.full((n, K), np.nan),
                              b_s_hz=np.full((n, K), np.nan), t_c_s=np.full((n, K), np.nan),
                              b_c_hz=np.full((n, K), np.nan), energy_j=np.full((n, K), np.nan),
                              objective=np.full(n, np.inf), feasible=feasible, converged=np.zeros(n, dtype=bool),
                              newton_steps=0, gap=np.full(n, np.nan))
    # one problem at a time: the rows need different numbers of steps and inner iterations, and a
    # batch would run every row for as long as its slowest
    for row in np.flatnonzero(feasible):
        rows = np.array([row])
        out.set_rows(rows, _solve_one(prob.rows(rows), tol, max_steps))
    return out


def _solve_one(prob: EnergyRoundProblem, tol: float, max_steps: int) -> EnergyRoundSolution:
    """`solve_energy_kkt` on one feasible problem (n = 1; the arrays keep the batch axis, which
    `_Point` and `_settle_users` share with the batched start)."""
    warm: dict = {}
    z, g = _start(prob)
    floor = round_time_floor_s(prob)
    # start well above the floor, where no user needs a huge bandwidth; further up while a user cannot settle
    g[:, 0] = np.maximum(g[:, 0], floor) + floor
    user_tol = 0.1 * tol
    z0 = z
    for _ in range(_START_TRIES):
        z, binding, pt = _settle_start(prob, z0, g, warm, user_tol)
        if np.isfinite(pt.global_merit[0]) and (pt.user_merit <= (10 * user_tol) ** 2).all():
            break
        g[:, 0] = floor + 4.0 * (g[:, 0] - floor)
    converged = False
    steps = hybrid_tries = 0
    while steps < max_steps:
        if pt.global_merit[0] <= tol * tol:
            if (pt.user_merit <= (10 * user_tol) ** 2).all():
                converged = True
                break
            steps += 1
            z, binding, pt = _settle(prob, z, g, binding, warm, user_tol)  # settled loosely: now to the last digit
            continue
        steps += 1
        dz, dg = pt.newton_step()
        dg[:, 0] /= g[:, 0] - floor  # the step in s = ln(P - P_floor): P stays above the floor
        if not np.isfinite(dg).all():
            break
        dz = np.where(np.isfinite(dz), dz, 0.0)
        dz[..., 1] = np.where(binding, dz[..., 1], 0.0)
        first = alpha = min(1.0, 2.0 / max(float(np.abs(dg).max()), 1e-300))
        # far from the answer the users need not be settled to the last digit (an inexact Newton:
        # the step accounts for their residuals), only well below the globals' residual
        loose = max(user_tol, _INEXACT * math.sqrt(pt.global_merit[0]))
        taken = 0.0
        # near the answer (residuals a few % of the pools) a cut step means a kink ahead, which the
        # hybrid method crosses in fewer settles than a crawling line search: it is called at once
        near = pt.global_merit[0] <= _NEAR_MERIT and hybrid_tries < _HYBRID_TRIES
        stalled = (_NEAR_SHORT_STEP if near else _SHORT_STEP) * first
        while alpha >= (stalled if near else _SHORTEST_STEP * first):
            g_try = g + alpha * dg
            g_try[:, 0] = floor + (g[:, 0] - floor) * np.exp(alpha * dg[:, 0])
            z_try, b_try, p_try = _settle(prob, z + alpha * dz, g_try, binding, warm, loose)
            if p_try.global_merit[0] <= (1.0 - 1e-4 * alpha) * pt.global_merit[0]:
                z, g, binding, pt, taken = z_try, g_try, b_try, p_try, alpha
                break
            alpha *= 0.5
        # Newton that makes little or no headway is stalled at a kink of some user's response (a clock
        # bound, the power cap, a budget starting to bind), where its one-sided Jacobian points the
        # wrong way: Powell's hybrid method is tried from there (at most _HYBRID_TRIES times), its
        # answer kept where it lowers the residual. Where the line search failed outright and the
        # hybrid method does not improve the point, the solve ends (converged stays False).
        improved = False
        if taken < stalled and hybrid_tries < _HYBRID_TRIES:
            hybrid_tries += 1
            found = _powell_hybrid(prob, z, g, binding, float(floor[0]), warm,
                                   max(user_tol, _INEXACT * math.sqrt(pt.global_merit[0])), tol * tol)
            if found[3].global_merit[0] < pt.global_merit[0]:
                z, g, binding, pt = found
                improved = True
        if taken == 0.0 and not improved:
            break
    primal = (1 - prob.weight) * pt.g[:, 0] + prob.weight * pt.energy.sum(axis=1)
    dual = pt.dual_value()
    gap = np.abs(primal - dual) / np.maximum(np.abs(primal), 1e-300)
    # a primal point feasible to 1e-9 whose duality gap is at float precision is optimal, even where
    # round-off kept a residual above `tol`
    budget = prob.budget_j[:, None]
    within = np.all(pt.energy <= np.where(np.isfinite(budget), budget, np.inf) * (1 + 1e-9), axis=1)
    certified = (pt.worst <= 1e-9) & within & (gap <= 1e-11)
    return EnergyRoundSolution(P_s=pt.g[:, 0], tau_s=pt.tau, t_s_s=pt.up_s.t, b_s_hz=pt.up_s.b, t_c_s=pt.up_c.t,
                               b_c_hz=pt.up_c.b, energy_j=pt.energy, objective=primal, feasible=np.ones(1, dtype=bool),
                               converged=converged | certified, newton_steps=steps, gap=gap)

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
"""

from __future__ import annotations

import math

import numpy as np
import scipy.optimize

from scenarios.types import LN2

from .energy_solver import EnergyRoundProblem, EnergyRoundSolution
from .fdma_math import phi_derivatives
from .structured import PerRoundProblem, solve_per_round

_LAST_STEP = 1e-9  # a 1-D Newton root stops after a step this short (relative)
_SERIES = 0.1  # below this u the series of h(u) = u + expm1(-u) is used
_OPEN_STEP = 8.0  # the longest Newton step of a 1-D root towards an open end of its bracket (log units)
_START_TRIES = 8  # the start's P moves 4x further from the floor until every user settles
_SHORTEST_STEP = 2.0 ** -12  # the line search gives up below this share of the first step
_SHORT_STEP = 2.0 ** -5  # Newton is stalled when its step is cut below this share
_NEAR_MERIT = 1e-3  # ... or, once the globals' squared scaled residual is below this, below _NEAR_SHORT_STEP
_NEAR_SHORT_STEP = 0.5
_HYBRID_EVALUATIONS = 400  # the most settlings Powell's hybrid method may spend on a stalled problem
_HYBRID_TRIES = 3  # the most times a problem's stalled Newton is handed to the hybrid method
_INEXACT = 1e-4  # users are settled to this share of the globals' residual (at least to the final tolerance)
_SUBSET_SHARE = 0.25  # per-user Newton runs on the unsettled users alone when they are fewer than this share
_NEWTON_SETTLE_STEPS = 12  # per-user Newton iterations before the nested bracketed roots take over a user
_NU_START = 2.0  # a budget that starts to bind gets this multiple of the price at which the clock starts to slow


def _h(u: np.ndarray) -> np.ndarray:
    """h(u) = u - 1 + e^(-u) = e^(-u)·g(u) > 0 for u > 0, without cancellation near 0."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = u + np.expm1(-u)
    small = u < _SERIES
    if small.any():
        us = u[small]
        term, total = us * us / 2.0, np.zeros_like(us)
        for n in range(3, 14):  # sum_{n >= 2} (-u)^n / n!
            total += term
            term = -term * us / n
        out[small] = total
    return out


def _solve_u(log_kappa: np.ndarray, start: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """u > 0 with ln g(u) - ln(u)/2 = log_kappa, and D = d(ln g - ln u / 2)/d ln u = u^2/h(u) - 1/2.

    F(s) = u + ln h(u) - s/2 - log_kappa, s = ln u, is convex and increasing (F' = u^2/h - 1/2 >=
    3/2 and increasing in u), so Newton converges from any start."""
    # an upper bound of the root: G(u) >= u^1.5/2, and G(u) >= e^u/sqrt(2) for u >= 2
    s = np.minimum((2.0 / 3.0) * (LN2 + log_kappa), np.log(np.maximum(2.0, 0.5 * LN2 + log_kappa)))
    if start is not None:
        s = np.where(np.isfinite(start), start, s)
    for _ in range(100):
        u = np.exp(s)
        h = _h(u)
        F = u + np.log(h) - 0.5 * s - log_kappa
        D = u * u / h - 0.5
        step = F / D
        s = s - step
        # Newton converges quadratically: once every step is below _LAST_STEP, the one just taken has
        # left an error of about its square (< 1e-18), below float resolution (NaN rows do not hold it up)
        if not np.any(np.abs(step) > _LAST_STEP * np.maximum(1.0, np.abs(s))):
            break
    u = np.exp(s)
    return u, u * u / _h(u) - 0.5


def _solve_x(log_target: np.ndarray, start: np.ndarray | None) -> tuple[np.ndarray, tuple]:
    """x > 0 with ln(x^2·phi'(x)) = log_target; returns x and (phi, phi', phi'') there.

    d ln(x^2 phi')/d ln x = 2 + x·phi''/phi' lies in [1.79, 2], so Newton in ln x, kept inside a
    bracket that every step narrows, converges in a few steps."""
    s = 0.5 * (log_target + LN2) if start is None else np.where(np.isfinite(start), start, 0.5 * (log_target + LN2))
    lo, hi = np.full_like(s, -np.inf), np.full_like(s, np.inf)
    for _ in range(100):
        x = np.exp(s)
        f, d1, d2 = phi_derivatives(x)
        F = 2.0 * s + np.log(d1) - log_target
        D = 2.0 + x * d2 / d1
        lo, hi = np.where(F < 0, s, lo), np.where(F > 0, s, hi)
        new = s - F / D
        outside = (new <= lo) | (new >= hi)
        new = np.where(outside & np.isfinite(lo) & np.isfinite(hi), 0.5 * (lo + hi), new)
        step = new - s
        s = new
        if not np.any(np.abs(step) > _LAST_STEP * np.maximum(1.0, np.abs(s))):  # as in _solve_u
            break
    x = np.exp(s)
    return x, phi_derivatives(x)


class _Upload:
    """Best (b, t, e) of one upload at prices (m, pi, lam), with d ln(b, t, e)/d ln(m, pi, lam).

    Arrays (n, K). `capped` marks the uploads at p = p_max. pi = 0 means energy is free: capped."""

    def __init__(self, bits: float, c_hz: np.ndarray, max_power_w: float, m: np.ndarray, pi: np.ndarray,
                 lam: np.ndarray, warm: dict):
        a = bits * LN2
        c = np.broadcast_to(c_hz, m.shape)
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            # below the cap
            free = pi > 0
            log_kappa = np.where(free, 0.5 * (np.log(lam) + np.log(m)) - np.log(pi) + np.log(c)
                                 - math.log(max_power_w) - 0.5 * math.log(a), 0.0)
            u, D_G = _solve_u(log_kappa, warm.get("s_u"))
            ln_q = math.log(a) - np.log(u)
            ln_b_free = 0.5 * (ln_q + np.log(lam) - np.log(m))
            ln_t_free = 0.5 * (ln_q - np.log(lam) + np.log(m))
            ln_expm1_u = u + np.log(-np.expm1(-u))  # ln(e^u - 1) without overflow
            ln_power = ln_b_free - np.log(c) + ln_expm1_u  # ln(p/p_max)
            capped = ~free | (ln_power > 0)
            # at the cap
            lam_tot = pi * max_power_w + lam
            x, (phi, d1, d2) = _solve_x(np.log(m) + 2 * np.log(c) - math.log(a) - np.log(lam_tot), warm.get("s_x"))
        warm["s_u"], warm["s_x"] = np.log(u), np.log(x)
        self.capped = capped
        h = _h(u)
        self.b = np.where(capped, c / x, np.exp(ln_b_free))
        self.t = np.where(capped, a / c * phi, np.exp(ln_t_free))
        with np.errstate(over="ignore"):
            self.e = np.where(capped, max_power_w * self.t, np.exp(math.log(max_power_w) - np.log(c) + ln_q + ln_expm1_u))
        # derivatives: rows b, t, e; columns ln m, ln pi, ln lam
        # below the cap: d ln u = (dm/2 + dlam/2 - dpi)/D_G; d ln q = -d ln u
        dq = -np.stack([0.5 / D_G, -1.0 / D_G, 0.5 / D_G], axis=-1)
        free_d = np.empty(m.shape + (3, 3))
        free_d[..., 0, :] = 0.5 * (dq + np.array([-1.0, 0.0, 1.0]))
        free_d[..., 1, :] = 0.5 * (dq + np.array([1.0, 0.0, -1.0]))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            dln_e_dln_q = -h / (-np.expm1(-u))  # q·psi'(q)/psi(q)
        free_d[..., 2, :] = dln_e_dln_q[..., None] * dq
        # at the cap: d ln x = (dm - dLam)/D_M, Lam = ln(pi·p_max + lam)
        with np.errstate(divide="ignore", invalid="ignore"):
            share_pi = np.where(capped, pi * max_power_w / lam_tot, 0.0)
        D_M = 2.0 + x * d2 / d1
        dx = np.stack([1.0 / D_M, -share_pi / D_M, -(1.0 - share_pi) / D_M], axis=-1)
        cap_d = np.empty(m.shape + (3, 3))
        cap_d[..., 0, :] = -dx
        cap_d[..., 1, :] = (x * d1 / phi)[..., None] * dx
        cap_d[..., 2, :] = cap_d[..., 1, :]
        d = np.where(capped[..., None, None], cap_d, free_d)
        self.d = np.where(np.isfinite(d), d, 0.0)


class _Point:
    """Responses, residuals and (on demand) the Newton step at one iterate, for n problems at once.

    Unknowns: per user z = (ln lam_k, ln nu_k) (nu_k = 0 and its row trivial where the budget is
    slack), per problem g = (P, ln mu_s, ln mu_c)."""

    def __init__(self, prob: EnergyRoundProblem, z: np.ndarray, g: np.ndarray, binding: np.ndarray, warm: dict):
        self.prob, self.z, self.g, self.binding = prob, z, g, binding
        pr, W = prob, prob.W
        n, K = W.shape
        lam = np.exp(z[..., 0])
        nu = np.where(binding, np.exp(z[..., 1]), 0.0)
        pi = pr.weight + nu
        P, mu_s, mu_c = g[:, 0], np.exp(g[:, 1]), np.exp(g[:, 2])
        self.lam, self.nu, self.pi = lam, nu, pi
        k0 = pr.power_full_w * pr.tau0_s ** 3  # J·s^2: compute energy per iteration is k0 / tau^2
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            tau_free = np.cbrt(2.0 * pi * k0 / lam)
        tau = np.clip(np.where(np.isnan(tau_free), 0.0, tau_free), pr.tau0_s, pr.tau_max_s)  # inf: the slowest clock
        # d ln tau / d ln(pi/lam): 1/3 between the clock bounds (the right derivative at tau0), 0 outside
        inside = (k0 > 0) & (pi > 0) & (tau_free >= pr.tau0_s) & (tau_free < pr.tau_max_s)
        self.tau = tau
        self._inside = inside
        self.up_s = _Upload(pr.s_bits, pr.c_s_hz, pr.max_power_w, mu_s[:, None] / W, pi, lam, warm.setdefault("s", {}))
        self.up_c = _Upload(pr.s_c_bits, pr.c_c_hz, pr.max_power_w, np.broadcast_to(mu_c[:, None], (n, K)), pi, lam,
                            warm.setdefault("c", {}))
        with np.errstate(divide="ignore", invalid="ignore"):
            self.e_cmp = np.where(k0 > 0, W * k0 / tau ** 2, 0.0)
        self.energy = self.e_cmp + W * self.up_s.e + self.up_c.e + pr.idle_power_w * W * pr.sigma_s
        self.busy = W * (tau + self.up_s.t) + self.up_c.t
        self.F1 = self.busy + W * pr.sigma_s - P[:, None]
        budget = pr.budget_j[:, None]
        self.F2 = np.where(binding, self.energy - budget, 0.0)
        self.G = np.stack([self.up_s.b.sum(axis=1) - pr.B_s_hz, self.up_c.b.sum(axis=1) - pr.B_c_hz,
                           lam.sum(axis=1) - (1.0 - pr.weight)], axis=1)
        scale_e = np.where(np.isfinite(budget), budget, 1.0)
        scaled = np.concatenate([(self.F1 / P[:, None]), self.F2 / scale_e,
                                 self.G / np.array([pr.B_s_hz, pr.B_c_hz, 1.0 - pr.weight])], axis=1)
        finite = np.isfinite(scaled).all(axis=1) & (P > 0)
        user = (self.F1 / P[:, None]) ** 2 + (self.F2 / scale_e) ** 2
        self.user_merit = np.where(np.isfinite(user), user, np.inf)  # (n, K)
        self.global_merit = np.where(finite, (scaled[:, 2 * K:] ** 2).sum(axis=1), np.inf)
        self.worst = np.where(finite, np.abs(scaled).max(axis=1), np.inf)

    def _blocks(self):
        """Per-user Jacobian blocks J (n, K, 2, 2), their border C (n, K, 2, 3) in g, the global rows'
        derivatives D (n, K, 3, 2) in z and H (n, 3, 3) in g, and F (n, K, 2)."""
        W = self.prob.W
        s, c = self.up_s, self.up_c
        # d ln pi / d ln nu: nu/pi on binding users
        dpi_dnu = np.where(self.binding, self.nu / np.where(self.pi > 0, self.pi, 1.0), 0.0)
        # derivatives of ln tau, ln t, ln e, ln b in the unknowns: columns (ln lam, ln nu, ln mu_own)
        def in_unknowns(d):  # d (..., 3 outputs, 3 inputs ln m, ln pi, ln lam) -> (..., 3, 3: lam, nu, mu)
            return np.stack([d[..., 2], d[..., 1] * dpi_dnu[..., None], d[..., 0]], axis=-1)

        ds, dc = in_unknowns(s.d), in_unknowns(c.d)
        d_tau = np.where(self._inside, 1.0 / 3.0, 0.0)  # d ln tau / d ln pi = -d ln tau / d ln lam
        dtau = np.stack([-d_tau, d_tau * dpi_dnu, np.zeros_like(d_tau)], axis=-1)
        # F1 = W tau + W t_s + t_c + W sigma - P
        dF1 = W[..., None] * self.tau[..., None] * dtau + (W * s.t)[..., None] * ds[..., 1, :] + c.t[..., None] * dc[..., 1, :]
        dF2 = (-2.0 * self.e_cmp)[..., None] * dtau + (W * s.e)[..., None] * ds[..., 2, :] + c.e[..., None] * dc[..., 2, :]
        n, K = W.shape
        J = np.zeros((n, K, 2, 2))
        J[..., 0, 0], J[..., 0, 1] = dF1[..., 0], dF1[..., 1]
        J[..., 1, 0] = np.where(self.binding, dF2[..., 0], 0.0)
        J[..., 1, 1] = np.where(self.binding, dF2[..., 1], 1.0)
        # border: columns P, ln mu_s, ln mu_c
        C = np.zeros((n, K, 2, 3))
        C[..., 0, 0] = -1.0
        C[..., 0, 1] = (W * s.t) * ds[..., 1, 2]
        C[..., 0, 2] = c.t * dc[..., 1, 2]
        C[..., 1, 1] = np.where(self.binding, (W * s.e) * ds[..., 2, 2], 0.0)
        C[..., 1, 2] = np.where(self.binding, c.e * dc[..., 2, 2], 0.0)
        F = np.stack([self.F1, self.F2], axis=-1)
        # global rows: G1 = sum b_s - B_s, G2 = sum b_c - B_c, G3 = sum lam - (1 - w)
        D = np.zeros((n, K, 3, 2))
        D[..., 0, :] = (s.b[..., None] * ds[..., 0, :2])
        D[..., 1, :] = (c.b[..., None] * dc[..., 0, :2])
        D[..., 2, 0] = self.lam
        H = np.zeros((n, 3, 3))
        H[:, 0, 1] = (s.b * ds[..., 0, 2]).sum(axis=1)
        H[:, 1, 2] = (c.b * dc[..., 0, 2]).sum(axis=1)
        # a binding user whose budget price has fallen to nothing next to w (nu/pi -> 0), or that sits
        # at the power cap and a clock bound with its budget binding, has a singular block: its energy
        # no longer moves with its price. The step then treats its budget price as fixed.
        det = J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
        size = np.abs(J[..., 0, 0] * J[..., 1, 1]) + np.abs(J[..., 0, 1] * J[..., 1, 0])
        singular = self.binding & ~(np.abs(det) > 1e-12 * size)
        if singular.any():
            J[..., 1, 0] = np.where(singular, 0.0, J[..., 1, 0])
            J[..., 1, 1] = np.where(singular, 1.0, J[..., 1, 1])
            J[..., 0, 1] = np.where(singular, 0.0, J[..., 0, 1])
            C[..., 1, :] = np.where(singular[..., None], 0.0, C[..., 1, :])
            F[..., 1] = np.where(singular, 0.0, F[..., 1])
            D[..., :, 1] = np.where(singular[..., None], 0.0, D[..., :, 1])
        return J, C, D, H, F

    def user_partials(self) -> tuple[np.ndarray, ...]:
        """(dF1/d ln lam, dF1/d ln pi, de/d ln lam, de/d ln pi), each (n, K), with the globals held: the
        derivatives of each user's time residual and energy in its two prices."""
        W, s, c = self.prob.W, self.up_s, self.up_c
        d_tau = np.where(self._inside, 1.0 / 3.0, 0.0)  # d ln tau / d ln pi = -d ln tau / d ln lam
        out = []
        for col, sign in ((2, -1.0), (1, 1.0)):  # ln lam, ln pi (columns of the responses' derivatives)
            dt = sign * d_tau
            out.append(W * self.tau * dt + W * s.t * s.d[..., 1, col] + c.t * c.d[..., 1, col])
            out.append(-2.0 * self.e_cmp * dt + W * s.e * s.d[..., 2, col] + c.e * c.d[..., 2, col])
        return out[0], out[2], out[1], out[3]

    @staticmethod
    def _inverse(J: np.ndarray) -> np.ndarray:
        det = J[..., 0, 0] * J[..., 1, 1] - J[..., 0, 1] * J[..., 1, 0]
        return np.stack([np.stack([J[..., 1, 1], -J[..., 0, 1]], -1), np.stack([-J[..., 1, 0], J[..., 0, 0]], -1)],
                        -2) / det[..., None, None]

    def _eliminated(self) -> tuple[np.ndarray, ...]:
        """The users eliminated from the Newton system: (a, B, D, S) with each user's change in its
        prices dz = a + B·dg for a change dg of the globals (a = -J⁻¹·F, B = -J⁻¹·C, per user), D the
        globals' rows in z and S = H + D·B (n, 3, 3), d G / d g with every user's equations held."""
        J, C, D, H, F = self._blocks()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            Jinv = self._inverse(J)
            a = -np.einsum("nkij,nkj->nki", Jinv, F)
            B = -np.einsum("nkij,nkjl->nkil", Jinv, C)
            return a, B, D, H + np.einsum("nkij,nkjl->nil", D, B)

    def global_jacobian(self) -> np.ndarray:
        """(n, 3, 3) d G / d g (P, ln mu_s, ln mu_c) with every user's equations held."""
        return self._eliminated()[3]

    def newton_step(self) -> tuple[np.ndarray, np.ndarray]:
        """(dz (n, K, 2), dg (n, 3)) of the whole Newton system, by block elimination. Where every
        user's equations hold (F = 0), dg is Newton's step on the globals with the users following."""
        a, B, D, S = self._eliminated()
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rhs = -self.G - np.einsum("nkij,nkj->ni", D, a)
            dg = np.linalg.solve(S, rhs[..., None])[..., 0]
            dz = a + np.einsum("nkil,nl->nki", B, dg)
        return dz, dg

    def predict(self, g: np.ndarray) -> np.ndarray:
        """The users' prices z at globals `g` to first order from this point (Newton on each user's
        equations with the globals moved from `self.g` to `g`): a warm start for settling them there."""
        a, B, _, _ = self._eliminated()
        with np.errstate(invalid="ignore", over="ignore"):
            dz = a + np.einsum("nkil,nl->nki", B, g - self.g)
        dz = np.clip(np.where(np.isfinite(dz), dz, 0.0), -_OPEN_STEP, _OPEN_STEP)
        dz[..., 1] = np.where(self.binding, dz[..., 1], 0.0)
        return self.z + dz

    def dual_value(self) -> np.ndarray:
        """(n,) the Lagrange dual function at the current multipliers: a lower bound on the optimum of
        each problem (for the weighted objective too) when the point is an exact minimiser of the
        separable Lagrangian, which every response is by construction."""
        pr, W = self.prob, self.prob.W
        mu_s, mu_c = np.exp(self.g[:, 1]), np.exp(self.g[:, 2])
        lam_time = self.lam + self.pi * pr.idle_power_w  # the multiplier of the time constraint itself
        active_e = self.e_cmp + W * self.up_s.e + self.up_c.e
        budget = np.where(np.isfinite(pr.budget_j), pr.budget_j, 0.0)[:, None]
        per_user = (self.pi * active_e + self.lam * self.busy + lam_time * W * pr.sigma_s
                    - self.nu * budget
                    + mu_s[:, None] * self.up_s.b + mu_c[:, None] * self.up_c.b)
        # the P terms cancel when sum_k lam_k = 1 - w (G3 = 0); what is left of them is -G3·P
        return per_user.sum(axis=1) - mu_s * pr.B_s_hz - mu_c * pr.B_c_hz - self.G[:, 2] * self.g[:, 0]


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

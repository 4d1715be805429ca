"""The structured energy solver's per-user part: each user's response to the prices, in closed form.

At prices (lam, pi) and globals (P, mu_s, mu_c) a user's compute time is a clipped cube root and each
upload solves one monotone scalar equation (below the power cap in u = S·ln2/(t·b), at the cap in the
sub-band SNR x = c/b); `_Point` holds every user's response, its residuals (time, budget), their
2x2 Jacobian blocks and the border to the globals, and the dual bound. See structured.py.
"""

from __future__ import annotations

import math

import numpy as np

from splitsim.scenarios.types import LN2

from ..fdma_math import phi_derivatives
from .problem import EnergyRoundProblem


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

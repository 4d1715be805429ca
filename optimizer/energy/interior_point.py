"""Training delay under a per-user energy budget: problem (16) with transmit power and CPU clock
as decisions (and its weighted-sum variant): the problem's data, and a log-barrier interior-point
method. The allocation uses this interior point up to 200 users (`energy_strategies`) and the
structured Newton solver of `energy_kkt` (O(K) per step) beyond, each retrying what the other
leaves unconverged; the tests hold the two against each other and IPOPT.

At a fixed eta (V local iterations, I0 rounds; user k runs W_k = V·w_k iterations a round):

    minimise  P                                   [weighted: (1 - w)·P + w·sum_k e_k]
    over      tau_k   client compute time per iteration (clock f_k = f_max·tau0_k / tau_k),
              t_s,k, b_s,k, t_c,k, b_c,k   upload times and bandwidths,   P   seconds per round,
    s.t.      W_k·(tau_k + sigma_k + t_s,k) + t_c,k <= P                                (16a)
              e_k = W_k·P_full·tau0^3/tau_k^2 + W_k·psi_s(t_s,k·b_s,k) + psi_c(t_c,k·b_c,k)
                    + p_idle·(P - W_k·(tau_k + t_s,k) - t_c,k)  <=  E_max / I0            (energy)
              t >= S / r(b), r the rate at p_max, for both uploads          (p <= p_max, (16b, c, f))
              tau0_k <= tau_k <= tau0_k / f_min_fraction                    (f_min <= f_k <= f_max)
              sum_k b_s,k <= B_s,   sum_k b_c,k <= B_c                                  (16d, e)

E_max is each user's budget for the whole training (J), so a round may spend E_max/I0.

Why it is exact. p·t is not convex in (p, t); the change of variables that makes the problem
convex eliminates the power (the least power that meets the rate is p = p_max·(b/c)·(2^(S/(t·b)) - 1),
so p·t = psi(t·b), see `energy_model`) and replaces the clock by the compute time tau (compute
energy P_full·tau0^3/tau^2). Every constraint is then convex in (tau, t, b, P): psi(t·b) is jointly
convex because 2·q·psi''(q) + psi'(q) >= 0, S/r(b) is convex (r is concave), the rest is linear.
So any KKT point is the global optimum; the power of the answer follows from (t, b).

Which constraints are tight. Time: for every user whose budget binds (slack time is better spent on
a lower clock or power). Energy: a user whose budget is slack has a zero multiplier, and its
conditions are those of (17) with f = f_max and p = p_max. Hence, when the (17) optimum meets every
budget it is the answer, returned unchanged (`energy_strategies.optimise_with_energy`); otherwise the
budget binds for the users whose (17) energy exceeds it, and delay is traded against energy through
the clock (compute energy falls as 1/tau^2), the power (psi falls with t·b) and bandwidth moved
between users.

How it is solved. A log-barrier interior-point method on the variables above, scaled per user.
The Newton matrix is block-diagonal (5x5 per user) plus the P row and column and one rank-one term
per bandwidth pool; those rank-one terms are kept as auxiliary unknowns, so a Newton step costs
O(K): batched 7x7 solves and a 3x3 system per problem. Many problems (an eta grid) run as one
batch. A row stops when it is centred with a duality gap m/s below `gap_rel` of the objective.

Limit, measured (`benchmarks/bench_energy.py`): the Newton steps grow faster than K (about 110 at
K = 50, 220 at 100, 1,000 at 200, over 1,500 at 400 on the Fig. 2 cell). Users off the critical path
whose budget is slack have no unique clock (any tau that fits their time is optimal), and that
degeneracy slows the barrier path. Rows that do not converge are reported, never used silently.
"""

from __future__ import annotations


import numpy as np
from scipy.special import lambertw

from splitsim.scenarios.types import LN2, fdma_rate_bps

from .problem import EnergyRoundProblem, EnergyRoundSolution

_Y = 5  # per-user variables: tau, t_s, b_s, t_c, b_c
TAU, TS, BS, TC, BC = range(_Y)


class _Eval:
    """The barrier function of a batch at one point; the gradient and Newton step on demand."""

    def __init__(self, prob: EnergyRoundProblem, y: np.ndarray, P: np.ndarray, s: np.ndarray, scale: np.ndarray,
                 P_scale: np.ndarray, obj_scale: np.ndarray):
        self.prob, self.y, self.P, self.s, self.scale, self.P_scale, self.obj_scale = (prob, y, P, s, scale, P_scale,
                                                                                        obj_scale)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            self._values()

    def _values(self) -> None:
        pr, y, P = self.prob, self.y, self.P
        W = pr.W
        tau, ts, bs, tc, bc = (y[..., i] for i in range(_Y))
        self.u_s = pr.s_bits * LN2 / (ts * bs)
        self.u_c = pr.s_c_bits * LN2 / (tc * bc)
        self.rho_s = bs / pr.c_s_hz * np.expm1(self.u_s)
        self.rho_c = bc / pr.c_c_hz * np.expm1(self.u_c)
        busy = W * (tau + ts) + tc
        self.g_time = P[:, None] - W * pr.sigma_s - busy
        self.cmp = W * pr.power_full_w * pr.tau0_s ** 3 / tau ** 2
        self.energy = (self.cmp + W * pr.max_power_w * ts * self.rho_s + pr.max_power_w * tc * self.rho_c
                       + pr.idle_power_w * (P[:, None] - busy))
        self.g_energy = pr.budget_j[:, None] - self.energy
        self.g_lo = tau - pr.tau0_s
        self.g_hi = pr.tau_max_s - tau
        self.g_pool_s = pr.B_s_hz - bs.sum(axis=1)
        self.g_pool_c = pr.B_c_hz - bc.sum(axis=1)
        self.has_budget = np.isfinite(pr.budget_j)
        self.has_floor = np.isfinite(pr.tau_max_s)
        # p <= p_max written as t >= S/r(b), r the rate at p_max (FedsLLM's (17b, c)): nearly linear,
        # where the equivalent rho(t, b) <= 1 is exponential in 1/(t·b) and cuts Newton's steps short
        self.g_pow_s = ts - pr.s_bits / fdma_rate_bps(bs, pr.c_s_hz)
        self.g_pow_c = tc - pr.s_c_bits / fdma_rate_bps(bc, pr.c_c_hz)
        per_user = [self.g_time, self.g_pow_s, self.g_pow_c, self.g_lo]
        ok = (ts > 0) & (bs > 0) & (tc > 0) & (bc > 0)  # the domain; the caps keep them away from 0
        for g in per_user:
            ok &= np.isfinite(g) & (g > 0)
        ok &= ~self.has_floor | (self.g_hi > 0)
        ok &= ~self.has_budget[:, None] | (np.isfinite(self.g_energy) & (self.g_energy > 0))
        self.feasible = ok.all(axis=1) & (self.g_pool_s > 0) & (self.g_pool_c > 0)
        self.objective = self._objective()
        logs = sum(np.log(np.where(g > 0, g, 1.0)) for g in per_user)
        logs = logs + np.where(self.has_floor, np.log(np.where(self.g_hi > 0, self.g_hi, 1.0)), 0.0)
        logs = logs + np.where(self.has_budget[:, None], np.log(np.where(self.g_energy > 0, self.g_energy, 1.0)), 0.0)
        barrier = -logs.sum(axis=1) - np.log(np.maximum(self.g_pool_s, 1e-300)) - np.log(np.maximum(self.g_pool_c,
                                                                                                  1e-300))
        self.f = np.where(self.feasible, self.s * self.objective / self.obj_scale + barrier, np.inf)

    def _objective(self) -> np.ndarray:
        w = self.prob.weight
        if w == 0.0:
            return self.P.copy()
        return (1.0 - w) * self.P + w * self.energy.sum(axis=1)

    @property
    def constraints(self) -> np.ndarray:
        """(n,) number of barrier terms: the m of the duality gap m/s."""
        K = self.g_time.shape[1]
        return K * (4 + int(np.isfinite(self.prob.tau_max_s).any())) + K * self.has_budget + 2

    def _energy_derivatives(self):
        """Gradient (n, K, 5) and Hessian (n, K, 5, 5) of e_k in y; de/dP = p_idle."""
        pr, y, W = self.prob, self.y, self.prob.W
        tau, ts, bs, tc, bc = (y[..., i] for i in range(_Y))
        grad = np.zeros(y.shape)
        hess = np.zeros(y.shape + (_Y,))
        k0 = W * pr.power_full_w * pr.tau0_s ** 3
        grad[..., TAU] = -2.0 * k0 / tau ** 3 - pr.idle_power_w * W
        hess[..., TAU, TAU] = 6.0 * k0 / tau ** 4
        for (it, ib, u, c, mult, idle) in ((TS, BS, self.u_s, pr.c_s_hz, W, pr.idle_power_w * W),
                                           (TC, BC, self.u_c, pr.c_c_hz, 1.0, pr.idle_power_w)):
            t, b = y[..., it], y[..., ib]
            q = t * b
            eu = np.exp(u)
            d1 = pr.max_power_w / c * (np.expm1(u) - u * eu)  # psi'(q) < 0
            d2 = pr.max_power_w / c * u * u * eu / q  # psi''(q) > 0
            grad[..., it] = mult * d1 * b - idle
            grad[..., ib] = mult * d1 * t
            hess[..., it, it] = mult * d2 * b * b
            hess[..., ib, ib] = mult * d2 * t * t
            hess[..., it, ib] = hess[..., ib, it] = mult * (d2 * q + d1)
        return grad, hess

    def newton(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(dy (n, K, 5), dP (n,), decrement^2 (n,)) of the barrier function, in unscaled units."""
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            return self._newton()

    def _newton(self):
        """Newton step without forming 1/g^2 for the constraints that involve P or a pool.

        The rank-one barrier terms v·v'/g^2 of the time and energy constraints (v = their gradient
        in (y, P)) and of the two pools are kept as auxiliary unknowns z = v'(dy, dP)/g^2, so each
        user solves a 7x7 system [H0 A; A' -diag(g^2)] (well conditioned however small g is) and
        the batch couples only through dP and the two pool unknowns (a 3x3 system per problem)."""
        pr, y, W = self.prob, self.y, self.prob.W
        n, K = self.g_time.shape
        sw = self.s / self.obj_scale  # weight of the objective
        g = np.zeros(y.shape)
        H0 = np.zeros(y.shape + (_Y,))
        gP = np.zeros(n)
        A = np.zeros(y.shape + (2,))  # columns: time and energy constraint gradients in y
        pi = np.zeros((n, K, 2))  # their P coefficients
        G2 = np.ones((n, K, 2))  # their squared slacks (1 where there is no energy constraint)
        # time: g_t = P - W(tau + sigma + t_s) - t_c
        A[..., TAU, 0] = -W
        A[..., TS, 0] = -W
        A[..., TC, 0] = -1.0
        pi[..., 0] = 1.0
        G2[..., 0] = self.g_time ** 2
        inv = 1.0 / self.g_time
        g += -A[..., 0] * inv[..., None]
        gP += -inv.sum(axis=1)
        # power caps: g = t - h(b), h = S/r(b) convex and decreasing; barrier -log g
        for (it, ib, bits, c, slack) in ((TS, BS, pr.s_bits, pr.c_s_hz, self.g_pow_s),
                                         (TC, BC, pr.s_c_bits, pr.c_c_hz, self.g_pow_c)):
            b = y[..., ib]
            x = c / b
            r = b * np.log1p(x) / LN2
            r1 = (np.log1p(x) - x / (1.0 + x)) / LN2  # r'(b) > 0
            r2 = -x * x / (b * (1.0 + x) ** 2 * LN2)  # r''(b) < 0
            h1 = -bits * r1 / r ** 2  # h'(b) < 0
            h2 = bits * (2.0 * r1 * r1 - r * r2) / r ** 3  # h''(b) > 0
            gi = 1.0 / slack
            g[..., it] += -gi
            g[..., ib] += h1 * gi
            H0[..., it, it] += gi ** 2
            H0[..., ib, ib] += h1 * h1 * gi ** 2 + h2 * gi
            H0[..., it, ib] += -h1 * gi ** 2
            H0[..., ib, it] += -h1 * gi ** 2
        # clock bounds
        g[..., TAU] += -1.0 / self.g_lo
        H0[..., TAU, TAU] += 1.0 / self.g_lo ** 2
        if self.has_floor.any():
            hi = np.where(self.has_floor, self.g_hi, np.inf)
            g[..., TAU] += 1.0 / hi
            H0[..., TAU, TAU] += 1.0 / hi ** 2
        # energy: budget barrier (gradient -de, P coefficient -p_idle) and/or the weighted objective
        if self.has_budget.any() or pr.weight > 0:
            de, d2e = self._energy_derivatives()
            if self.has_budget.any():
                budget = self.has_budget[:, None]
                ge = np.where(budget, self.g_energy, 1.0)
                gi = np.where(budget, 1.0 / ge, 0.0)
                g += de * gi[..., None]
                gP += (pr.idle_power_w * gi).sum(axis=1)
                H0 += d2e * gi[..., None, None]
                A[..., 1] = np.where(budget[..., None], -de, 0.0)
                pi[..., 1] = np.where(budget, -pr.idle_power_w, 0.0)
                G2[..., 1] = ge ** 2
            if pr.weight > 0:
                g += (sw * pr.weight)[:, None, None] * de
                gP += sw * pr.weight * pr.idle_power_w * K
                H0 += (sw * pr.weight)[:, None, None, None] * d2e
        gP += sw * (1.0 - pr.weight)
        # bandwidth pools: -log(B - sum b), gradient 1/G on every b
        g[..., BS] += (1.0 / self.g_pool_s)[:, None]
        g[..., BC] += (1.0 / self.g_pool_c)[:, None]
        # scale: y = S·x, P = P_scale·z
        S, Ps = self.scale, self.P_scale
        M = np.zeros((n, K, _Y + 2, _Y + 2))
        M[..., :_Y, :_Y] = H0 * S[..., :, None] * S[..., None, :]
        A_x = A * S[..., None]
        M[..., :_Y, _Y:] = A_x
        M[..., _Y:, :_Y] = np.swapaxes(A_x, -1, -2)
        M[..., _Y, _Y] = -G2[..., 0]
        M[..., _Y + 1, _Y + 1] = -G2[..., 1]
        g_x, gP_z, pi_z = g * S, gP * Ps, pi * Ps[:, None, None]
        rhs = np.zeros((n, K, _Y + 2, 4))
        rhs[..., :_Y, 0] = -g_x
        rhs[..., _Y:, 1] = -pi_z
        rhs[..., BS, 2] = -S[..., BS]
        rhs[..., BC, 3] = -S[..., BC]
        X = np.linalg.solve(M, rhs)  # (n, K, 7, 4): [d; z] = X0 + X1·dP + X2·zeta_s + X3·zeta_c
        z_part = (pi_z[..., None] * X[..., _Y:, :]).sum(axis=(1, 2))  # (n, 4): sum_k pi'z
        s_part = (S[..., BS, None] * X[..., BS, :]).sum(axis=1)  # (n, 4): sum_k (scaled) d_b_s
        c_part = (S[..., BC, None] * X[..., BC, :]).sum(axis=1)
        lhs = np.stack([z_part[:, 1:], s_part[:, 1:], c_part[:, 1:]], axis=1)  # (n, 3, 3)
        lhs[:, 1, 1] -= self.g_pool_s ** 2
        lhs[:, 2, 2] -= self.g_pool_c ** 2
        right = -np.stack([gP_z + z_part[:, 0], s_part[:, 0], c_part[:, 0]], axis=1)
        glob = np.linalg.solve(lhs, right[..., None])[..., 0]  # (n, 3): dP, zeta_s, zeta_c
        sol = X[..., 0] + (X[..., 1:] * glob[:, None, None, :]).sum(axis=-1)
        dx = sol[..., :_Y]
        dz = glob[:, 0]
        decrement = -((g_x * dx).sum(axis=(1, 2)) + gP_z * dz)
        return dx * S, dz * Ps, decrement


def _solve_psi(bits: float, target_j: np.ndarray, c_hz: np.ndarray, max_power_w: float) -> np.ndarray:
    """q = t·b with psi(q) = target (> the wideband limit), from the Lambert W closed form.

    psi(q) = (p_max·a/c)·(e^u - 1)/u with u = a/q, a = S·ln2; (e^u - 1)/u = r has the root
    u = -W_{-1}(-e^(-1/r)/r) - 1/r."""
    a = bits * LN2
    r = np.maximum(target_j / (max_power_w * a / c_hz), 1.0 + 1e-12)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        u = -lambertw(-np.exp(-1.0 / r) / r, k=-1).real - 1.0 / r
    u = np.where(np.isfinite(u) & (u > 0), u, 2.0 * (r - 1.0))  # (e^u - 1)/u ~ 1 + u/2 near u = 0
    return a / np.maximum(u, 1e-300)


def initial_point(prob: EnergyRoundProblem, cap_margin: float = 1.001,
                  time_slack: float = 1e-7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A strictly feasible point of every problem of the batch: (y (n, K, 5), P (n,), feasible (n,)).

    Every user gets 0.9·B/K of each pool. With a budget, the budget's excess over the user's energy
    floor is split evenly between compute and the two uploads (each inverted in closed form), the
    uploads are kept below p_max, and each user's slack to the slowest is spent stretching its work
    (which only lowers its energy)."""
    pr = prob
    n, K = pr.shape
    b_s = np.full((n, K), 0.9 * pr.B_s_hz / K)
    b_c = np.full((n, K), 0.9 * pr.B_c_hz / K)
    t_s_cap = cap_margin * pr.s_bits / (b_s * np.log2(1 + pr.c_s_hz / b_s))  # p = p_max
    t_c_cap = cap_margin * pr.s_c_bits / (b_c * np.log2(1 + pr.c_c_hz / b_c))
    tau = np.broadcast_to(pr.tau0_s * (1 + 1e-3), (n, K)).copy()
    t_s, t_c = t_s_cap.copy(), t_c_cap.copy()
    floor = pr.round_energy_floor_j()
    budget = pr.budget_j[:, None]
    feasible = np.all(floor < budget, axis=1)
    limited = np.isfinite(budget) & (floor < budget)
    if limited.any():
        excess = np.where(limited, (budget - floor) * 0.9 / 3.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            cmp_floor = np.where(np.isfinite(pr.tau_max_s), pr.power_full_w * pr.tau0_s ** 3 / pr.tau_max_s ** 2, 0.0)
            per_iter = pr.power_full_w * pr.tau0_s  # compute energy per iteration at f_max
            tau_b = pr.tau0_s * np.sqrt(pr.W * per_iter / (pr.W * cmp_floor + excess))
            q_s = _solve_psi(pr.s_bits, pr.s_bits * LN2 * pr.max_power_w / pr.c_s_hz + excess / pr.W, pr.c_s_hz,
                             pr.max_power_w)
            q_c = _solve_psi(pr.s_c_bits, pr.s_c_bits * LN2 * pr.max_power_w / pr.c_c_hz + excess, pr.c_c_hz,
                             pr.max_power_w)
        tau = np.where(limited, np.maximum(tau, tau_b), tau)
        t_s = np.where(limited, np.maximum(t_s, 1.001 * q_s / b_s), t_s)
        t_c = np.where(limited, np.maximum(t_c, 1.001 * q_c / b_c), t_c)
    tau_cap = np.where(np.isfinite(pr.tau_max_s), pr.tau0_s + (1 - 1e-6) * (pr.tau_max_s - pr.tau0_s), np.inf)
    tau = np.minimum(tau, tau_cap)
    P = (pr.W * (tau + pr.sigma_s + t_s) + t_c).max(axis=1) * 1.001 / (1.0 - time_slack)
    # stretch each user's work to its slack, keeping `time_slack`·P of time slack (idle energy grows
    # with it, so it stays small when users pay for idling); energy only falls
    target = P[:, None] * (1 - time_slack) - pr.W * pr.sigma_s
    grow = target / (pr.W * (tau + t_s) + t_c)
    tau_new = np.minimum(tau * grow, tau_cap)
    rest = (target - pr.W * tau_new) / (pr.W * t_s + t_c)
    y = np.stack([tau_new, t_s * rest, b_s, t_c * rest, b_c], axis=-1)
    return y, P, feasible


def solve_energy_rounds(prob: EnergyRoundProblem, gap_rel: float = 1e-10, mu: float = 4.0,
                        max_steps: int = 2000, centring_tol: float = 1e-3, **start) -> EnergyRoundSolution:
    """Solve every problem of the batch by the barrier method (module docstring).

    A row is centred when its Newton decrement^2/2 is below `centring_tol`; it is done when it is
    centred with m/s below `gap_rel` of its objective. `converged` is False for a row that ran out
    of steps or lost its Newton step to round-off: its point is feasible but not proven optimal."""
    n, K = prob.shape
    y, P, feasible = initial_point(prob, **start)
    scale = np.stack([np.broadcast_to(np.where(prob.tau0_s > 0, prob.tau0_s, 1.0), (n, K)), y[..., TS], y[..., BS],
                      y[..., TC], y[..., BC]], axis=-1)
    P_scale = P.copy()
    first = _Eval(prob, y, P, np.ones(n), scale, P_scale, np.ones(n))
    failed = feasible & ~first.feasible  # a start that is not strictly feasible (not expected)
    obj_scale = np.abs(first.objective)
    m = first.constraints.astype(float)
    s = m.copy()  # gap m/s = 1 objective unit at the start
    done = ~feasible | failed
    converged = np.zeros(n, dtype=bool)
    steps = 0
    ev = _Eval(prob, y, P, s, scale, P_scale, obj_scale)
    while steps < max_steps and not done.all():
        steps += 1
        dy, dP, dec = ev.newton()
        broken = ~done & ~np.isfinite(dec)
        failed |= broken
        done |= broken
        # centred: the decrement is small, or smaller than f can resolve (f grows with s)
        centred = ~done & (dec / 2.0 <= np.maximum(centring_tol, 1e-12 * np.abs(ev.f)))
        finished = centred & (m / s <= gap_rel * np.abs(ev.objective) / obj_scale)
        converged |= finished
        done |= finished
        if done.all():
            break
        move = centred & ~done  # centred rows move along the path, the others take a damped Newton step
        if move.any():
            s = np.where(move, s * mu, s)
            ev = _Eval(prob, y, P, s, scale, P_scale, obj_scale)
            dy, dP, dec = ev.newton()
        active = ~done & np.isfinite(dec)
        step = np.where(active, 1.0, 0.0)
        pending = active.copy()
        new_y, new_P = y.copy(), P.copy()
        for _ in range(60):
            trial = _Eval(prob, y + step[:, None, None] * dy, P + step * dP, s, scale, P_scale, obj_scale)
            ok = pending & trial.feasible & (trial.f <= ev.f - 0.25 * step * dec)
            new_y[ok], new_P[ok] = trial.y[ok], trial.P[ok]
            pending &= ~ok
            if not pending.any():
                break
            step = np.where(pending, step * 0.5, 0.0)
        y, P = new_y, new_P
        # a row whose line search finds no decrease is at the limit of float precision: accept it when
        # its gap is already small, otherwise it has failed
        stuck = pending & active
        converged |= stuck & (m / s <= 1e3 * gap_rel * np.abs(ev.objective) / obj_scale)
        failed |= stuck & ~converged
        done |= stuck
        ev = _Eval(prob, y, P, s, scale, P_scale, obj_scale)
    gap = m / s * obj_scale / np.maximum(np.abs(ev.objective), 1e-300)
    return EnergyRoundSolution(P_s=np.where(feasible, P, np.inf), tau_s=y[..., TAU], t_s_s=y[..., TS],
                               b_s_hz=y[..., BS], t_c_s=y[..., TC], b_c_hz=y[..., BC], energy_j=ev.energy,
                               objective=np.where(feasible, ev.objective, np.inf), feasible=feasible,
                               converged=feasible & converged & ~failed, newton_steps=steps, gap=gap)


__all__ = ["EnergyRoundProblem", "EnergyRoundSolution", "initial_point", "solve_energy_rounds"]

"""Independent solvers of the energy-aware per-round problem, for tests and benchmarks only.

Two general NLP solvers, each on the problem written out from its statement (energy_solver
docstring) and sharing no code with `energy_kkt` or the interior point beyond the problem's data:
- scipy's SLSQP in log-variables from several random starts (dense: a few dozen users at most);
- IPOPT through CasADi (the `dev` extra) with exact sparse derivatives: up to K = 1,000 and beyond.
The problem is convex, so every start that converges should reach the same optimum.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize

from .problem import EnergyRoundProblem


def nlp_round_objective(prob: EnergyRoundProblem, i: int, starts: int, rng: np.random.Generator) -> float:
    """An independent solve of one per-round problem: SLSQP on log-variables from several starts.

    Variables per user: ln tau, ln t_s, ln b_s, ln t_c, ln b_c; and ln P. Written from the problem
    statement (energy_solver docstring) with scipy only. Returns the best objective: P, or with
    `prob.weight` w, (1 - w)·P + w·sum_k e_k."""
    K = prob.W.shape[1]
    W, budget = prob.W[i], prob.budget_j[i]

    def unpack(x):
        y = np.exp(x[:-1]).reshape(K, 5)
        return y[:, 0], y[:, 1], y[:, 2], y[:, 3], y[:, 4], math.exp(x[-1])

    def energy(x):
        tau, ts, bs, tc, bc, P = unpack(x)
        busy = W * (tau + ts) + tc
        pw_s = prob.max_power_w * bs / prob.c_s_hz * (2 ** (prob.s_bits / (ts * bs)) - 1)
        pw_c = prob.max_power_w * bc / prob.c_c_hz * (2 ** (prob.s_c_bits / (tc * bc)) - 1)
        return (W * prob.power_full_w * prob.tau0_s * (prob.tau0_s / tau) ** 2 + W * pw_s * ts + pw_c * tc
                + prob.idle_power_w * (P - busy))

    def objective(x):
        return (1 - prob.weight) * math.exp(x[-1]) + prob.weight * energy(x).sum()

    def cons(x):
        tau, ts, bs, tc, bc, P = unpack(x)
        rate_s = bs * np.log2(1 + prob.c_s_hz / bs)
        rate_c = bc * np.log2(1 + prob.c_c_hz / bc)
        busy = W * (tau + ts) + tc
        parts = [(P - W * prob.sigma_s - busy) / P, ts * rate_s / prob.s_bits - 1, tc * rate_c / prob.s_c_bits - 1,
                 tau / prob.tau0_s - 1, [1 - bs.sum() / prob.B_s_hz, 1 - bc.sum() / prob.B_c_hz]]
        if math.isfinite(budget):
            parts.append((budget - energy(x)) / budget)
        return np.concatenate(parts)

    best = math.inf
    for _ in range(starts):
        b = np.full(K, 0.5 / K) * rng.uniform(0.5, 1.0, K)
        ts = 3 * prob.s_bits / (b * prob.B_s_hz * np.log2(1 + prob.c_s_hz / (b * prob.B_s_hz)))
        tc = 3 * prob.s_c_bits / (b * prob.B_c_hz * np.log2(1 + prob.c_c_hz / (b * prob.B_c_hz)))
        tau = prob.tau0_s * rng.uniform(1.5, 4.0, K)
        P = (W * (tau + prob.sigma_s + ts) + tc).max() * 1.5
        x0 = np.log(np.concatenate([np.stack([tau, ts, b * prob.B_s_hz, tc, b * prob.B_c_hz], 1).ravel(), [P]]))
        if prob.weight == 0:
            res = minimize(lambda x: x[-1], x0, jac=lambda x: np.eye(len(x))[-1], method="SLSQP",
                           constraints=[{"type": "ineq", "fun": cons}], options={"maxiter": 2000, "ftol": 1e-14})
            value = math.exp(res.x[-1])
        else:
            res = minimize(objective, x0, method="SLSQP", constraints=[{"type": "ineq", "fun": cons}],
                           options={"maxiter": 3000, "ftol": 1e-15})
            value = objective(res.x)
        if res.success and cons(res.x).min() > -1e-7:
            best = min(best, value)
    return best


def ipopt_round_objective(prob: EnergyRoundProblem, i: int, tol: float = 1e-12) -> tuple[float, str]:
    """An independent solve of one per-round problem with IPOPT (through CasADi, the `dev` extra):
    a general interior-point NLP solver with exact sparse derivatives, so it scales to K = 1,000.

    The problem is written from its statement (energy_solver docstring) in scaled log-variables
    (y = reference·e^x, so every variable stays positive), with IPOPT's bound relaxation off and its
    tolerances at `tol`. Returns (objective, IPOPT's status)."""
    import casadi as ca

    K = prob.W.shape[1]
    W, budget = prob.W[i], prob.budget_j[i]
    x = ca.MX.sym("x", 5 * K + 1)
    X = ca.reshape(x[:5 * K], K, 5)
    b_ref_s, b_ref_c = prob.B_s_hz / K, prob.B_c_hz / K
    ts_ref = prob.s_bits / (b_ref_s * np.log2(1 + prob.c_s_hz / b_ref_s))
    tc_ref = prob.s_c_bits / (b_ref_c * np.log2(1 + prob.c_c_hz / b_ref_c))
    tau_ref = np.where(prob.tau0_s > 0, prob.tau0_s, 1.0)
    P_ref = float((W * (tau_ref + prob.sigma_s + ts_ref) + tc_ref).max())
    tau, ts, bs = tau_ref * ca.exp(X[:, 0]), ts_ref * ca.exp(X[:, 1]), b_ref_s * ca.exp(X[:, 2])
    tc, bc, P = tc_ref * ca.exp(X[:, 3]), b_ref_c * ca.exp(X[:, 4]), P_ref * ca.exp(x[-1])
    busy = W * (tau + ts) + tc
    ln2 = math.log(2.0)
    e = (W * prob.power_full_w * prob.tau0_s ** 3 / tau ** 2
         + W * prob.max_power_w * bs / prob.c_s_hz * (ca.exp(prob.s_bits * ln2 / (ts * bs)) - 1) * ts
         + prob.max_power_w * bc / prob.c_c_hz * (ca.exp(prob.s_c_bits * ln2 / (tc * bc)) - 1) * tc
         + prob.idle_power_w * (P - busy))
    g = [(P - W * prob.sigma_s - busy) / P_ref,
         ts * bs * ca.log(1 + prob.c_s_hz / bs) / (prob.s_bits * ln2) - 1,  # p <= p_max
         tc * bc * ca.log(1 + prob.c_c_hz / bc) / (prob.s_c_bits * ln2) - 1,
         ca.sum1(bs) / prob.B_s_hz, ca.sum1(bc) / prob.B_c_hz]
    lbg = [np.zeros(K)] * 3 + [[-np.inf], [-np.inf]]
    ubg = [np.full(K, np.inf)] * 3 + [[1.0], [1.0]]
    if math.isfinite(budget):
        g.append(e / budget)
        lbg.append(np.full(K, -np.inf))
        ubg.append(np.ones(K))
    lbx, ubx = np.full(5 * K + 1, -np.inf), np.full(5 * K + 1, np.inf)
    lbx[:K] = 0.0  # tau >= tau0
    if np.isfinite(prob.tau_max_s).any():
        ubx[:K] = np.log(np.broadcast_to(prob.tau_max_s, (K,)) / tau_ref)
    f = ((1 - prob.weight) * P + prob.weight * ca.sum1(e)) / P_ref
    options = {"ipopt.tol": tol, "ipopt.constr_viol_tol": tol, "ipopt.dual_inf_tol": tol, "ipopt.compl_inf_tol": tol,
               "ipopt.bound_relax_factor": 0.0, "ipopt.mu_strategy": "adaptive", "ipopt.max_iter": 3000,
               "ipopt.print_level": 0, "ipopt.sb": "yes", "print_time": 0}
    solver = ca.nlpsol("reference", "ipopt", {"x": x, "f": f, "g": ca.vertcat(*g)}, options)
    x0 = np.zeros(5 * K + 1)
    x0[:K], x0[K:2 * K], x0[3 * K:4 * K] = 0.1, 1.0, 1.0  # slower clock, 2.7x the full-power upload times
    x0[2 * K:3 * K] = x0[4 * K:5 * K] = -0.1  # 90 % of an even bandwidth share
    x0[-1] = math.log(3.0)
    res = solver(x0=x0, lbx=lbx, ubx=ubx, lbg=np.concatenate(lbg), ubg=np.concatenate(ubg))
    return float(res["f"]) * P_ref, str(solver.stats()["return_status"])

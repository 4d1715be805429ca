"""An independent solver of the energy-aware per-round problem, for tests and benchmarks only.

scipy's SLSQP (a general sequential quadratic programming NLP solver) on the problem written out
from its statement (energy_solver docstring) in log-variables, from several random starts: it shares
no code with the interior point beyond the problem's data. Dense, so practical up to a few dozen
users; the problem is convex, so every start that converges should reach the same optimum.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize

from .energy_solver import EnergyRoundProblem


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

"""The four strategies of FedsLLM Fig. 2, each an `Allocation`:

- proposed: bandwidth and eta optimised;      - EB: equal bandwidth, eta optimised;
- FE: eta fixed (0.1), bandwidth optimised;   - BA: eta fixed and equal bandwidth;

and any strategy of the user's (optimizer.custom), derived and verified as these are.
"""

from __future__ import annotations

import numpy as np

from splitsim.scenarios import Allocation, DelayInputs, OptimizerConfig
from splitsim.scenarios.custom_strategies import is_custom

from .allocation import (
    allocation_from_bandwidth,
    allocation_with_counts,
    check_inputs,
    per_round_problem,
    verify_allocation,
)
from .baselines import equal_bandwidth_allocation
from .convex import ConvexSolver, per_round_time_s
from .custom import custom_allocation
from .delay_model import local_iterations, upload_seconds
from .errors import OptimizerError
from .link_plan import on_link, on_shannon
from .eta_search import EtaChoice, choose_eta, paper_eta_grid
from .structured import NewtonState, solve_per_round, solve_per_round_batch


class OptimisedBandwidth:
    """P*(V): the optimal per-round time with V local iterations, bandwidth optimised.

    `method` 'structured' runs Newton (warm-started from the last solve) and falls back to cvxpy;
    'cvxpy' runs Clarabel and falls back to the structured solver. Every answer is checked: its
    true per-round time (times from the Shannon rates) must match the solver's to 1e-6.
    Solutions are cached per V.
    """

    def __init__(self, inputs: DelayInputs, method: str = "structured", rel_tol: float = 1e-6):
        if method not in ("structured", "cvxpy"):
            raise OptimizerError("unknown solver", field="optimizer.solver", value=method)
        self.inputs = inputs
        self.method = method
        self.rel_tol = rel_tol
        self._cache: dict[float, tuple[float, np.ndarray, np.ndarray, str]] = {}
        self._states: dict[float, NewtonState] = {}
        self._convex: ConvexSolver | None = None
        self.log: list[str] = []

    def __call__(self, V: float) -> float:
        return self.solve(V)[0]

    def _warm_start(self, V: float) -> NewtonState | None:
        """Predict the solution at V from the nearest solved ones (linear in V), or None."""
        if not self._states:
            return None
        near = sorted(self._states, key=lambda w: abs(w - V))[:2]
        s2 = self._states[near[0]]
        if len(near) < 2 or abs(V - near[0]) > 2 * abs(near[0] - near[1]):
            return s2
        s1, f = self._states[near[1]], (V - near[0]) / (near[0] - near[1])
        return NewtonState(s2.u + f * (s2.u - s1.u), s2.v + f * (s2.v - s1.v), s2.ell + f * (s2.ell - s1.ell),
                           s2.P + f * (s2.P - s1.P))

    def _structured(self, V: float) -> tuple[float, np.ndarray, np.ndarray] | None:
        prob = per_round_problem(self.inputs, V)
        warm = self._warm_start(V)
        for start in (warm, None) if warm is not None else (None,):
            sol = solve_per_round(prob, start=start, tol=1e-10)
            if sol.converged and abs(per_round_time_s(prob, sol.b_s_hz, sol.b_c_hz) - sol.P_s) <= self.rel_tol * sol.P_s:
                self._states[V] = sol.state
                return sol.P_s, sol.b_s_hz, sol.b_c_hz
        self.log.append(f"V={V:.6g}: structured solver did not converge (residual {sol.residual:.2e})")
        return None

    def _cvxpy(self, V: float) -> tuple[float, np.ndarray, np.ndarray] | None:
        if self._convex is None:
            self._convex = ConvexSolver(self.inputs.users, self.rel_tol)
        res = self._convex.solve(per_round_problem(self.inputs, V))
        if res.b_s_hz is None:
            self.log.append(f"V={V:.6g}: cvxpy failed ({'; '.join(res.attempts)})")
            return None
        if len(res.attempts) > 1:
            self.log.append(f"V={V:.6g}: cvxpy needed {len(res.attempts)} attempts ({'; '.join(res.attempts)})")
        return res.P_s, res.b_s_hz, res.b_c_hz

    def many(self, V_values: np.ndarray) -> np.ndarray:
        """P* at every V of an array; the structured method solves them as one batched Newton system."""
        V_values = np.asarray(V_values, dtype=float)
        if self.method == "structured" and len(V_values) > 1:
            prob = per_round_problem(self.inputs, float(V_values[0]))
            for V, sol in zip(V_values, solve_per_round_batch(prob, V_values)):
                V = float(V)
                if V not in self._cache and sol.converged:
                    self._cache[V] = (sol.P_s, sol.b_s_hz, sol.b_c_hz, "structured")
                    self._states[V] = sol.state
        return np.array([self.solve(float(V))[0] for V in V_values])

    def solve(self, V: float) -> tuple[float, np.ndarray, np.ndarray, str]:
        """(P*, b_s, b_c, solver that produced them) at V local iterations."""
        if V in self._cache:
            return self._cache[V]
        order = ("structured", "cvxpy") if self.method == "structured" else ("cvxpy", "structured")
        for name in order:
            found = self._structured(V) if name == "structured" else self._cvxpy(V)
            if found is not None:
                self._cache[V] = (*found, name)
                return self._cache[V]
        raise OptimizerError("neither the structured solver nor cvxpy produced a verified allocation",
                             field="optimizer.solver", value=self.method)


class EqualBandwidth:
    """P(V) with every user on B_s/K and B_c/K: max_k V·(w_k + t_s,k) + t_c,k (closed form)."""

    def __init__(self, inputs: DelayInputs):
        k = inputs.users
        t_s = upload_seconds(inputs.activation_bits, np.full(k, inputs.uplink_main_bandwidth_hz / k),
                             inputs.snr_coeff_main_hz)
        t_c = upload_seconds(inputs.adapter_bits, np.full(k, inputs.uplink_fed_bandwidth_hz / k),
                             inputs.snr_coeff_fed_hz)
        self.per_iteration_s = inputs.weights * (inputs.compute_seconds_per_iteration + t_s)
        self.per_round_s = t_c

    def __call__(self, V: float) -> float:
        return float(np.max(V * self.per_iteration_s + self.per_round_s))

    def many(self, V_values: np.ndarray) -> np.ndarray:
        return np.max(np.asarray(V_values, dtype=float)[:, None] * self.per_iteration_s + self.per_round_s, axis=1)


def _chosen_eta(choice: EtaChoice, config: OptimizerConfig) -> float:
    return choice.eta if config.eta_search == "exact" else choice.eta_grid


def optimise(inputs: DelayInputs, config: OptimizerConfig, method: str | None = None) -> dict[str, Allocation]:
    """Allocations of `config.strategies`, each verified against problem (17)'s constraints. On a link
    other than Shannon's (the NR link) they are made on its fit and put in whole PRBs on the link
    itself (optimizer.link_plan)."""
    if not on_shannon(inputs):
        return on_link(inputs, lambda fitted: optimise(fitted, config, method))
    check_inputs(inputs)
    method = method or config.solver
    grid = paper_eta_grid(config.eta_grid_step)
    optimised = OptimisedBandwidth(inputs, method)
    out: dict[str, Allocation] = {}
    proposed = None
    for strategy in config.strategies:
        if strategy in ("proposed_replan", "robust"):
            # the proposed plan at t = 0; analysis.allocations re-plans it for the channel's dynamics
            proposed = proposed or out.get("proposed") or optimise(  # solved once: reuse proposed's answer
                inputs, config.model_copy(update={"strategies": ["proposed"]}), method)["proposed"]
            out[strategy] = Allocation(**{**proposed.__dict__, "strategy": strategy,
                                          "details": dict(proposed.details)})
            continue
        if is_custom(strategy):  # a user's own (optimizer.custom)
            alloc = custom_allocation(strategy, inputs, config)
        elif strategy == "BA":
            alloc = equal_bandwidth_allocation(inputs, config.fixed_eta, "BA")
        elif strategy == "EB":
            choice = choose_eta(EqualBandwidth(inputs), inputs.a, inputs.v, inputs.counts, grid)
            alloc = equal_bandwidth_allocation(inputs, _chosen_eta(choice, config), "EB")
            alloc = Allocation(**{**alloc.__dict__, "details": choice.summary()})
        else:
            if strategy == "proposed":
                choice = choose_eta(optimised, inputs.a, inputs.v, inputs.counts, grid)
                eta, details = _chosen_eta(choice, config), choice.summary()
            else:  # FE
                eta, details = config.fixed_eta, {}
            _, b_s, b_c, solver = optimised.solve(local_iterations(eta, inputs.v, inputs.counts))
            alloc = allocation_from_bandwidth(inputs, eta, b_s, b_c, strategy, solver, details)
        problems = verify_allocation(inputs, alloc)
        if problems:
            raise OptimizerError(f"allocation failed verification: {problems[0]}", field=f"strategies.{strategy}",
                                 value=alloc.T_s)
        out[strategy] = alloc
    if optimised.log:
        for alloc in out.values():
            alloc.details["solver_log"] = optimised.log[-20:]
    if config.max_delay_s is not None:
        best = min(out.values(), key=lambda a: a.T_s)
        if best.T_s > config.max_delay_s:
            raise OptimizerError(
                f"no allocation can serve this scenario: the fastest strategy ({best.strategy}) needs "
                f"{best.T_s:.6g} s", field="optimizer.max_delay_s", value=config.max_delay_s)
    return out


def epoch_allocation(inputs: DelayInputs, rounds: int, bandwidth: str = "optimised",
                     method: str = "structured") -> Allocation:
    """SFL run as epochs: V = 1 (one local epoch of `iteration_weights` batches) and I0 = `rounds`.

    `bandwidth` 'optimised' solves problem (17) for that per-round workload (the FedsLLM allocation
    without eta); 'equal' gives every user B_s/K and B_c/K. On the NR link: in whole PRBs
    (optimizer.link_plan).
    """
    if not on_shannon(inputs):
        return on_link(inputs, lambda fitted: {"epoch": epoch_allocation(fitted, rounds, bandwidth, method)})["epoch"]
    check_inputs(inputs)
    k = inputs.users
    if bandwidth == "equal":
        b_s = np.full(k, inputs.uplink_main_bandwidth_hz / k)
        b_c = np.full(k, inputs.uplink_fed_bandwidth_hz / k)
        solver = "closed-form"
    else:
        _, b_s, b_c, solver = OptimisedBandwidth(inputs, method).solve(1.0)
    alloc = allocation_with_counts(inputs, 1.0, float(rounds), b_s, b_c, f"epoch-{bandwidth}", solver)
    problems = verify_allocation(inputs, alloc)
    if problems:
        raise OptimizerError(f"allocation failed verification: {problems[0]}", field="strategies.epoch",
                             value=alloc.T_s)
    return alloc

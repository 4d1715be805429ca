"""Energy of allocations, the least energy a user can need, and the energy-aware `proposed` strategy.

`optimise_with_energy` returns the four FedsLLM strategies like `strategies.optimise`: EB, FE and BA
keep p = p_max and f = f_max (their energy is what it is), `proposed` minimises the training delay
subject to each user's budget E_max (J, the whole training) — or, with `weight` w, minimises
w·(total energy of all users) + (1 - w)·T — over bandwidth, transmit power, CPU clock and eta:
up to `BARRIER_MAX_USERS` users by the barrier interior point (`energy_solver`), beyond by the
structured Newton solver (`energy_kkt`), any problem one leaves unconverged retried by the other.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar

from splitsim.scenarios import Allocation, DelayInputs, EnergyInputs, OptimizerConfig

from ..allocation import allocation_with_counts, verify_allocation
from ..delay_model import counts_for, global_rounds, local_iterations
from .budget import (check_budget, energy_floor_parts_j, feasible_eta_interval, minimum_energy_j,  # noqa: F401
                     round_problem, upload_floors_j)
from .model import allocation_energy_j, transmit_power_fraction  # noqa: F401  (allocation_energy_j: re-exported)
from .structured import solve_energy_kkt
from .interior_point import solve_energy_rounds
from .problem import EnergyRoundProblem, EnergyRoundSolution
from ..errors import OptimizerError
from ..eta_search import ETA_MAX, ETA_MIN, paper_eta_grid
from ..link_plan import on_shannon
from ..strategies import optimise
from .on_link import energy_aware_on_link

ENERGY_ETA_STEP = 0.05  # the coarse eta grid of the energy-aware search, refined by Brent
BARRIER_MAX_USERS = 200  # the interior point's steps grow faster than K (energy_solver docstring)
MAX_ENERGY_USERS = 5000  # structured solver, O(K) a step: 0.2-4 s a problem at K = 1,000, ~1 s at 5,000 (bench_energy)


def check_energy_size(users: int) -> None:
    """Refuse, before any work, a cell larger than the energy-aware solver is validated for."""
    if users > MAX_ENERGY_USERS:
        raise OptimizerError(f"the energy-aware allocation (energy budget or weight) is limited to "
                             f"{MAX_ENERGY_USERS} users (minutes of solving there; remove "
                             "optimizer.energy_budget_j / energy_weight, or use fewer users)",
                             field="cell.users", value=users)


class _EtaObjective:
    """T(eta) (or the weighted objective) of the energy-aware problem, cached per eta."""

    def __init__(self, inputs: DelayInputs, energy: EnergyInputs, budget_j: float, weight: float):
        self.inputs, self.energy, self.budget_j, self.weight = inputs, energy, budget_j, weight
        self.cache: dict[float, tuple[float, object, int]] = {}
        self.newton_steps = 0
        self.solvers: set[str] = set()

    def many(self, etas: np.ndarray) -> np.ndarray:
        etas = np.asarray(etas, dtype=float)
        V = np.atleast_1d(local_iterations(etas, self.inputs.v, self.inputs.counts))
        I0 = np.atleast_1d(global_rounds(etas, self.inputs.a, self.inputs.counts))
        sol = self._solve(round_problem(self.inputs, self.energy, V, self.budget_j / I0, self.weight))
        lost = sol.feasible & ~sol.converged
        if lost.any():  # a feasible point not proven optimal must not pick eta or be returned
            raise OptimizerError(
                f"the energy-aware solver did not converge at eta = {etas[np.argmax(lost)]:.4g} "
                f"({sol.newton_steps} Newton steps, duality gap {sol.gap[np.argmax(lost)]:.2g} of the delay); "
                "please report this scenario", field="cell.users", value=self.inputs.users)
        values = I0 * sol.objective
        for i, eta in enumerate(etas):
            self.cache[float(eta)] = (float(values[i]), sol, i)
        return values

    def _solve(self, prob: EnergyRoundProblem) -> EnergyRoundSolution:
        """The batch by the solver suited to the cell's size, each problem it leaves unconverged
        retried by the other: the interior point misses the odd problem whose barrier path stalls,
        the structured solver the odd one whose optimum puts a user where its equations degenerate
        (power cap, slowest clock and budget all binding near it); each solves what the other misses."""
        solvers = [(solve_energy_rounds, "energy-interior-point"), (solve_energy_kkt, "energy-kkt-newton")]
        if self.inputs.users > BARRIER_MAX_USERS:
            solvers.reverse()
        (first, first_name), (second, second_name) = solvers
        sol = first(prob)
        self.solvers.add(first_name)
        self.newton_steps += sol.newton_steps
        lost = np.flatnonzero(sol.feasible & ~sol.converged)
        if lost.size:
            retry = second(prob.rows(lost))
            self.solvers.add(second_name)
            self.newton_steps += retry.newton_steps
            sol.set_rows(lost, retry)
        return sol

    def __call__(self, eta: float) -> float:
        if float(eta) not in self.cache:
            self.many(np.array([eta]))
        return self.cache[float(eta)][0]


def energy_aware_allocation(inputs: DelayInputs, energy: EnergyInputs, budget_j: float = math.inf,
                            weight: float = 0.0, eta_step: float = ENERGY_ETA_STEP) -> Allocation:
    """The proposed strategy with power, clock, bandwidth and eta optimised under the budget.

    eta: first the interval where the budget can be met at all (`feasible_eta_interval`), then the
    coarse grid (`eta_step`) inside it with evenly spaced points across it, solved as one batch,
    and bounded Brent between the best point's neighbours; with integer counts every V."""
    objective = _EtaObjective(inputs, energy, budget_j, weight)
    lo, hi = feasible_eta_interval(inputs, energy, budget_j)
    if inputs.counts == "integer":  # every V, whose least eta 2^(-V/v) gives the fewest rounds
        v_max = math.ceil(inputs.v * math.log2(1.0 / ETA_MIN))
        grid = np.array([2.0 ** (-V / inputs.v) for V in range(1, v_max + 1)])
        grid = grid[(grid >= ETA_MIN) & (grid <= ETA_MAX)]
    else:  # the coarse grid inside the feasible interval, and evenly spaced points across it
        inner = np.linspace(lo, hi, 13)[1:-1]
        paper = paper_eta_grid(eta_step)
        grid = np.unique(np.concatenate([paper[(paper > lo) & (paper < hi)], inner]))
    values = objective.many(grid)
    if not np.any(np.isfinite(values)):
        raise OptimizerError(f"no eta admits an allocation within the energy budget (feasible etas: {lo:.6g} ... "
                             f"{hi:.6g})", field="optimizer.energy_budget_j", value=budget_j)
    best = int(np.argmin(values))
    eta, value = float(grid[best]), float(values[best])
    if inputs.counts == "continuous":
        low = float(grid[best - 1]) if best > 0 else lo
        high = float(grid[best + 1]) if best < len(grid) - 1 else hi
        res = minimize_scalar(objective, bounds=(low, high), method="bounded", options={"xatol": 1e-7 * high})
        if res.fun < value:
            eta, value = float(res.x), float(res.fun)
    _, sol, i = objective.cache[eta]
    V, I0 = counts_for(inputs, eta)
    b_s, b_c, t_s, t_c, tau = sol.b_s_hz[i], sol.b_c_hz[i], sol.t_s_s[i], sol.t_c_s[i], sol.tau_s[i]
    p_s = np.minimum(transmit_power_fraction(inputs.activation_bits, t_s, b_s, inputs.snr_coeff_main_hz), 1.0)
    p_c = np.minimum(transmit_power_fraction(inputs.adapter_bits, t_c, b_c, inputs.snr_coeff_fed_hz), 1.0)
    tau0 = inputs.client_seconds_per_iteration
    cpu = np.where(tau0 > 0, np.minimum(tau0 / tau, 1.0), 1.0)
    details = {"eta_grid": float(grid[best]), "T_grid_s": float(values[best]), "eta_exact": eta,
               "objective": value, "energy_budget_j": budget_j, "energy_weight": weight,
               "eta_evaluations": len(objective.cache), "newton_steps": objective.newton_steps,
               "duality_gap_rel": float(sol.gap[i]), "converged": bool(sol.converged[i])}
    solver = "+".join(sorted(objective.solvers))
    alloc = allocation_with_counts(inputs, V, I0, b_s, b_c, "proposed", solver, details, eta, p_s, p_c, cpu)
    problems = verify_allocation(inputs, alloc)
    spent = allocation_energy_j(inputs, energy, alloc)["total_j"]
    if math.isfinite(budget_j) and np.any(spent > budget_j * (1 + 1e-6)):
        problems.append(f"user {int(np.argmax(spent))} spends {spent.max():.9g} J, over the budget {budget_j:.9g} J")
    if problems:
        raise OptimizerError(f"energy-aware allocation failed verification: {problems[0]}",
                             field="strategies.proposed", value=alloc.T_s)
    return alloc


def weighted_on_fit(inputs: DelayInputs, energy: EnergyInputs, budget_j: float, weight: float) -> Allocation:
    """The weighted objective's plan on a link other than Shannon's (the NR link): made on the link's
    attenuated-Shannon fit (DelayInputs.shannon_surrogate) and put in whole PRBs on the link
    (optimizer.prb, min_max), like the delay-optimal plan (optimizer.link_plan); a budget beside the
    weight is kept on the link by tightening the fit's (secant steps on the worst user)."""
    from ..link_plan import check_coverage, subcarrier_spacing_khz, surrogate
    from ..prb import allocation_in_prbs
    from .on_link import MAX_TIGHTENINGS, TIGHTENING_AIM

    check_coverage(inputs)

    fitted, fit = surrogate(inputs)
    scs = subcarrier_spacing_khz(inputs)

    def plan_at(planned: float) -> tuple[Allocation, float]:
        """The plan made on the fit with `planned` J, in whole PRBs, and its worst user's J on the link."""
        alloc = allocation_in_prbs(inputs, energy_aware_allocation(fitted, energy, planned, weight), scs, "min_max")
        return alloc, float(allocation_energy_j(inputs, energy, alloc)["total_j"].max())

    alloc, worst = plan_at(budget_j)
    history = [(budget_j, worst)]
    if math.isfinite(budget_j):
        aim = budget_j * (1.0 - TIGHTENING_AIM)
        while worst > budget_j * (1 + 1e-9):
            if len(history) > MAX_TIGHTENINGS:
                raise OptimizerError(f"on the NR link no plan kept every user within the budget after {MAX_TIGHTENINGS} "
                                     f"tightenings (worst user {min(h[1] for h in history):.6g} J at best); raise the "
                                     "budget", field="optimizer.energy_budget_j", value=budget_j)
            (x0, f0), (x1, f1) = history[-2] if len(history) > 1 else (0.0, 0.0), history[-1]
            step = x1 * aim / f1 if len(history) == 1 or f1 == f0 else x1 + (aim - f1) * (x1 - x0) / (f1 - f0)
            planned = min(max(step, 0.5 * x1), x1 * (1.0 - 1e-6))  # always tighter, never by more than half
            try:
                alloc, worst = plan_at(planned)
            except OptimizerError as err:
                raise OptimizerError(
                    f"on the NR link no plan keeps every user within the budget: tightened on the link's fit to "
                    f"{planned:.6g} J, the fit admits none ({err})", field="optimizer.energy_budget_j",
                    value=budget_j) from None
            history.append((planned, worst))
    alloc.details["link"] = fit
    alloc.details["energy_on_link"] = {"method": "weighted objective planned on the link's fit",
                                       "budget_on_fit_j": history[-1][0], "plans": len(history), "worst_user_j": worst}
    return alloc


def optimise_with_energy(inputs: DelayInputs, energy: EnergyInputs, config: OptimizerConfig,
                         budget_j: float | None = None, weight: float | None = None) -> dict[str, Allocation]:
    """`strategies.optimise`, with `proposed` replaced by the energy-aware allocation.

    With no budget and no weight this is `optimise` itself. With a budget that the delay-optimal
    (17) allocation already meets, that allocation is the optimum (a slack budget has a zero
    multiplier) and is returned unchanged, marked `energy_budget_binding: False`."""
    out = optimise(inputs, config)
    budget = math.inf if budget_j is None else float(budget_j)
    w = 0.0 if weight is None else float(weight)
    based = [s for s in ("proposed", "proposed_replan", "robust") if s in out]  # the energy-aware plan and its kin
    if not based or (budget == math.inf and w == 0.0):
        return out
    check_energy_size(inputs.users)
    if math.isfinite(budget):
        check_budget(inputs, energy, budget)
    if w == 0.0:
        spent = allocation_energy_j(inputs, energy, out[based[0]])["total_j"]
        if np.all(spent <= budget):
            for name in based:
                out[name].details.update({"energy_budget_j": budget, "energy_budget_binding": False})
            return out
    if on_shannon(inputs):
        alloc = energy_aware_allocation(inputs, energy, budget, w)
    elif w > 0.0:
        alloc = weighted_on_fit(inputs, energy, budget, w)
    else:
        alloc = energy_aware_on_link(inputs, energy, budget)
    alloc.details["energy_budget_binding"] = bool(math.isfinite(budget))
    for name in based:  # proposed_replan and robust re-plan the bandwidth at its powers, clocks and eta
        out[name] = alloc if name == "proposed" else Allocation(**{**alloc.__dict__, "strategy": name,
                                                                  "details": dict(alloc.details)})
    return out

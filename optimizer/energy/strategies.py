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
from .model import transmit_power_fraction, user_energy_j
from .structured import solve_energy_kkt
from .interior_point import solve_energy_rounds
from .problem import EnergyRoundProblem, EnergyRoundSolution
from ..errors import OptimizerError
from ..eta_search import ETA_MAX, ETA_MIN, paper_eta_grid
from ..link_plan import on_shannon
from ..strategies import optimise
from .on_link import energy_aware_on_link, upload_floors_j

ENERGY_ETA_STEP = 0.05  # the coarse eta grid of the energy-aware search, refined by Brent
BARRIER_MAX_USERS = 200  # the interior point's steps grow faster than K (energy_solver docstring)
MAX_ENERGY_USERS = 5000  # structured solver, O(K) a step: 0.2-4 s a problem at K = 1,000, ~1 s at 5,000 (bench_energy)


def allocation_energy_j(inputs: DelayInputs, energy: EnergyInputs, alloc: Allocation) -> dict[str, np.ndarray]:
    """Each user's energy over the whole training under `alloc`, by category (K,) (energy_model)."""
    p_s, p_c, f = alloc.radiated_powers_and_clock(inputs)
    round_s = alloc.T_s / alloc.I0
    return user_energy_j(energy, rounds=alloc.I0, iterations=alloc.V * inputs.weights,
                         client_full_s=inputs.client_seconds_per_iteration, cpu_fraction=f, t_s_s=alloc.t_s_s,
                         t_c_s=alloc.t_c_s, power_main_fraction=p_s, power_fed_fraction=p_c, round_s=round_s)


def round_problem(inputs: DelayInputs, energy: EnergyInputs, V: np.ndarray, budget_round_j: np.ndarray,
                  weight: float = 0.0) -> EnergyRoundProblem:
    """The per-round problems at local-iteration counts V (n,) with per-round budgets (n,)."""
    k = inputs.users
    tau0 = inputs.client_seconds_per_iteration
    with np.errstate(divide="ignore"):
        tau_max = np.where(energy.min_cpu_fraction > 0, tau0 / energy.min_cpu_fraction, np.inf)
    return EnergyRoundProblem(
        W=np.asarray(V, dtype=float)[:, None] * inputs.weights[None, :], sigma_s=inputs.server_seconds_per_iteration,
        tau0_s=tau0, tau_max_s=np.broadcast_to(tau_max, (k,)).astype(float), power_full_w=energy.client_power_w,
        c_s_hz=inputs.snr_coeff_main_hz, c_c_hz=inputs.snr_coeff_fed_hz, s_bits=inputs.activation_bits,
        s_c_bits=inputs.adapter_bits, B_s_hz=inputs.uplink_main_bandwidth_hz, B_c_hz=inputs.uplink_fed_bandwidth_hz,
        max_power_w=energy.max_tx_power_w, idle_power_w=energy.idle_power_w,
        budget_j=np.asarray(budget_round_j, dtype=float), weight=weight)


def energy_floor_parts_j(inputs: DelayInputs, energy: EnergyInputs) -> tuple[np.ndarray, np.ndarray]:
    """(J per round, J per local iteration) (K,): a user's least energy per round is V·(the second) +
    (the first), at the slowest clock and the cheapest uploads on the inputs' link."""
    uploads = None if on_shannon(inputs) else upload_floors_j(inputs, energy)
    parts = round_problem(inputs, energy, np.array([0.0, 1.0]), np.full(2, np.inf)).round_energy_floor_j(uploads)
    return parts[0], parts[1] - parts[0]


def minimum_energy_j(inputs: DelayInputs, energy: EnergyInputs) -> tuple[np.ndarray, np.ndarray]:
    """(E_min (K,), its eta (K,)): the least energy each user needs over the whole training.

    It is the infimum over eta of I0·(the round's energy floor: slowest clock, wideband uploads),
    approached only as the delay grows without bound, so a budget must exceed it. The floor is
    V·alpha_k + beta_k (per-iteration and per-round parts), so all users are searched at once:
    the paper's grid, then golden-section between each user's grid neighbours."""
    per_round, per_iteration = energy_floor_parts_j(inputs, energy)

    def total(eta: np.ndarray) -> np.ndarray:  # eta (n, K) or (n, 1) -> (n, K)
        V, I0 = local_iterations(eta, inputs.v, inputs.counts), global_rounds(eta, inputs.a, inputs.counts)
        return I0 * (V * per_iteration + per_round)

    grid = paper_eta_grid(0.01)
    values = total(grid[:, None])
    best = np.argmin(values, axis=0)
    e_min, eta_min = values[best, np.arange(inputs.users)], grid[best]
    if inputs.counts == "continuous":
        lo = np.where(best > 0, grid[np.maximum(best - 1, 0)], ETA_MIN)
        hi = np.where(best < len(grid) - 1, grid[np.minimum(best + 1, len(grid) - 1)], ETA_MAX)
        ratio = (math.sqrt(5.0) - 1.0) / 2.0
        for _ in range(80):  # the bracket shrinks by 0.618 a step: 80 steps reach float precision
            a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            fa, fb = total(a[None, :])[0], total(b[None, :])[0]
            hi, lo = np.where(fa < fb, b, hi), np.where(fa < fb, lo, a)
        mid = 0.5 * (lo + hi)
        refined = total(mid[None, :])[0]
        better = refined < e_min
        e_min, eta_min = np.where(better, refined, e_min), np.where(better, mid, eta_min)
    return e_min, eta_min


def feasible_eta_interval(inputs: DelayInputs, energy: EnergyInputs, budget_j: float) -> tuple[float, float]:
    """(lo, hi): the etas at which every user's least energy over the training is below `budget_j`
    (continuous counts). Outside it no allocation meets the budget; inside, the round problem is
    feasible (at the slowest clock and a low enough power, whatever the delay).

    It is one interval: user k's least energy is I0(eta)·(V(eta)·alpha_k + beta_k) with I0 = a/(1 - eta)
    and V = v·log2(1/eta), so E_k(eta) <= B  <=>  psi_k(eta) = a·(v·alpha_k·log2(1/eta) + beta_k) - B·(1 - eta)
    <= 0, and psi_k is convex (a multiple of -log plus a line): its sublevel set is an interval, and so
    is the intersection over users. Each end is found by bisection on psi_k, all users at once.
    Raises OptimizerError when the interval is empty (check_budget names the user)."""
    if not math.isfinite(budget_j):
        return ETA_MIN, ETA_MAX
    beta, alpha = energy_floor_parts_j(inputs, energy)  # (K,) J per round, J per local iteration
    a, v = inputs.a, inputs.v

    def psi(eta: np.ndarray) -> np.ndarray:
        return a * (v * alpha * np.log2(1.0 / eta) + beta) - budget_j * (1.0 - eta)

    # psi_k's minimum: d/d eta = -a·v·alpha_k/(eta·ln 2) + B = 0
    centre = np.clip(a * v * alpha / (budget_j * math.log(2.0)), ETA_MIN, ETA_MAX)
    if np.any(psi(centre) >= 0):
        check_budget(inputs, energy, budget_j)  # names the user and the energy it needs
        raise OptimizerError("no eta admits an allocation within the energy budget", field="optimizer.energy_budget_j",
                             value=budget_j)

    def edge(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
        """Bisection between a point with psi < 0 and one with psi >= 0 (or the search bound)."""
        for _ in range(100):
            mid = 0.5 * (inside + outside)
            ok = psi(mid) < 0
            inside, outside = np.where(ok, mid, inside), np.where(ok, outside, mid)
        return inside  # on the feasible side

    lo_bound, hi_bound = np.full_like(centre, ETA_MIN), np.full_like(centre, ETA_MAX)
    lo = np.where(psi(lo_bound) < 0, lo_bound, edge(centre, lo_bound))
    hi = np.where(psi(hi_bound) < 0, hi_bound, edge(centre, hi_bound))
    lo_all, hi_all = float(lo.max()), float(hi.min())
    if not lo_all < hi_all:
        worst_lo, worst_hi = int(np.argmax(lo)), int(np.argmin(hi))
        raise OptimizerError(f"no eta meets every user's budget at once: user {worst_lo} needs eta >= {lo_all:.6g}, "
                             f"user {worst_hi} eta <= {hi_all:.6g}", field="optimizer.energy_budget_j", value=budget_j)
    return lo_all, hi_all


def check_budget(inputs: DelayInputs, energy: EnergyInputs, budget_j: float,
                 field: str = "optimizer.energy_budget_j") -> None:
    """Raise `OptimizerError` (on `field`) naming the user whose least possible energy exceeds the budget."""
    if not (math.isfinite(budget_j) and budget_j > 0):
        raise OptimizerError("the energy budget must be finite and > 0 (J per user over the training)",
                             field=field, value=budget_j)
    e_min, eta_min = minimum_energy_j(inputs, energy)
    worst = int(np.argmax(e_min))
    if e_min[worst] >= budget_j:
        short = int(np.sum(e_min >= budget_j))
        raise OptimizerError(
            f"no allocation can meet it: user {worst} needs more than {e_min[worst]:.6g} J at any delay (at eta = "
            f"{eta_min[worst]:.3g}, slowest clock, unlimited bandwidth and time); {short} of {inputs.users} users "
            "cannot meet it", field=field, value=budget_j)


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
    alloc = energy_aware_allocation(inputs, energy, budget, w) if on_shannon(inputs) else \
        energy_aware_on_link(inputs, energy, budget, w)
    alloc.details["energy_budget_binding"] = bool(math.isfinite(budget))
    for name in based:  # proposed_replan and robust re-plan the bandwidth at its powers, clocks and eta
        out[name] = alloc if name == "proposed" else Allocation(**{**alloc.__dict__, "strategy": name,
                                                                  "details": dict(alloc.details)})
    return out

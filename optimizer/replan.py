"""Problem (17) for a channel that is not one number: re-planned and robust bandwidths.

`plan_bandwidth` solves the per-round problem (17) at a fixed V for users whose rate is not the
Shannon rate of one c = g·p/N0 but a planning rate (optimizer.ergodic): the ergodic rate over
the fading around a known large-scale gain, and, for a plan made once for a moving cell, the
harmonic mean of those over the positions each user will be at. The structured solver is
written for Shannon rates, so each user's planning rate is turned into the c that gives it at
the current bandwidth (effective_snr_coeff_hz) and the problem is solved again on those, until
the bandwidths stop moving (a fixed point: at it every user's predicted time is its true
planning-rate time, and the bandwidths are optimal for the Shannon problem with those c; with no
fading and one sample it is problem (17) itself, solved once).

`make_planner` is the base station's re-planner of netsim.replanning: known gain factors in,
bandwidths (whole PRBs when the scenario has them) and predicted per-user round seconds out, at
the first plan's V, powers and clocks. `robust_allocation` is the plan made once for the channel
the users will have: the expected seconds per bit over samples of their large-scale gains along
their walks (netsim.dynamics.large_scale_samples) and the fading (an expected-value robust
counterpart; cf. Ben-Tal, El Ghaoui and Nemirovski, *Robust Optimization*, 2009, ch. 1, on
replacing uncertain data by what the objective sees of it).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from splitsim.scenarios import Allocation, DelayInputs

from .allocation import allocation_with_counts, verify_allocation
from .delay_model import counts_for
from .ergodic import effective_snr_coeff_hz, ergodic_rate_bps, planning_rate_bps
from .errors import OptimizerError
from .link_plan import on_shannon
from .eta_search import choose_eta, paper_eta_grid
from .strategies import OptimisedBandwidth
from .structured import PerRoundProblem, solve_per_round

__all__ = ["custom_bandwidth", "plan_bandwidth", "predicted_round_s", "make_planner", "rechoose_eta", "replan_initial_allocation",
           "robust_allocation"]

_MAX_FIXED_POINT = 100
_FIXED_POINT_TOL = 1e-12
_MAX_ETA_PASSES = 20


def _compute_per_iteration_s(inputs: DelayInputs, cpu_fraction: np.ndarray | None) -> np.ndarray:
    if cpu_fraction is None:
        return inputs.compute_seconds_per_iteration
    return inputs.client_seconds_per_iteration / cpu_fraction + inputs.server_seconds_per_iteration


def _weights(inputs: DelayInputs) -> np.ndarray:
    """Iteration weights, a user without batches given a vanishing one (as per_round_problem)."""
    w = inputs.weights
    if np.any(w <= 0):
        w = np.where(w > 0, w, 1e-6 * w.max())
    return w


def predicted_round_s(inputs: DelayInputs, V: float, b_s_hz: np.ndarray, b_c_hz: np.ndarray,
                      c_main_hz: np.ndarray, c_fed_hz: np.ndarray, fading: str, k_factor_db: float,
                      cpu_fraction: np.ndarray | None = None) -> np.ndarray:
    """Each user's round seconds (K,) at its planning rates: V·w_k·(compute + s / r_s) + s_c / r_c.
    `c_*_hz` (K,) or samples (K, S), at the allocation's powers."""
    r_s = planning_rate_bps(b_s_hz, c_main_hz, fading, k_factor_db)
    r_c = planning_rate_bps(b_c_hz, c_fed_hz, fading, k_factor_db)
    compute = _compute_per_iteration_s(inputs, cpu_fraction)
    return V * inputs.weights * (compute + inputs.activation_bits / r_s) + inputs.adapter_bits / r_c


def plan_bandwidth(inputs: DelayInputs, V: float, c_main_hz: np.ndarray, c_fed_hz: np.ndarray, fading: str,
                   k_factor_db: float = 6.0, cpu_fraction: np.ndarray | None = None, warm: dict | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Problem (17) at V on planning rates: (b_s_hz, b_c_hz, effective c_s, effective c_c), each (K,).

    `c_main_hz`, `c_fed_hz`: c = g·p/N0 at the allocation's powers, (K,) or samples (K, S). `warm`:
    a dict that carries the last answer (bandwidths and Newton state) from one call to the next of
    the same users and V, so that a re-plan starts where the last one ended (fewer fixed-point
    and Newton steps; the same fixed point to its tolerance)."""
    single = np.ndim(c_main_hz) == 1 and np.ndim(c_fed_hz) == 1
    k = inputs.users
    key = (k, float(V))
    last = warm.get("last") if warm is not None and warm.get("key") == key else None
    if last is not None:
        b_s, b_c, start = last
    else:
        b_s = np.full(k, inputs.uplink_main_bandwidth_hz / k)
        b_c = np.full(k, inputs.uplink_fed_bandwidth_hz / k)
        start = None
    if fading == "none" and single:
        eff_s, eff_c = np.asarray(c_main_hz, dtype=float), np.asarray(c_fed_hz, dtype=float)
    else:
        eff_s = effective_snr_coeff_hz(b_s, planning_rate_bps(b_s, c_main_hz, fading, k_factor_db))
        eff_c = effective_snr_coeff_hz(b_c, planning_rate_bps(b_c, c_fed_hz, fading, k_factor_db))
    compute, w = _compute_per_iteration_s(inputs, cpu_fraction), _weights(inputs)
    for _ in range(_MAX_FIXED_POINT):
        prob = PerRoundProblem(V=float(V), compute_s=compute, c_s_hz=eff_s, c_c_hz=eff_c, s_bits=inputs.activation_bits,
                               s_c_bits=inputs.adapter_bits, B_s_hz=inputs.uplink_main_bandwidth_hz,
                               B_c_hz=inputs.uplink_fed_bandwidth_hz, weights=w)
        sol = solve_per_round(prob, start=start, tol=1e-10)
        if not sol.converged and start is not None:
            sol = solve_per_round(prob, tol=1e-10)
        if not sol.converged:
            raise OptimizerError(f"the structured solver did not converge (residual {sol.residual:.2e})",
                                 field="optimizer.strategies", value="replan")
        b_s, b_c, start = sol.b_s_hz, sol.b_c_hz, sol.state
        if fading == "none" and single:
            break
        new_s = effective_snr_coeff_hz(b_s, planning_rate_bps(b_s, c_main_hz, fading, k_factor_db))
        new_c = effective_snr_coeff_hz(b_c, planning_rate_bps(b_c, c_fed_hz, fading, k_factor_db))
        moved = max(np.max(np.abs(new_s / eff_s - 1.0)), np.max(np.abs(new_c / eff_c - 1.0)))
        eff_s, eff_c = new_s, new_c
        if moved <= _FIXED_POINT_TOL:
            break
    if warm is not None:
        warm.update(key=key, last=(b_s, b_c, start))
    return b_s, b_c, eff_s, eff_c


def _in_prbs(inputs: DelayInputs, alloc: Allocation, eff_s: np.ndarray, eff_c: np.ndarray, scs_khz: int,
             rule: str) -> tuple[np.ndarray, np.ndarray, dict]:
    """Whole PRBs for continuous bandwidths planned on effective c (optimizer.prb), and their details."""
    from .prb import allocation_in_prbs

    p_s, p_c, _ = alloc.powers_and_clock()
    eff_inputs = dataclasses.replace(inputs, snr_coeff_main_hz=eff_s / p_s, snr_coeff_fed_hz=eff_c / p_c)
    rounded = allocation_in_prbs(eff_inputs, alloc, scs_khz, rule)
    return rounded.b_s_hz, rounded.b_c_hz, rounded.details["prb"]


def _allocation(inputs: DelayInputs, base: Allocation, b_s: np.ndarray, b_c: np.ndarray, eff_s: np.ndarray,
                eff_c: np.ndarray, strategy: str, details: dict) -> Allocation:
    """An allocation at `base`'s eta, counts, powers and clocks, with times from the effective c."""
    p_s, p_c, _ = base.powers_and_clock()
    eff_inputs = dataclasses.replace(inputs, snr_coeff_main_hz=eff_s / p_s, snr_coeff_fed_hz=eff_c / p_c)
    return allocation_with_counts(eff_inputs, base.V, base.I0, b_s, b_c, strategy, base.solver, details, base.eta,
                                  base.power_main_fraction, base.power_fed_fraction, base.cpu_fraction)


class ForecastRate:
    """A link model's planning rate for users whose channel is a forecast: rate_bps(b, c) is the
    harmonic mean over the users' sample factors (K, S) of the link's ergodic rate over `fading` at
    c·factor (optimizer.ergodic.planning_rate_bps). c (K,) or (K, 1) and b (K,) or (K, N) are the
    users' in order: it prices every user at once, as optimizer.prb and the allocation do."""

    def __init__(self, link, factors: np.ndarray, fading: str, k_factor_db: float):
        self.link, self.fading, self.k_factor_db = link, fading, k_factor_db
        self.factors = np.asarray(factors, dtype=float)
        if self.factors.ndim == 1:
            self.factors = self.factors[:, None]
        self.name, self.prb_hz = link.name, link.prb_hz

    def rate_bps(self, bandwidth_hz, snr_coeff_hz) -> np.ndarray:
        b, c = np.broadcast_arrays(np.asarray(bandwidth_hz, dtype=float), np.asarray(snr_coeff_hz, dtype=float))
        if b.ndim == 0 or b.shape[0] != self.factors.shape[0]:
            raise ValueError(f"a forecast rate prices all {self.factors.shape[0]} users at once, got {b.shape}")
        f = self.factors if b.ndim == 1 else self.factors[:, None, :]
        rate = ergodic_rate_bps(b[..., None], c[..., None] * f, self.fading, self.k_factor_db, self.link)
        with np.errstate(divide="ignore"):
            return 1.0 / np.mean(1.0 / rate, axis=-1)


def _plan_on_link(inputs: DelayInputs, base: Allocation, c_main: np.ndarray, c_fed: np.ndarray, fading: str,
                  k_factor_db: float, scs_khz: int, warm: dict | None = None,
                  bandwidth=None) -> tuple[Allocation, np.ndarray]:
    """_plan on a link model other than Shannon's (the NR link): problem (17)'s bandwidths on the
    link's attenuated-Shannon fit (c/Gamma, bits/alpha: optimizer.link_plan), then the whole PRBs
    that minimise the slowest user's round on the link's own planning rates (ForecastRate: its
    ergodic rate over the fading, harmonic mean over the samples) — exactly (optimizer.prb, min_max).
    With `bandwidth` (custom_bandwidth: a user's strategy) its bandwidths on the fit, as at planning
    time (optimizer.link_plan.on_link), rounded to whole PRBs (largest remainder): its shares kept.
    Returns the allocation at `base`'s counts on those rates and each user's round seconds."""
    from .link_plan import surrogate
    from .prb import allocation_in_prbs

    p_s, p_c, _ = base.powers_and_clock()
    fitted, fit = surrogate(inputs)
    gamma = fit["shannon_fit_gamma"]
    choose = plan_bandwidth if bandwidth is None else bandwidth
    b_s, b_c, _, _ = choose(fitted, base.V, np.asarray(c_main) / gamma, np.asarray(c_fed) / gamma, fading,
                            k_factor_db, base.cpu_fraction, warm)
    base_main, base_fed = inputs.snr_coeff_main_hz * p_s, inputs.snr_coeff_fed_hz * p_c
    factors = np.asarray(c_main, dtype=float) / (base_main if np.ndim(c_main) == 1 else base_main[:, None])
    fed_factors = np.asarray(c_fed, dtype=float) / (base_fed if np.ndim(c_fed) == 1 else base_fed[:, None])
    if not np.allclose(factors, fed_factors):
        raise OptimizerError("the NR link plans both uplinks on one forecast of each user's gain",
                             field="optimizer.strategies", value="proposed_replan")
    forecast = ForecastRate(inputs.uplink_rate, factors, fading, k_factor_db)
    planning = dataclasses.replace(inputs, uplink_rate=forecast)
    continuous = allocation_with_counts(planning, base.V, base.I0, b_s, b_c, base.strategy, base.solver,
                                        {"link": fit}, base.eta, base.power_main_fraction, base.power_fed_fraction,
                                        base.cpu_fraction)
    rounded = allocation_in_prbs(planning, continuous, scs_khz, "min_max" if bandwidth is None else "largest_remainder")
    return rounded, rounded.T_k_s / base.I0


def _plan(inputs: DelayInputs, base: Allocation, c_main: np.ndarray, c_fed: np.ndarray, fading: str,
          k_factor_db: float, scs_khz: int | None, rule: str, prb: dict | None = None, warm: dict | None = None,
          bandwidth=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(b_s, b_c, predicted round seconds per user) on samples or values of c at the allocation's powers;
    `prb` (a dict) receives the whole-PRB details when the scenario has PRBs; `warm`: plan_bandwidth's;
    `bandwidth`: what chooses the bandwidths (plan_bandwidth, problem (17)'s; or custom_bandwidth).
    On the NR link: _plan_on_link."""
    if not on_shannon(inputs):
        alloc, round_s = _plan_on_link(inputs, base, c_main, c_fed, fading, k_factor_db, scs_khz, warm, bandwidth)
        if prb is not None:
            prb.update(alloc.details["prb"])
        return alloc.b_s_hz, alloc.b_c_hz, round_s
    bandwidth = plan_bandwidth if bandwidth is None else bandwidth
    b_s, b_c, eff_s, eff_c = bandwidth(inputs, base.V, c_main, c_fed, fading, k_factor_db, base.cpu_fraction, warm)
    if scs_khz is not None:
        continuous = _allocation(inputs, base, b_s, b_c, eff_s, eff_c, base.strategy, {})
        b_s, b_c, details = _in_prbs(inputs, continuous, eff_s, eff_c, scs_khz, rule)
        if prb is not None:
            prb.update(details)
    round_s = predicted_round_s(inputs, base.V, b_s, b_c, c_main, c_fed, fading, k_factor_db, base.cpu_fraction)
    return b_s, b_c, round_s


def rechoose_eta(inputs: DelayInputs, base: Allocation, c_main_hz: np.ndarray, c_fed_hz: np.ndarray, fading: str,
                 k_factor_db: float = 6.0, eta_search: str = "exact", eta_grid_step: float = 0.01
                 ) -> tuple[float, float, float]:
    """(eta, V, I0) for the rest of a run on this channel, at `base`'s powers (delay-only).

    What is left of the run is a share of the convergence bound's progress, and a round at eta
    makes 1/I0(eta) of it, so the best eta for the rest minimises I0(eta)·P*(V(eta)), the same
    T(eta) as for a whole run (optimizer.eta_search, exact or on the grid as `eta_search` says).
    On planning rates (fading, samples) T is that of the effective c: the eta search on the
    effective c at the current V alternates with plan_bandwidth's fixed point at the chosen V
    until eta stops moving."""
    if not on_shannon(inputs):  # on the NR link: eta chosen on its attenuated-Shannon fit
        from .link_plan import surrogate

        fitted, fit = surrogate(inputs)
        gamma = fit["shannon_fit_gamma"]
        return rechoose_eta(fitted, base, np.asarray(c_main_hz) / gamma, np.asarray(c_fed_hz) / gamma, fading,
                            k_factor_db, eta_search, eta_grid_step)
    p_s, p_c, _ = base.powers_and_clock()
    grid = paper_eta_grid(eta_grid_step)
    eta, V = base.eta, base.V
    for _ in range(_MAX_ETA_PASSES):
        _, _, eff_s, eff_c = plan_bandwidth(inputs, V, c_main_hz, c_fed_hz, fading, k_factor_db, base.cpu_fraction)
        eff_inputs = dataclasses.replace(inputs, snr_coeff_main_hz=eff_s / p_s, snr_coeff_fed_hz=eff_c / p_c)
        choice = choose_eta(OptimisedBandwidth(eff_inputs), inputs.a, inputs.v, inputs.counts, grid)
        new = choice.eta if eta_search == "exact" else choice.eta_grid
        settled = abs(new - eta) <= 1e-9 * eta
        eta, V = new, counts_for(inputs, new)[0]
        if settled or (fading == "none" and np.ndim(c_main_hz) == 1):
            break
    return eta, V, counts_for(inputs, eta)[1]


def make_planner(inputs: DelayInputs, base: Allocation, fading: str, k_factor_db: float = 6.0,
                 scs_khz: int | None = None, rule: str = "min_max", eta_search: str | None = None,
                 eta_grid_step: float = 0.01, bandwidth=None):
    """The re-planner: known gain factors (K,) relative to the planned channel (or samples (K, S) of
    them: a forecast, planned on their expected seconds per bit), and optionally the
    users to plan for (the round's participants; the others get no bandwidth) -> (b_s_hz, b_c_hz,
    predicted round seconds per user), at `base`'s V, powers and clocks. `fading`: what the planner
    averages over ('none' when it knows the fading itself: full CSI). With `eta_search` ('exact' or
    'grid') it re-chooses eta too (rechoose_eta) and returns (b_s_hz, b_c_hz, round seconds,
    (eta, V, I0)), the round seconds at the new V. `bandwidth` chooses the bandwidths (default:
    problem (17)'s plan_bandwidth; custom_bandwidth asks a user's strategy)."""
    warm: dict = {}  # the last answer, a start for the next re-plan of the same users (one planner per run)

    def solve(inp: DelayInputs, alloc: Allocation, known: np.ndarray):
        p_s, p_c, _ = alloc.powers_and_clock()
        c_main, c_fed = _times(inp.snr_coeff_main_hz * p_s, known), _times(inp.snr_coeff_fed_hz * p_c, known)
        if eta_search is None:
            return _plan(inp, alloc, c_main, c_fed, fading, k_factor_db, scs_khz, rule, warm=warm, bandwidth=bandwidth)
        eta, V, I0 = rechoose_eta(inp, alloc, c_main, c_fed, fading, k_factor_db, eta_search, eta_grid_step)
        at = dataclasses.replace(alloc, eta=eta, V=V, I0=I0)
        return (*_plan(inp, at, c_main, c_fed, fading, k_factor_db, scs_khz, rule, warm=warm), (eta, V, I0))

    def planner(known: np.ndarray, users: np.ndarray | None = None):
        chosen = None if users is None or len(users) == inputs.users else np.asarray(users)
        if not same_users(chosen, warm.get("users")):
            warm.clear()  # another set of users: start cold
        warm["users"] = chosen
        if chosen is None:
            return solve(inputs, base, known)
        b_s, b_c, round_s, *counts = solve(inputs.of_users(chosen), base.of_users(chosen), known[chosen])
        k = inputs.users
        return on_users(k, chosen, b_s, 0.0), on_users(k, chosen, b_c, 0.0), on_users(k, chosen, round_s, np.inf), *counts

    return planner


def _times(c_hz: np.ndarray, known: np.ndarray) -> np.ndarray:
    """c (K,) times gain factors (K,) or samples of them (K, S)."""
    known = np.asarray(known, dtype=float)
    return c_hz * known if known.ndim == 1 else c_hz[:, None] * known


def same_users(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two user selections (None: everyone) are the same."""
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def on_users(k: int, users: np.ndarray, values: np.ndarray, others: float) -> np.ndarray:
    """A (K,) array with `values` at `users` and `others` elsewhere: a plan for the round's
    participants gives the others 0 Hz (and an infinite round; they do not transmit in it)."""
    out = np.full(k, others)
    out[users] = values
    return out


def replan_initial_allocation(inputs: DelayInputs, base: Allocation, fading: str, k_factor_db: float = 6.0,
                              scs_khz: int | None = None, rule: str = "min_max", bandwidth=None
                              ) -> tuple[Allocation, np.ndarray]:
    """proposed_replan's first plan, made before the run on the planned channel the way its
    re-plans are made (`fading`: what the planner averages over), and its predicted round seconds
    per user (K,). With nothing to average ('none') it is `base` (the proposed plan) itself."""
    p_s, p_c, _ = base.powers_and_clock()
    c_main, c_fed = inputs.snr_coeff_main_hz * p_s, inputs.snr_coeff_fed_hz * p_c
    if fading == "none" and bandwidth is None:
        alloc = dataclasses.replace(base, strategy="proposed_replan", details=dict(base.details))
        return alloc, predicted_round_s(inputs, base.V, base.b_s_hz, base.b_c_hz, c_main, c_fed, "none", k_factor_db,
                                        base.cpu_fraction)
    if not on_shannon(inputs):
        alloc, round_s = _plan_on_link(inputs, base, c_main, c_fed, fading, k_factor_db, scs_khz, bandwidth=bandwidth)
        by = f"by {bandwidth.strategy_name}, " if bandwidth is not None else ""
        return dataclasses.replace(alloc, strategy="proposed_replan", details={
            **base.details, **alloc.details, "first_plan": f"{by}on the NR link's ergodic rate over {fading} fading"}), \
            round_s
    prb: dict = {}
    b_s, b_c, round_s = _plan(inputs, base, c_main, c_fed, fading, k_factor_db, scs_khz, rule, prb, bandwidth=bandwidth)
    eff_s = effective_snr_coeff_hz(b_s, planning_rate_bps(b_s, c_main, fading, k_factor_db))
    eff_c = effective_snr_coeff_hz(b_c, planning_rate_bps(b_c, c_fed, fading, k_factor_db))
    alloc = _allocation(inputs, base, b_s, b_c, eff_s, eff_c, "proposed_replan",
                        {**base.details, "first_plan": (f"by {bandwidth.strategy_name}" if bandwidth is not None else
                                                        f"on the ergodic rate over {fading} fading"),
                         **({"prb": prb} if prb else {})})
    return alloc, round_s


def robust_allocation(inputs: DelayInputs, base: Allocation, samples: np.ndarray, fading: str,
                      k_factor_db: float = 6.0, scs_khz: int | None = None, rule: str = "min_max") -> Allocation:
    """The plan made once for the channel the users will have: `samples` (K, S) of each user's
    large-scale gain factor over the run (relative to the planned channel), `fading` averaged
    within; at `base`'s eta, V, powers and clocks. With no fading and every sample 1 (a static
    channel) it is `base` itself. T_s is the expected delay under the planning rates."""
    samples = np.asarray(samples, dtype=float)
    if fading == "none" and np.all(samples == 1.0):
        return dataclasses.replace(base, strategy="robust", details={**base.details, "robust": "static channel: the "
                                                                      "plan-once allocation"})
    p_s, p_c, _ = base.powers_and_clock()
    c_main = (inputs.snr_coeff_main_hz * p_s)[:, None] * samples
    c_fed = (inputs.snr_coeff_fed_hz * p_c)[:, None] * samples
    if not on_shannon(inputs):
        alloc, _ = _plan_on_link(inputs, base, c_main, c_fed, fading, k_factor_db, scs_khz)
        return dataclasses.replace(alloc, strategy="robust", details={**alloc.details, "robust": {
            "samples_per_user": int(samples.shape[1]), "fading": fading,
            "rate": "harmonic mean over the samples of the NR link's ergodic rate over the fading"}})
    prb: dict = {}
    b_s, b_c, round_s = _plan(inputs, base, c_main, c_fed, fading, k_factor_db, scs_khz, rule, prb)
    eff_s = effective_snr_coeff_hz(b_s, planning_rate_bps(b_s, c_main, fading, k_factor_db))
    eff_c = effective_snr_coeff_hz(b_c, planning_rate_bps(b_c, c_fed, fading, k_factor_db))
    alloc = _allocation(inputs, base, b_s, b_c, eff_s, eff_c, "robust",
                        {"robust": {"samples_per_user": int(samples.shape[1]), "fading": fading,
                                    "rate": "harmonic mean over the samples of the ergodic rate over the fading"},
                         **({"prb": prb} if prb else {})})
    problems = verify_allocation(dataclasses.replace(inputs, snr_coeff_main_hz=eff_s / p_s,
                                                     snr_coeff_fed_hz=eff_c / p_c), alloc)
    if problems:
        raise OptimizerError(f"robust allocation failed verification: {problems[0]}", field="optimizer.strategies",
                             value="robust")
    if abs(alloc.T_s - base.I0 * float(round_s.max())) > 1e-6 * alloc.T_s:
        raise OptimizerError("robust allocation: its delay does not match the planning rates",
                             field="optimizer.strategies", value="robust")
    return alloc


def custom_bandwidth(name: str, config, strategy=None):
    """A bandwidth planner (plan_bandwidth's signature) that asks a user's strategy (optimizer.custom)
    at every re-plan: it gets problem (17)'s inputs on the channel the base station knows (c at the
    plan's powers; a forecast's samples by their mean), and its bandwidths are checked as at planning
    time. The run keeps the first plan's eta (V, rounds): the strategy's own eta is not used here."""
    from .custom import custom_allocation

    def plan(inputs: DelayInputs, V: float, c_main: np.ndarray, c_fed: np.ndarray, fading: str, k_factor_db: float,
             cpu_fraction=None, warm=None):
        mean = lambda c: c if np.ndim(c) == 1 else np.mean(c, axis=1)  # noqa: E731
        known = dataclasses.replace(inputs, snr_coeff_main_hz=mean(c_main), snr_coeff_fed_hz=mean(c_fed))
        alloc = custom_allocation(name, known, config, strategy)
        b_s, b_c = alloc.b_s_hz, alloc.b_c_hz
        eff_s = effective_snr_coeff_hz(b_s, planning_rate_bps(b_s, c_main, fading, k_factor_db))
        eff_c = effective_snr_coeff_hz(b_c, planning_rate_bps(b_c, c_fed, fading, k_factor_db))
        return b_s, b_c, eff_s, eff_c

    plan.strategy_name = name
    return plan

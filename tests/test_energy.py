"""Energy: the model, the energy-aware allocation against independent methods, energy in simulate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitsim.optimizer import OptimizerError, optimise
from splitsim.optimizer.energy.structured import solve_energy_kkt
from splitsim.optimizer.energy.reference import ipopt_round_objective, nlp_round_objective
from splitsim.optimizer.energy.model import transmit_energy_j, upload_seconds_at_power, wideband_transmit_energy_j
from splitsim.optimizer.energy.interior_point import solve_energy_rounds
from splitsim.optimizer.energy.strategies import (allocation_energy_j, check_budget, minimum_energy_j, optimise_with_energy,
                                         round_problem)
from splitsim.optimizer.strategies import OptimisedBandwidth
from splitsim.scenarios import EnergyInputs, OptimizerConfig
from splitsim.scenarios.types import DelayInputs

LN2 = math.log(2.0)


def random_inputs(rng: np.random.Generator, users: int) -> tuple[DelayInputs, EnergyInputs]:
    """A random FedsLLM-like cell: SNR coefficients over four decades, ms-scale compute."""
    c = 10 ** rng.uniform(5.5, 9.5, users)
    inputs = DelayInputs(a=2 / 0.1 * math.log(1e3), v=2 / (1.9 * 0.1), counts="continuous",
                         uplink_main_bandwidth_hz=2e6 * users / 10, uplink_fed_bandwidth_hz=2e6 * users / 10,
                         activation_bits=281e3, adapter_bits=28.1e3, gradient_bits=281e3, snr_coeff_main_hz=c,
                         snr_coeff_fed_hz=c.copy(), client_seconds_per_iteration=rng.uniform(1e-3, 5e-2, users),
                         server_seconds_per_iteration=rng.uniform(1e-4, 5e-3, users),
                         samples=np.full(users, 100))
    energy = EnergyInputs(client_power_w=rng.uniform(0.5, 5.0, users), max_tx_power_w=0.01,
                          idle_power_w=float(rng.choice([0.0, 0.05])))
    return inputs, energy


def test_transmit_energy_closed_forms():
    """p·t at the least power meets the rate exactly and tends to the wideband limit S·ln2·p_max/c."""
    bits, c, b, pmax = 2e5, 3e7, 1e6, 0.1
    for t in (0.05, 0.5, 5.0):
        e = transmit_energy_j(bits, t, b, c, pmax)
        frac = e / (pmax * t)
        assert upload_seconds_at_power(bits, b, c, frac) == pytest.approx(t, rel=1e-12)
    assert transmit_energy_j(bits, 1e6, 1e6, c, pmax) == pytest.approx(wideband_transmit_energy_j(bits, c, pmax),
                                                                      rel=1e-6)


def test_infinite_budget_is_problem_17():
    """Without a budget both energy solvers reach the (17) optimum of the (17) Newton solver, and the
    structured one with full power and clock: exactly the (17) bandwidths."""
    inputs, energy = random_inputs(np.random.default_rng(1), 12)
    for V in (1.0, 3.7, 20.0):
        p17, b_s, b_c, _ = OptimisedBandwidth(inputs).solve(V)
        prob = round_problem(inputs, energy, np.array([V]), np.array([np.inf]))
        assert solve_energy_rounds(prob).P_s[0] == pytest.approx(p17, rel=1e-8)
        kkt = solve_energy_kkt(prob)
        assert kkt.converged[0] and kkt.P_s[0] == pytest.approx(p17, rel=1e-11)
        np.testing.assert_allclose(kkt.b_s_hz[0], b_s, rtol=1e-8)
        np.testing.assert_allclose(kkt.tau_s[0], inputs.client_seconds_per_iteration)
    config = OptimizerConfig()
    assert optimise_with_energy(inputs, energy, config)["proposed"].T_s == optimise(inputs, config)["proposed"].T_s


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_budgeted_round_matches_an_independent_nlp(seed):
    """On random small cells with binding budgets the interior point equals SLSQP's best of many starts."""
    rng = np.random.default_rng(seed)
    inputs, energy = random_inputs(rng, 4)
    V = 2.5
    free = solve_energy_rounds(round_problem(inputs, energy, np.array([V]), np.array([np.inf])))
    budget = float(free.energy_j[0].max()) * 0.6  # binds for the neediest users
    prob = round_problem(inputs, energy, np.array([V]), np.array([budget]))
    sol = solve_energy_rounds(prob)
    assert sol.converged[0]
    assert sol.energy_j[0].max() <= budget * (1 + 1e-9)
    assert sol.P_s[0] > free.P_s[0]  # the budget costs delay
    nlp = nlp_round_objective(prob, 0, starts=6, rng=rng)
    assert sol.P_s[0] == pytest.approx(nlp, rel=2e-5)
    assert sol.P_s[0] <= nlp * (1 + 1e-9)  # never worse than the independent method


@pytest.mark.parametrize("seed", [0, 1])
def test_weighted_round_matches_an_independent_nlp(seed):
    """The weighted-sum variant (1 - w)·P + w·sum e_k, with and without a budget, against SLSQP."""
    rng = np.random.default_rng(10 + seed)
    inputs, energy = random_inputs(rng, 4)
    V = 2.0
    free = solve_energy_rounds(round_problem(inputs, energy, np.array([V]), np.array([np.inf])))
    weight = float(free.P_s[0] / (free.P_s[0] + free.energy_j[0].sum()))  # both terms matter
    for budget in (np.inf, float(free.energy_j[0].max()) * 0.7):
        prob = round_problem(inputs, energy, np.array([V]), np.array([budget]), weight=weight)
        sol = solve_energy_rounds(prob)
        assert sol.converged[0]
        nlp = nlp_round_objective(prob, 0, starts=6, rng=rng)
        assert sol.objective[0] == pytest.approx(nlp, rel=2e-5)
        assert sol.objective[0] <= nlp * (1 + 1e-9)
        assert sol.energy_j[0].sum() < free.energy_j[0].sum()  # the weight buys energy with delay


def test_single_user_matches_brute_force():
    """K = 1: the user has all the bandwidth; a dense grid over the two upload times (compute time
    from the energy left) gives the least round time to within the grid's resolution."""
    inputs, energy = random_inputs(np.random.default_rng(5), 1)
    energy = EnergyInputs(client_power_w=energy.client_power_w, max_tx_power_w=0.01)
    V = 3.0
    free = solve_energy_rounds(round_problem(inputs, energy, np.array([V]), np.array([np.inf])))
    budget = float(free.energy_j[0, 0]) * 0.5
    sol = solve_energy_kkt(round_problem(inputs, energy, np.array([V]), np.array([budget])))
    assert sol.converged[0]
    B_s, B_c, c = inputs.uplink_main_bandwidth_hz, inputs.uplink_fed_bandwidth_hz, inputs.snr_coeff_main_hz[0]
    ts_min = inputs.activation_bits / (B_s * np.log2(1 + c / B_s))
    tc_min = inputs.adapter_bits / (B_c * np.log2(1 + c / B_c))
    best = math.inf
    lo_s, hi_s, lo_c, hi_c = ts_min, 50 * ts_min, tc_min, 50 * tc_min
    for _ in range(6):  # refine the grid around the best point
        ts, tc = np.meshgrid(np.geomspace(lo_s, hi_s, 400), np.geomspace(lo_c, hi_c, 400), indexing="ij")
        e_tx = V * transmit_energy_j(inputs.activation_bits, ts, B_s, c, 0.01) + transmit_energy_j(
            inputs.adapter_bits, tc, B_c, c, 0.01)
        left = (budget - e_tx) / V
        tau0 = inputs.client_seconds_per_iteration[0]
        with np.errstate(invalid="ignore", divide="ignore"):
            tau = np.where(left > 0, np.maximum(tau0 * np.sqrt(energy.client_power_w[0] * tau0 / left), tau0), np.inf)
        P = V * (tau + inputs.server_seconds_per_iteration[0] + ts) + tc
        i, j = np.unravel_index(np.argmin(P), P.shape)
        best = min(best, float(P[i, j]))
        ts_best, tc_best = ts[i, j], tc[i, j]
        lo_s, hi_s = max(ts_best / 1.05, ts_min), ts_best * 1.05  # never below p = p_max's time
        lo_c, hi_c = max(tc_best / 1.05, tc_min), tc_best * 1.05
    assert sol.P_s[0] == pytest.approx(best, rel=1e-6)
    assert sol.P_s[0] <= best * (1 + 1e-9)


@pytest.mark.parametrize("seed", range(8))
def test_structured_solver_equals_ipopt_on_random_cells(seed):
    """The structured Newton solver against IPOPT (an independent general NLP solver with exact
    derivatives) on random cells of 1-40 users: budgets from barely to strongly binding, with and
    without the weighted objective and idle power. Equal to 1e-8; its own duality gap is below 1e-12."""
    pytest.importorskip("casadi", reason="IPOPT comes with casadi (pip install -e '.[dev]')")
    rng = np.random.default_rng(100 + seed)
    users = int(rng.integers(1, 41))
    inputs, energy = random_inputs(rng, users)
    V = float(rng.uniform(1.0, 20.0))
    free = solve_energy_kkt(round_problem(inputs, energy, np.array([V]), np.array([np.inf])))
    weight = float(free.P_s[0] / (free.P_s[0] + free.energy_j[0].sum())) if seed % 3 == 0 else 0.0
    budget = float(free.energy_j[0].max()) * float(rng.uniform(0.35, 0.95))
    prob = round_problem(inputs, energy, np.array([V]), np.array([budget]), weight=weight)
    sol = solve_energy_kkt(prob)
    assert sol.converged[0] and sol.gap[0] < 1e-12
    assert sol.energy_j[0].max() <= budget * (1 + 1e-9)
    reference, status = ipopt_round_objective(prob, 0)
    assert status == "Solve_Succeeded"
    assert sol.objective[0] == pytest.approx(reference, rel=1e-8)


def test_structured_solver_equals_the_interior_point():
    """A second in-repo method, the log-barrier interior point (a different algorithm on the full
    problem), agrees on a batch of three iteration counts with binding budgets."""
    inputs, energy = random_inputs(np.random.default_rng(7), 15)
    V = np.array([1.5, 4.0, 9.0])
    free = solve_energy_kkt(round_problem(inputs, energy, V, np.full(3, np.inf)))
    budgets = free.energy_j.max(axis=1) * 0.6
    prob = round_problem(inputs, energy, V, budgets)
    kkt, barrier = solve_energy_kkt(prob), solve_energy_rounds(prob)
    assert kkt.converged.all() and barrier.converged.all()
    np.testing.assert_allclose(kkt.P_s, barrier.P_s, rtol=1e-8)


@pytest.mark.parametrize("shift", [0.0, 0.3, 3.0])
def test_per_user_newton_settles_the_users_where_the_bracketed_roots_do(shift):
    """At fixed globals (a converged round's, with the round time raised 2 %), the fast settle
    (per-user Newton from a first-order prediction, or from prices `shift` log-units off, with the
    bracketed roots for whoever it leaves) gives the users of a 60-user cell the same prices, binding
    set and responses as the nested bracketed roots alone, a different algorithm."""
    from splitsim.optimizer.energy.structured import round_time_floor_s
    from splitsim.optimizer.energy.structured_settle import _settle, _settle_users
    from splitsim.optimizer.energy.structured_user import _Point

    inputs, energy = random_inputs(np.random.default_rng(5), 60)
    V = np.array([6.0])
    free = solve_energy_kkt(round_problem(inputs, energy, V, np.array([np.inf])))
    prob = round_problem(inputs, energy, V, np.array([float(np.median(free.energy_j[0]))]))
    assert solve_energy_kkt(prob).converged[0]
    # a settled point at the answer's globals, whose prediction then starts the settle at moved globals
    import splitsim.optimizer.energy.structured as kkt

    z, g = kkt._start(prob)
    g[:, 0] = np.maximum(g[:, 0], round_time_floor_s(prob)) * 1.5
    z0, b0, p0, _ = _settle_users(prob, z, g, {}, 1e-13)
    moved = g.copy()
    moved[:, 0] *= 1.02
    reference_z, reference_binding, reference, _ = _settle_users(prob, z0, moved, {}, 1e-13)
    start = p0.predict(moved) + shift * np.random.default_rng(1).choice([-1.0, 1.0], size=z0.shape)
    fast_z, fast_binding, fast = _settle(prob, start, moved, b0, {}, 1e-13)
    assert 0 < reference_binding.sum() < prob.shape[1]  # some budgets bind, some do not
    np.testing.assert_array_equal(fast_binding, reference_binding)
    np.testing.assert_allclose(fast_z[..., 0], reference_z[..., 0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(fast.up_s.b, reference.up_s.b, rtol=1e-9)
    np.testing.assert_allclose(fast.energy, reference.energy, rtol=1e-10)
    assert isinstance(fast, _Point) and (fast.user_merit <= 1e-26).all()


def _fig2_eta_grid_problem(seed: int, users: int, budget_share: float, energy: dict | None = None,
                           weight: float = 0.0, etas: np.ndarray | None = None):
    """The eta grid's (or `etas`') per-round problems of a FedsLLM cell (`seed`, `energy` settings),
    with a budget `budget_share` of the way from the least energy any allocation needs to what the
    delay-optimal one spends."""
    from splitsim.scenarios import parse_scenario

    from splitsim.analysis.world import realise
    from splitsim.optimizer import global_rounds, local_iterations
    from splitsim.optimizer.eta_search import paper_eta_grid

    world = realise(parse_scenario({"name": "e", "seed": seed, "cell": {"users": users}, "theory": {"epsilon0": 0.2},
                                    "study": {"kind": "simulate"}, "energy": energy or {}}))
    e_min, _ = minimum_energy_j(world.inputs, world.energy)
    free = optimise(world.inputs, OptimizerConfig())["proposed"]
    e_free = allocation_energy_j(world.inputs, world.energy, free)["total_j"]
    budget = float(e_min.max() + budget_share * (e_free.max() - e_min.max()))
    etas = paper_eta_grid(0.05) if etas is None else etas
    V = np.atleast_1d(local_iterations(etas, world.inputs.v))
    I0 = np.atleast_1d(global_rounds(etas, world.inputs.a))
    return world, budget, round_problem(world.inputs, world.energy, V, budget / I0, weight)


def test_structured_solver_crosses_a_kink_that_stalls_newton(monkeypatch):
    """Regression: one user with a clock floor, idle power and a weighted objective, at eta = 0.35:
    Newton on the globals stalls at a kink of the user's response and Powell's hybrid method must
    carry the solve across; the answer equals the interior point's and IPOPT's."""
    import splitsim.optimizer.energy.structured as kkt_module

    _, _, prob = _fig2_eta_grid_problem(1, 1, 0.5, {"min_user_cpu_hz": 0.5e9, "idle_power_w": 0.05}, 0.3,
                                        np.array([0.35]))
    calls = []
    hybrid = kkt_module._powell_hybrid
    monkeypatch.setattr(kkt_module, "_powell_hybrid", lambda *args: calls.append(1) or hybrid(*args))
    kkt, barrier = solve_energy_kkt(prob), solve_energy_rounds(prob)
    assert calls, "the case no longer reaches the hybrid method: pick another that does"
    assert kkt.converged[0] and barrier.converged[0]
    assert kkt.objective[0] == pytest.approx(barrier.objective[0], rel=1e-9)
    assert kkt.gap[0] <= 1e-11
    pytest.importorskip("casadi", reason="IPOPT comes with casadi (pip install -e '.[dev]')")
    reference, status = ipopt_round_objective(prob, 0)
    assert status == "Solve_Succeeded" and kkt.objective[0] == pytest.approx(reference, rel=1e-8)


@pytest.mark.parametrize(("seed", "budget_share"), [(0, 0.02), (1, 0.5)])
def test_structured_solver_solves_every_eta_of_a_small_cell(seed, budget_share):
    """Regression: on 6-user cells the structured solver once stalled on most of the eta grid, where
    the (17) start's round time is below what a user's budget allows at any bandwidth. Every
    feasible eta must converge and equal the interior point."""
    _, _, prob = _fig2_eta_grid_problem(seed, 6, budget_share)
    kkt, barrier = solve_energy_kkt(prob), solve_energy_rounds(prob)
    np.testing.assert_array_equal(kkt.feasible, barrier.feasible)
    assert kkt.feasible.sum() >= 2 and kkt.converged[kkt.feasible].all() and barrier.converged[barrier.feasible].all()
    np.testing.assert_allclose(kkt.P_s[kkt.feasible], barrier.P_s[kkt.feasible], rtol=1e-8)


@pytest.mark.parametrize("primary_users_limit, primary, second", [
    (200, "solve_energy_rounds", "energy-kkt-newton"),  # 6 users: the interior point first
    (0, "solve_energy_kkt", "energy-interior-point"),  # the limit lowered: the structured solver first
])
def test_each_solver_retries_what_the_other_leaves_unconverged(monkeypatch, primary_users_limit, primary, second):
    """A problem the first solver leaves unconverged is solved again by the other, and the
    allocation is the one the first alone would have given."""
    import splitsim.optimizer.energy.strategies as strategies

    monkeypatch.setattr(strategies, "BARRIER_MAX_USERS", primary_users_limit)
    world, budget, _ = _fig2_eta_grid_problem(0, 6, 0.5)
    alone = strategies.energy_aware_allocation(world.inputs, world.energy, budget)
    solve = getattr(strategies, primary)

    def failing_on_the_first_row(prob):
        sol = solve(prob)
        sol.converged[0], sol.P_s[0], sol.objective[0] = False, 0.0, 0.0  # a wrong answer, marked unconverged
        return sol

    monkeypatch.setattr(strategies, primary, failing_on_the_first_row)
    retried = strategies.energy_aware_allocation(world.inputs, world.energy, budget)
    assert second not in alone.solver.split("+")
    assert sorted(retried.solver.split("+")) == ["energy-interior-point", "energy-kkt-newton"]
    assert retried.T_s == pytest.approx(alone.T_s, rel=1e-8)


def test_energy_aware_allocation_beyond_the_interior_point_limit():
    """250 users (above the interior point's 200): the structured solver alone; the budget holds,
    the allocation verifies, and its round at the chosen eta equals IPOPT's."""
    from splitsim.optimizer.delay_model import counts_for
    from splitsim.optimizer.energy.strategies import BARRIER_MAX_USERS, energy_aware_allocation

    inputs, energy = random_inputs(np.random.default_rng(11), BARRIER_MAX_USERS + 50)
    e_min, _ = minimum_energy_j(inputs, energy)
    free = optimise(inputs, OptimizerConfig())["proposed"]
    e_free = allocation_energy_j(inputs, energy, free)["total_j"]
    budget = float(e_min.max() + 0.5 * (e_free.max() - e_min.max()))
    alloc = energy_aware_allocation(inputs, energy, budget)
    assert alloc.solver == "energy-kkt-newton" and alloc.T_s > free.T_s
    assert allocation_energy_j(inputs, energy, alloc)["total_j"].max() <= budget * (1 + 1e-6)
    pytest.importorskip("casadi", reason="IPOPT comes with casadi (pip install -e '.[dev]')")
    V, I0 = counts_for(inputs, alloc.details["eta_exact"])
    reference, status = ipopt_round_objective(round_problem(inputs, energy, np.array([V]), np.array([budget / I0])), 0)
    assert status == "Solve_Succeeded"
    assert alloc.T_s / I0 == pytest.approx(reference, rel=1e-8)


def test_budget_below_the_least_energy_is_refused_with_the_user_and_its_need():
    inputs, energy = random_inputs(np.random.default_rng(3), 6)
    e_min, _ = minimum_energy_j(inputs, energy)
    with pytest.raises(OptimizerError, match=f"user {int(np.argmax(e_min))} needs more than"):
        check_budget(inputs, energy, float(e_min.max()) * 0.99)
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(OptimizerError, match="energy_budget_j"):
            check_budget(inputs, energy, bad)


def test_energy_aware_allocation_meets_budget_and_simulates_to_the_same_energy():
    from splitsim.scenarios import parse_scenario

    from splitsim.analysis.allocations import world_allocations
    from splitsim.analysis.simulation import simulate_allocation
    from splitsim.analysis.world import realise

    scenario = parse_scenario({"name": "e", "cell": {"users": 6}, "theory": {"epsilon0": 0.2},
                               "optimizer": {"energy_budget_j": 1.0}, "study": {"kind": "simulate"}})
    world = realise(scenario)
    e_min, _ = minimum_energy_j(world.inputs, world.energy)
    free = optimise(world.inputs, scenario.optimizer)["proposed"]
    e_free = allocation_energy_j(world.inputs, world.energy, free)["total_j"]
    budget = float(e_min.max() + 0.5 * (e_free.max() - e_min.max()))
    scenario = scenario.model_copy(update={"optimizer": scenario.optimizer.model_copy(
        update={"energy_budget_j": budget})})
    world = realise(scenario)
    alloc = world_allocations(world)["proposed"]
    assert alloc.solver == "energy-interior-point" and alloc.T_s > free.T_s
    spent = allocation_energy_j(world.inputs, world.energy, alloc)["total_j"]
    assert spent.max() <= budget * (1 + 1e-9)
    result = simulate_allocation(world, alloc, progress=False)
    assert result.total_delay_s == pytest.approx(alloc.T_s, rel=1e-9)
    simulated = result.user_energy_j()["total_j"]
    np.testing.assert_allclose(simulated, spent, rtol=1e-9)
    assert result.events_frame()["energy_j"].sum() == pytest.approx(simulated.sum(), rel=1e-9)


def test_delay_energy_study_writes_front(tmp_path):
    from splitsim.scenarios import parse_scenario

    from splitsim.analysis.commands import run_study

    scenario = parse_scenario({"name": "front", "cell": {"users": 5}, "theory": {"epsilon0": 0.2},
                               "study": {"kind": "delay_energy", "energy_budget_points": 3, "tx_power_dbm": [5.0, 10.0]}})
    run_study(scenario, tmp_path / "out", progress=False)
    import pandas as pd

    table = pd.read_csv(tmp_path / "out" / "delay_energy.csv")
    front = table[table["mode"] == "budget"].sort_values("energy_budget_j")
    assert len(front) == 3 and np.all(np.diff(front["T_s"]) <= 1e-9 * front["T_s"].max())  # more energy, less delay
    assert np.all(front["worst_user_j"] <= front["energy_budget_j"] * (1 + 1e-9))
    assert (tmp_path / "out" / "delay_energy.png").stat().st_size > 0
    assert set(table[table["mode"] == "power"]["strategy"]) == {"proposed", "EB", "FE", "BA"}


# ---- the eta search starts from the interval where the budget can be met (#22.7) -------------------

def test_a_budget_just_above_the_least_energy_is_met_inside_its_narrow_eta_window():
    """1.0005 x the least energy: the window of feasible eta is a few hundredths wide, between the
    coarse grid's points; the search must find it and the allocation meet the budget. The best delay
    is checked against a dense scan of the window (100 etas, the round problem solved at each)."""
    from splitsim.optimizer.energy.strategies import _EtaObjective, energy_aware_allocation, feasible_eta_interval

    old_grid = np.arange(1, 20) * 0.05
    for seed in range(100):  # a cell whose window falls between the old coarse grid's points
        inputs, energy = random_inputs(np.random.default_rng(seed), 5)
        e_min, eta_min = minimum_energy_j(inputs, energy)
        budget = float(e_min.max()) * 1.0005
        lo, hi = feasible_eta_interval(inputs, energy, budget)
        if not np.any((old_grid > lo) & (old_grid < hi)):
            break
    assert not np.any((old_grid > lo) & (old_grid < hi)), "no such cell among 100 seeds"
    assert lo < eta_min[np.argmax(e_min)] < hi and hi - lo < 0.05
    alloc = energy_aware_allocation(inputs, energy, budget)
    assert allocation_energy_j(inputs, energy, alloc)["total_j"].max() <= budget * (1 + 1e-6)
    dense = np.linspace(lo, hi, 102)[1:-1]
    scan = _EtaObjective(inputs, energy, budget, 0.0).many(dense)
    assert alloc.T_s <= np.nanmin(scan) * (1 + 1e-6)
    # outside the window nothing is feasible: the interval is exact
    outside = _EtaObjective(inputs, energy, budget, 0.0).many(np.array([lo * 0.98, min(hi * 1.02, 0.999)]))
    assert not np.any(np.isfinite(outside))


def test_with_integer_counts_a_budget_only_one_v_meets_is_found():
    from dataclasses import replace

    from splitsim.optimizer.delay_model import global_rounds
    from splitsim.optimizer.energy.strategies import energy_aware_allocation, round_problem

    inputs, energy = random_inputs(np.random.default_rng(5), 4)
    inputs = replace(inputs, counts="integer")
    parts = round_problem(inputs, energy, np.array([0.0, 1.0]), np.full(2, np.inf)).round_energy_floor_j()
    beta, alpha = parts[0], parts[1] - parts[0]
    least = {}
    for V in range(1, 40):  # integer counts: V local iterations at eta = 2^(-V/v), the fewest rounds
        I0 = global_rounds(2.0 ** (-V / inputs.v), inputs.a, "integer")
        least[V] = float(np.max(I0 * (V * alpha + beta)))
    best_V = min(least, key=least.get)
    budget = least[best_V] * 1.0005
    assert sum(e < budget for e in least.values()) == 1  # only that V can meet it
    alloc = energy_aware_allocation(inputs, energy, budget)
    assert alloc.V == best_V
    assert allocation_energy_j(inputs, energy, alloc)["total_j"].max() <= budget * (1 + 1e-6)

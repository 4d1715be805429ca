"""The energy-aware allocation on the NR link (optimizer.energy.on_link), held against an exhaustive
search written here (every PRB split of both pools, a grid of eta and of each user's two powers, the
delay and energy of FedsLLM's round written out), a dense search for the least upload energy, and
the simulator's own energy accounts."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

pytest.importorskip("sionna", reason="the NR link model needs sionna-no-rt (pip install 'splitsim[nr]')")

from splitsim.analysis.world import realise  # noqa: E402
from splitsim.optimizer.delay_model import global_rounds, local_iterations  # noqa: E402
from splitsim.optimizer.energy.budget import upload_energy_floor_j  # noqa: E402
from splitsim.optimizer.energy.strategies import (allocation_energy_j, minimum_energy_j,  # noqa: E402
                                                  optimise_with_energy)
from splitsim.scenarios import parse_scenario  # noqa: E402

PRBS = 24  # 10 MHz at 30 kHz (TS 38.101-1 Table 5.3.2-1)


def _two_users(seed: int):
    """Two users on 10 MHz NR pools; the clock held at its maximum (min_user_cpu_hz just below it), so
    the search below need not search it."""
    return realise(parse_scenario({
        "name": "nr_energy", "seed": seed, "cell": {"users": 2}, "theory": {"epsilon0": 0.2},
        "radio": {"link_model": "nr", "subcarrier_spacing_khz": 30, "uplink_main_bandwidth_hz": 10e6,
                  "uplink_fed_bandwidth_hz": 10e6, "prb_rule": "min_max"},
        "compute": {"user_cpu_hz": 2e9}, "energy": {"min_user_cpu_hz": 1.9999e9}, "study": {"kind": "simulate"}}))


def _exhaustive(world, budget_j: float, etas: np.ndarray, powers: np.ndarray) -> float:
    """The least T over every split of both pools' PRBs between the two users, each eta of `etas` and
    each user's powers of `powers`, with every user within `budget_j`: T_k = I0·(V·(client + server +
    t_s) + t_c), E_k = I0·(V·(P_compute·client + p_s·P·t_s) + p_c·P·t_c) (FedsLLM's round, no idle power)."""
    x, e = world.inputs, world.energy
    rate, p_max = x.uplink_rate, e.max_tx_power_w
    n = np.arange(1, PRBS)[:, None] * rate.prb_hz
    with np.errstate(divide="ignore"):
        t_s = [x.activation_bits / rate.rate_bps(n, x.snr_coeff_main_hz[k] * powers[None, :]) for k in (0, 1)]
        t_c = [x.adapter_bits / rate.rate_bps(n, x.snr_coeff_fed_hz[k] * powers[None, :]) for k in (0, 1)]
    best = np.inf
    for eta in etas:
        V, I0 = float(local_iterations(eta, x.v, "continuous")), float(global_rounds(eta, x.a, "continuous"))
        least = []
        for k in (0, 1):  # (main PRBs, main power, fed PRBs, fed power)
            T = I0 * (V * (x.client_seconds_per_iteration[k] + x.server_seconds_per_iteration[k] + t_s[k])[:, :, None, None]
                      + t_c[k][None, None])
            E = I0 * (V * (e.client_power_w[k] * x.client_seconds_per_iteration[k] + powers[None, :] * p_max * t_s[k])
                      [:, :, None, None] + (powers[None, :] * p_max * t_c[k])[None, None])
            least.append(np.where(E <= budget_j, T, np.inf).min(axis=(1, 3)))  # (main PRBs, fed PRBs)
        best = min(best, float(np.maximum(least[0], least[1][::-1, ::-1]).min()))  # user 1 holds the rest
    return best


@pytest.mark.parametrize("seed", [1, 2])
def test_the_least_upload_energy_is_the_best_power_on_the_widest_band(seed):
    world = _two_users(seed)
    x = world.inputs
    rate = x.uplink_rate
    widest = (PRBS - 1) * rate.prb_hz
    floor = upload_energy_floor_j(rate, x.activation_bits, x.snr_coeff_main_hz, widest, world.energy.max_tx_power_w)
    powers = 10.0 ** (-np.linspace(0.0, 60.0, 60001) / 10.0)  # 0.001 dB apart
    for k in (0, 1):
        dense = np.inf
        for prbs in range(1, PRBS):
            r = rate.rate_bps(prbs * rate.prb_hz, x.snr_coeff_main_hz[k] * powers)
            with np.errstate(divide="ignore"):
                dense = min(dense, float(np.min(np.where(r > 0, world.energy.max_tx_power_w * powers
                                                         * x.activation_bits / r, np.inf))))
        assert floor[k] == pytest.approx(dense, rel=2e-4)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 3])
def test_the_budgeted_plan_on_nr_is_as_fast_as_an_exhaustive_search_and_keeps_the_budget(seed):
    """Between the least energy and what the delay-optimal plan spends: the plan is never slower than
    the exhaustive search (to its grids' resolution, 0.3 %), and no user spends more than the budget,
    counted here from the plan's PRBs, powers and clock."""
    world = _two_users(seed)
    x, e = world.inputs, world.energy
    e_min = minimum_energy_j(x, e)[0].max()
    free = optimise_with_energy(x, e, world.scenario.optimizer)["proposed"]
    e_free = allocation_energy_j(x, e, free)["total_j"].max()
    for share in (0.5, 0.15):
        budget = float(e_min + share * (e_free - e_min))
        plan = optimise_with_energy(x, e, world.scenario.optimizer, budget)["proposed"]
        search = _exhaustive(world, budget, np.linspace(0.02, 0.98, 97), np.geomspace(1e-3, 1.0, 120))
        assert plan.T_s <= search * 1.003, (share, plan.T_s, search)
        assert plan.T_s >= free.T_s * (1 - 1e-9)  # a budget never makes it faster than no budget
        # the energy written out, on the NR rate at the plan's PRBs and powers
        p_s, p_c, f = plan.powers_and_clock()
        t_s = x.activation_bits / x.uplink_rate.rate_bps(plan.b_s_hz, x.snr_coeff_main_hz * p_s)
        t_c = x.adapter_bits / x.uplink_rate.rate_bps(plan.b_c_hz, x.snr_coeff_fed_hz * p_c)
        spent = plan.I0 * (plan.V * (e.client_power_w * f ** 2 * x.client_seconds_per_iteration
                                     + p_s * e.max_tx_power_w * t_s) + p_c * e.max_tx_power_w * t_c)
        assert np.all(spent <= budget * (1 + 1e-9)), (spent, budget)
        assert np.all(np.isclose(plan.b_s_hz / x.uplink_rate.prb_hz % 1, 0)) and \
            round(plan.b_s_hz.sum() / x.uplink_rate.prb_hz) == PRBS


def test_the_simulator_counts_the_energy_the_plan_on_nr_says():
    from splitsim.analysis.allocations import world_allocations
    from splitsim.analysis.simulation import simulate_allocation

    data = {"name": "nr_energy_sim", "seed": 4, "cell": {"users": 4}, "theory": {"epsilon0": 0.2},
            "radio": {"link_model": "nr", "subcarrier_spacing_khz": 30, "uplink_main_bandwidth_hz": 10e6,
                      "uplink_fed_bandwidth_hz": 10e6, "prb_rule": "min_max"},
            "optimizer": {"strategies": ["proposed", "EB"]}, "study": {"kind": "simulate"}}
    world = realise(parse_scenario(data))
    e_min = minimum_energy_j(world.inputs, world.energy)[0].max()
    free = allocation_energy_j(world.inputs, world.energy, world_allocations(world)["proposed"])["total_j"].max()
    budget = float(e_min + 0.3 * (free - e_min))
    world = realise(parse_scenario({**data, "optimizer": {**data["optimizer"], "energy_budget_j": budget}}))
    plan = world_allocations(world)["proposed"]
    assert plan.details["energy_on_link"]["worst_user_j"] <= budget * (1 + 1e-9)
    result = simulate_allocation(world, plan, progress=False)
    assert result.total_delay_s == pytest.approx(plan.T_s, rel=1e-9)
    np.testing.assert_allclose(result.user_energy_j()["total_j"],
                               allocation_energy_j(world.inputs, world.energy, plan)["total_j"], rtol=1e-9)
    assert result.user_energy_j()["total_j"].max() <= budget * (1 + 1e-9)


@pytest.mark.slow
def test_the_delay_energy_study_runs_on_nr(tmp_path):
    import pandas as pd

    from splitsim.analysis.commands import run_study

    scenario = parse_scenario({"name": "front_nr", "cell": {"users": 3}, "theory": {"epsilon0": 0.2},
                               "radio": {"link_model": "nr", "subcarrier_spacing_khz": 30,
                                         "uplink_main_bandwidth_hz": 10e6, "uplink_fed_bandwidth_hz": 10e6},
                               "study": {"kind": "delay_energy", "energy_budget_points": 3, "tx_power_dbm": [10.0]}})
    run_study(scenario, tmp_path / "out", progress=False)
    table = pd.read_csv(tmp_path / "out" / "delay_energy.csv")
    front = table[table["mode"] == "budget"].sort_values("energy_budget_j")
    assert len(front) == 3 and np.all(np.diff(front["T_s"]) <= 1e-9 * front["T_s"].max())  # more energy, less delay
    assert np.all(front["worst_user_j"] <= front["energy_budget_j"] * (1 + 1e-9))


def test_energy_aware_with_open_loop_power_control_is_refused(tmp_path, cli):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "nr_pc_energy", "cell": {"users": 3},
        "radio": {"link_model": "nr", "subcarrier_spacing_khz": 30, "uplink_main_bandwidth_hz": 10e6,
                  "uplink_fed_bandwidth_hz": 10e6, "nr": {"power_control": "open_loop"}},
        "optimizer": {"energy_budget_j": 5.0}, "study": {"kind": "simulate"}}))
    code, _, err = cli("validate", path)
    assert code == 2 and "radio.nr.power_control" in err and "energy-aware" in err


def test_a_cell_too_large_for_the_energy_search_on_nr_is_refused_at_validate(tmp_path, cli):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({
        "name": "nr_energy_large", "cell": {"users": 100},
        "radio": {"link_model": "nr", "subcarrier_spacing_khz": 30, "uplink_main_bandwidth_hz": 100e6,
                  "uplink_fed_bandwidth_hz": 100e6}, "optimizer": {"energy_budget_j": 5.0}, "study": {"kind": "simulate"}}))
    code, _, err = cli("validate", path)
    assert code == 2 and "cell.users" in err and "users x PRBs x powers" in err and len(err.strip().splitlines()) <= 2


def test_the_weighted_objective_on_nr_trades_delay_for_energy():
    world = realise(parse_scenario({
        "name": "nr_weighted", "seed": 4, "cell": {"users": 4}, "theory": {"epsilon0": 0.2},
        "radio": {"link_model": "nr", "subcarrier_spacing_khz": 30, "uplink_main_bandwidth_hz": 10e6,
                  "uplink_fed_bandwidth_hz": 10e6}, "study": {"kind": "simulate"}}))
    x, e = world.inputs, world.energy
    plans = [optimise_with_energy(x, e, world.scenario.optimizer, None, weight)["proposed"] for weight in (0.1, 0.5, 0.9)]
    energies = [allocation_energy_j(x, e, plan)["total_j"].sum() for plan in plans]
    assert energies[0] > energies[1] > energies[2]  # more weight on energy, less energy
    assert plans[0].T_s <= plans[1].T_s <= plans[2].T_s  # and more delay
    for plan in plans:  # whole PRBs filling both pools
        for b, total in ((plan.b_s_hz, x.uplink_main_bandwidth_hz), (plan.b_c_hz, x.uplink_fed_bandwidth_hz)):
            assert np.allclose(b / x.uplink_rate.prb_hz, np.round(b / x.uplink_rate.prb_hz)) and b.sum() <= total

"""The SFL discrete-event simulation against the closed form and its own invariants."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitsim.analysis import realise
from splitsim.netsim import NetsimError, simulate_sfl
from splitsim.optimizer import equal_bandwidth_allocation
from splitsim.scenarios import Allocation, SimulationConfig

from helpers import small_scenario


def closed_form_T(inputs, eta, b_s, b_c, counts):
    """Independent re-implementation of FedsLLM eq. (15) with the FDMA rate."""
    V = inputs.v * math.log2(1 / eta)
    I0 = inputs.a / (1 - eta)
    if counts == "integer":
        V, I0 = math.ceil(V - 1e-9), math.ceil(I0 - 1e-9)
    t_s = inputs.activation_bits / (b_s * np.log2(1 + inputs.snr_coeff_main_hz / b_s))
    t_c = inputs.adapter_bits / (b_c * np.log2(1 + inputs.snr_coeff_fed_hz / b_c))
    tau = V * (inputs.client_seconds_per_iteration + inputs.server_seconds_per_iteration)
    T_k = I0 * (tau + t_c + V * t_s)
    return V, I0, t_s, t_c, T_k


def random_allocation(inputs, eta, rng, counts):
    k = inputs.users
    b_s = inputs.uplink_main_bandwidth_hz * rng.dirichlet(np.ones(k))
    b_c = inputs.uplink_fed_bandwidth_hz * rng.dirichlet(np.ones(k))
    V, I0, t_s, t_c, T_k = closed_form_T(inputs, eta, b_s, b_c, counts)
    return Allocation("random", eta, V, I0, float(T_k.max()), b_s, b_c, t_s, t_c, T_k)


def run(world, allocation, **sim):
    s = world.scenario
    return simulate_sfl(world.inputs, allocation, SimulationConfig(**sim) if sim else s.simulation, s.radio,
                        s.channel, world.channel, world.simulation_rng())


@pytest.mark.parametrize("seed", range(8))
def test_des_equals_closed_form_on_random_scenarios(seed):
    rng = np.random.default_rng(100 + seed)
    counts = "integer" if seed % 2 else "continuous"
    scenario = small_scenario(
        seed=seed,
        cell={"users": int(rng.integers(2, 20)), "side_m": float(rng.uniform(100, 1000))},
        radio={"max_tx_power_dbm": float(rng.uniform(-5, 25))},
        theory={"epsilon0": float(rng.uniform(0.05, 0.5)), "counts": counts},
        compute={"client_fraction": float(rng.uniform(0.05, 0.95))},
    )
    world = realise(scenario)
    eta = float(rng.uniform(0.02, 0.98))
    allocation = random_allocation(world.inputs, eta, rng, counts)
    result = run(world, allocation)
    assert result.paper_assumptions
    assert result.total_delay_s == pytest.approx(allocation.T_s, rel=1e-9)
    # the critical user's time splits exactly into compute, uplink, downlink and waiting
    b = result.breakdown()["critical_user"]
    assert b["compute_s"] + b["uplink_s"] + b["downlink_s"] + b["waiting_s"] == pytest.approx(result.total_delay_s)
    assert b["waiting_s"] == pytest.approx(0.0, abs=1e-9 * result.total_delay_s)


def test_equal_bandwidth_allocation_is_the_closed_form():
    world = realise(small_scenario())
    alloc = equal_bandwidth_allocation(world.inputs, 0.3)
    k = world.inputs.users
    *_, T_k = closed_form_T(world.inputs, 0.3, np.full(k, 20e6 / k), np.full(k, 20e6 / k), "continuous")
    np.testing.assert_allclose(alloc.T_k_s, T_k, rtol=1e-12)
    assert run(world, alloc).total_delay_s == pytest.approx(alloc.T_s, rel=1e-9)


def test_records_account_for_every_bit_and_iteration():
    world = realise(small_scenario(theory={"counts": "integer"}))
    alloc = equal_bandwidth_allocation(world.inputs, 0.2)
    result = run(world, alloc)
    df = result.events_frame()
    inputs = world.inputs
    per_user = df.groupby(["user", "kind"], observed=True)["bits"].agg(["count", "sum"])
    for k in range(inputs.users):
        assert per_user.loc[(k, "uplink_activation"), "count"] == alloc.V * alloc.I0
        assert per_user.loc[(k, "uplink_activation"), "sum"] == pytest.approx(inputs.activation_bits * alloc.V * alloc.I0)
        assert per_user.loc[(k, "uplink_adapter"), "sum"] == pytest.approx(inputs.adapter_bits * alloc.I0)
    assert (df["end_s"] <= result.total_delay_s * (1 + 1e-12)).all()
    assert set(df["category"].unique()) == {"compute", "uplink"}


def test_same_seed_same_run_other_seed_other_run():
    def once(seed):
        world = realise(small_scenario(seed=seed, channel={"redraw_each_round": True}))
        result = run(world, equal_bandwidth_allocation(world.inputs, 0.1), downlink=True, server_concurrency=2)
        return result.total_delay_s, result.events_frame()

    t1, e1 = once(4)
    t2, e2 = once(4)
    t3, _ = once(5)
    assert t1 == t2 and e1.equals(e2)
    assert t3 != t1


def test_downlink_matches_its_own_closed_form():
    """With a fixed channel and no contention the downlink simply adds V·t_grad + t_broadcast a round."""
    scenario = small_scenario()
    world = realise(scenario)
    alloc = equal_bandwidth_allocation(world.inputs, 0.25)
    result = run(world, alloc, downlink=True)
    inputs, radio = world.inputs, scenario.radio
    g = world.channel.gain_linear
    n0 = 10 ** ((scenario.channel.noise_psd_dbm_per_hz - 30) / 10)
    p_bs = 10 ** ((radio.bs_tx_power_dbm - 30) / 10)
    b = radio.downlink_bandwidth_hz / inputs.users
    rate = b * np.log2(1 + g * p_bs / (n0 * b))
    extra = alloc.I0 * (alloc.V * inputs.gradient_bits / rate + inputs.adapter_bits / rate)
    assert not result.paper_assumptions
    assert result.total_delay_s == pytest.approx(np.max(alloc.T_k_s + extra), rel=1e-9)
    assert result.downlink_s.max() > 0


def test_server_contention_only_slows_down():
    world = realise(small_scenario(compute={"server_cpu_hz": 2e8}))  # a slow server, so queues form
    alloc = equal_bandwidth_allocation(world.inputs, 0.2)
    free = run(world, alloc).total_delay_s
    ample = run(world, alloc, server_concurrency=world.inputs.users).total_delay_s
    two = run(world, alloc, server_concurrency=2).total_delay_s
    one = run(world, alloc, server_concurrency=1)
    assert ample == pytest.approx(free, rel=1e-12)
    assert free < two < one.total_delay_s
    queue = one.events_frame().query("kind == 'server_queue'")
    assert len(queue) > 0 and (queue["duration_s"] > 0).all()
    # one server slot: server jobs never overlap in time
    jobs = one.events_frame().query("kind == 'server_compute'").sort_values("time_s")
    assert (jobs["time_s"].to_numpy()[1:] >= jobs["end_s"].to_numpy()[:-1] - 1e-9).all()


def test_redraw_each_round_changes_the_delay_but_not_round_zero():
    base = small_scenario(seed=3)
    redraw = small_scenario(seed=3, channel={"redraw_each_round": True})
    w0, w1 = realise(base), realise(redraw)
    alloc = equal_bandwidth_allocation(w0.inputs, 0.1)
    r0, r1 = run(w0, alloc), run(w1, alloc)
    assert r0.round_end_s[0] == pytest.approx(r1.round_end_s[0], rel=1e-12)
    assert r0.total_delay_s != pytest.approx(r1.total_delay_s, rel=1e-6)


def test_max_rounds_truncates():
    world = realise(small_scenario())
    alloc = equal_bandwidth_allocation(world.inputs, 0.1)
    result = run(world, alloc, max_rounds=2)
    assert len(result.round_end_s) == 2 and result.rounds == 2


def test_zero_bandwidth_is_a_clear_error():
    world = realise(small_scenario())
    alloc = equal_bandwidth_allocation(world.inputs, 0.1)
    bad = Allocation(**{**alloc.__dict__, "b_s_hz": np.where(np.arange(alloc.users) == 1, 0.0, alloc.b_s_hz)})
    with pytest.raises(NetsimError, match="allocation.b_s_hz"):
        run(world, bad)

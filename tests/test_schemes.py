"""SplitLLM, SL and FL protocols against their closed forms; options only add delay; memory rules."""

from __future__ import annotations

import numpy as np
import pytest

from splitsim.analysis import realise
from splitsim.analysis.schemes import run_scheme, scheme_memory_bytes
from splitsim.netsim import FlPlan, SlPlan, SplitLlmPlan, run_plan
from splitsim.scenarios import ChannelConfig, SimulationConfig

from helpers import small_scenario

SIM = SimulationConfig()
CH = ChannelConfig()


def splitllm_plan(rng, rounds=3, edges=2, users=5, **over):
    edge_users = [list(range(m, users, edges)) for m in range(edges)]
    base = dict(rounds=rounds, edge_users=edge_users, batches=rng.integers(1, 5, users), user_forward_s=0.01,
                user_backward_s=0.02, edge_forward_s=0.03, edge_backward_s=0.05, cloud_s=0.07,
                uplink_s=rng.uniform(0.1, 0.3, (rounds, users)), downlink_gradient_s=None,
                user_adapter_up_s=rng.uniform(0.01, 0.05, (rounds, users)), user_adapter_down_s=None,
                backhaul_activation_s=0.004, backhaul_gradient_s=0.006, backhaul_rate_bps=1e8, backhaul_latency_s=0.005,
                bits={"activation": 8e6, "gradient": 8e6, "backhaul_activation": 8e6, "backhaul_gradient": 8e6,
                      "user_adapter": 1e5, "edge_adapter": 2e5})
    base.update(over)
    return SplitLlmPlan(**base)


def test_splitllm_equals_its_closed_form():
    """Edges in parallel, each edge's users in turn: round = max over edges of its sequential work."""
    p = splitllm_plan(np.random.default_rng(0))
    per_batch = p.user_forward_s + p.edge_forward_s + p.backhaul_activation_s + p.cloud_s + \
        p.backhaul_gradient_s + p.edge_backward_s + p.user_backward_s
    total = 0.0
    for r in range(p.rounds):
        edge_times = [0.005 + 3e5 / 1e8 + sum(p.batches[k] * (per_batch + p.uplink_s[r, k])
                                             + p.user_adapter_up_s[r, k] for k in users)
                      + 0.005 + (len(users) * 1e5 + 2e5) / 1e8 for users in p.edge_users]
        total += max(edge_times)
    result = run_plan(p, SIM, CH)
    assert result.total_delay_s == pytest.approx(total, rel=1e-12)
    frame = result.events_frame()
    assert (frame["kind"] == "cloud_compute").sum() == p.batches.sum() * p.rounds
    assert frame.query("kind == 'backhaul_adapter'")["bits"].sum() == pytest.approx(
        p.rounds * (2 * (1e5 + 2e5) + 5 * 1e5 + 2 * 2e5))


def test_splitllm_cloud_contention_and_downlink_only_add_delay():
    rng = np.random.default_rng(1)
    free = run_plan(splitllm_plan(rng), SIM, CH).total_delay_s
    rng = np.random.default_rng(1)
    one = run_plan(splitllm_plan(rng, cloud_concurrency=1), SIM, CH).total_delay_s
    rng = np.random.default_rng(1)
    plan = splitllm_plan(rng)
    down = run_plan(splitllm_plan(np.random.default_rng(1), downlink_gradient_s=np.full_like(plan.uplink_s, 0.05),
                                  user_adapter_down_s=np.full_like(plan.uplink_s, 0.01)), SIM, CH).total_delay_s
    assert one > free and down > free


def test_sl_equals_users_in_turn():
    rng = np.random.default_rng(2)
    rounds, users = 3, 4
    p = SlPlan(rounds=rounds, batches=rng.integers(1, 4, users), user_forward_s=0.01, user_backward_s=0.02,
               server_s=0.05, uplink_s=rng.uniform(0.1, 0.2, (rounds, users)), downlink_gradient_s=None,
               user_adapter_up_s=rng.uniform(0.01, 0.02, (rounds, users)), user_adapter_down_s=None,
               bits={"activation": 1e6, "gradient": 1e6, "user_adapter": 1e4})
    expected = sum(p.batches[k] * (0.01 + 0.02 + 0.05 + p.uplink_s[r, k]) + p.user_adapter_up_s[r, k]
                   for r in range(rounds) for k in range(users))
    result = run_plan(p, SIM, CH)
    assert result.total_delay_s == pytest.approx(expected, rel=1e-12)
    # the server-side model serves one user at a time
    jobs = result.events_frame().query("kind == 'server_compute'").sort_values("time_s")
    assert (jobs["time_s"].to_numpy()[1:] >= jobs["end_s"].to_numpy()[:-1] - 1e-12).all()


def test_fl_equals_slowest_user_per_round_and_stragglers_slow_it_down():
    rng = np.random.default_rng(3)
    rounds, users = 4, 6
    batches = rng.integers(1, 6, users)
    up = rng.uniform(0.5, 2.0, (rounds, users))
    plan = FlPlan(rounds=rounds, batches=batches, train_s=0.3, adapter_up_s=up, adapter_down_s=None, adapter_bits=8e6)
    expected = sum(max(batches[k] * 0.3 + up[r, k] for k in range(users)) for r in range(rounds))
    assert run_plan(plan, SIM, CH).total_delay_s == pytest.approx(expected, rel=1e-12)
    slow = np.where(rng.random((rounds, users)) < 0.5, 4.0, 1.0)
    straggling = FlPlan(**{**plan.__dict__, "slowdown": slow})
    expected_slow = sum(max(batches[k] * 0.3 * slow[r, k] + up[r, k] for k in range(users)) for r in range(rounds))
    assert run_plan(straggling, SIM, CH).total_delay_s == pytest.approx(expected_slow, rel=1e-12)


TINY = {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32, "cut_layers": [1, 3]}


def tiny_world(**sim):
    return realise(small_scenario(scheme="splitllm", cell={"users": 8, "edge_servers": 2},
                                  workload={"dataset_samples": 256}, model=TINY, simulation={"rounds": 3, **sim}))


@pytest.mark.parametrize("scheme", ["splitllm", "sfl", "fl", "sl"])
def test_schemes_from_a_profile_are_reproducible_and_account_traffic(scheme):
    a, b = run_scheme(tiny_world(), scheme), run_scheme(tiny_world(), scheme)
    assert a.result.total_delay_s == b.result.total_delay_s > 0
    frame = a.result.events_frame()
    profile = tiny_world().profile
    batches = tiny_world().batches_per_round()
    if scheme == "fl":
        ups = frame.query("kind == 'uplink_adapter'")
        assert ups["bits"].sum() == pytest.approx(3 * 8 * 8 * profile.whole().adapter_bytes)
    else:
        acts = frame.query("kind == 'uplink_activation'")
        b1 = profile.boundary(1)
        assert acts["bits"].sum() == pytest.approx(3 * batches.sum() * 8 * (b1.forward_bytes + b1.side_bytes))
    assert a.row()["user_traffic_gib_per_round"] > 0


def test_extended_options_add_delay_to_every_scheme():
    for scheme in ("splitllm", "sfl", "fl", "sl"):
        base = run_scheme(tiny_world(), scheme).result.total_delay_s
        more = run_scheme(tiny_world(downlink=True, straggler_probability=0.5), scheme).result.total_delay_s
        assert more > base, scheme


def test_sfl_epoch_run_equals_its_allocation():
    world = tiny_world()
    outcome = run_scheme(world, "sfl")
    # three rounds of one local epoch; the DES equals the delay model of the epoch allocation
    from splitsim.optimizer import delay_inputs_from_profile, epoch_allocation
    from dataclasses import replace
    from splitsim.scenarios import rng_for

    s = world.scenario
    model = s.model.model_copy(update={"cut_layers": [1]})
    inputs = delay_inputs_from_profile(s.theory, s.compute, s.workload, s.radio, model, world.profile, world.channel,
                                       rng_for(s.seed, "compute"))
    inputs = replace(inputs, iteration_weights=world.batches_per_round().astype(float))
    alloc = epoch_allocation(inputs, 3)
    assert outcome.result.total_delay_s == pytest.approx(alloc.T_s, rel=1e-9)
    assert alloc.T_s <= epoch_allocation(inputs, 3, "equal").T_s


def test_memory_rules_per_scheme():
    profile = tiny_world().profile
    sfl_small = scheme_memory_bytes(profile, "sfl", [1], 4, 0, None, None)["server"]
    sfl_big = scheme_memory_bytes(profile, "sfl", [1], 40, 0, None, None)["server"]
    sfl_capped = scheme_memory_bytes(profile, "sfl", [1], 40, 0, 2, None)["server"]
    assert sfl_big > sfl_capped > sfl_small
    sl = scheme_memory_bytes(profile, "sl", [1], 40, 0, None, None)
    assert sl["server"] == profile.tier(1, profile.num_blocks).peak_memory_bytes
    split = scheme_memory_bytes(profile, "splitllm", [1, 3], 40, 5, None, None)
    assert split["cloud"] > scheme_memory_bytes(profile, "splitllm", [1, 3], 40, 5, None, 1)["cloud"]
    assert scheme_memory_bytes(profile, "fl", [1], 4, 0, None, None)["user"] == profile.whole().peak_memory_bytes


def test_simulate_command_runs_the_scenarios_scheme(cli, tmp_path):
    import json

    import yaml

    for scheme, cuts in (("splitllm", [1, 3]), ("fl", [1])):
        path = tmp_path / f"{scheme}.yaml"
        path.write_text(yaml.safe_dump({"name": scheme, "scheme": scheme, "cell": {"users": 6, "edge_servers": 2},
                                        "workload": {"dataset_samples": 192},
                                        "model": {**TINY, "cut_layers": cuts}, "simulation": {"rounds": 2}}))
        code, out, err = cli("simulate", path, "--out", tmp_path / f"o-{scheme}")
        assert code == 0, err
        summary = json.loads((tmp_path / f"o-{scheme}" / "summary.json").read_text())
        assert summary["scheme"] == scheme and list(summary["simulations"]) == [scheme]
        assert summary["simulations"][scheme]["rounds"] == 2
    bare = tmp_path / "bare.yaml"
    bare.write_text("scheme: sl\ncell: {users: 3}\n")
    code, _, err = cli("simulate", bare, "--out", tmp_path / "x")
    assert code == 2 and "add a model section" in err


def test_tiers_are_checked_against_what_the_device_leaves_to_the_app():
    """#22.5: a phone's OS keeps part of its RAM; a tier is checked against the rest."""
    from splitsim.analysis.schemes import fits, tier_limits
    from splitsim.scenarios import DEVICES, parse_scenario

    phone = DEVICES["phone-8gb"]
    assert phone.usable_memory_bytes == phone.memory_bytes - int(2.5e9)
    scenario = parse_scenario({"compute": {"user_device": "phone-8gb"}})
    limits = tier_limits(scenario)
    assert limits["user"][0] == phone.usable_memory_bytes and "usable" in limits["user"][1]
    ok, why = fits({"user": 6 * 2**30}, limits)  # fits the 8 GiB, not what the OS leaves
    assert not ok and "phone-8gb" in why
    assert fits({"user": 5 * 2**30}, limits)[0]

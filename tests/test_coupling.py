"""A scenario that names a model takes its message sizes and compute from the model's profile."""

from __future__ import annotations

import json

import pytest

from splitsim.analysis import realise
from splitsim.netsim import simulate_sfl
from splitsim.optimizer import optimise
from splitsim.scenarios import SCENARIO_DIR, WorkloadProfile

from helpers import small_scenario

TINY_MODEL = {"source": "bert-tiny", "batch_size": 4, "sequence_length": 16, "cut_layers": [2]}


def test_profile_sets_bits_and_compute_and_the_des_still_equals_the_optimizer():
    scenario = small_scenario(model=TINY_MODEL)
    world = realise(scenario)
    profile = world.profile
    boundary = profile.boundary(2)
    user, server = profile.tiers([2])
    inputs = world.inputs
    assert inputs.activation_bits == 8 * (boundary.forward_bytes + boundary.side_bytes)
    assert inputs.gradient_bits == 8 * boundary.backward_bytes
    assert inputs.adapter_bits == 8 * user.adapter_bytes
    flops_user = scenario.compute.flops_per_s("user", "float32")
    assert inputs.client_seconds_per_iteration[0] == pytest.approx(user.flops / flops_user)
    assert inputs.server_seconds_per_iteration[0] == pytest.approx(
        server.flops / scenario.compute.flops_per_s("server", "float32"))
    allocs = optimise(inputs, scenario.optimizer)
    for alloc in allocs.values():
        result = simulate_sfl(inputs, alloc, scenario.simulation, scenario.radio, scenario.channel, world.channel,
                              world.simulation_rng())
        assert result.total_delay_s == pytest.approx(alloc.T_s, rel=1e-6)


def test_saved_profile_is_reused_without_measuring(tmp_path, cli):
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        "name: tinyprof\nseed: 2\ncell: {users: 4}\nworkload: {dataset_samples: 64}\ntheory: {epsilon0: 0.3}\n"
        "model: {source: bert-tiny, batch_size: 4, sequence_length: 16, cut_layers: [1]}\n")
    code, out, err = cli("profile", scenario_file, "--out", tmp_path / "p")
    assert code == 0, err
    data = json.loads((tmp_path / "p" / "profile.json").read_text())
    profile = WorkloadProfile.from_dict(data["profile"])
    assert profile.model == "bert-tiny" and len(data["cuts"]) == profile.num_blocks + 1
    assert "user-side communication per round" in out and "per candidate cut" in out
    traffic = {row["scheme"]: row for row in data["user_side_traffic_per_round"]}
    batches = 64 // 4 // 4
    assert traffic["SL"]["table_ii_gib"] * 2**30 == pytest.approx(profile.split_traffic_bytes(1, batches))
    # the saved profile stands in for the measurement
    reuse = tmp_path / "reuse.yaml"
    reuse.write_text(scenario_file.read_text().replace(
        "cut_layers: [1]}", f"cut_layers: [1], profile_path: {tmp_path / 'p' / 'profile.json'}}}"))
    code, out, err = cli("optimize", reuse, "--out", tmp_path / "o")
    assert code == 0, err


@pytest.mark.parametrize("model,field,message", [
    ({"source": "bert-tiny", "cut_layers": [9]}, "model.cut_layers", "must lie in [0, 4]"),
    ({"source": "bert-tiny", "cut_layers": [2, 1]}, "model", "strictly increasing"),
    ({"source": "bert-tiny", "lora": {"target_modules": ["nope"]}}, "model.lora.target_modules", "match no linear"),
    ({"source": "bert-tiny", "sequence_length": 4096}, "model.sequence_length", "maximum of 128 tokens"),
    ({"source": "bert-tiny", "batch_size": 100000000}, "model.batch_size", "needs about"),
    ({"source": "bert-tiny", "profile_path": "/no/such/profile.json"}, "model.profile_path", "no such profile"),
])
def test_bad_model_settings_exit_2_with_the_field(tmp_path, cli, model, field, message):
    path = tmp_path / "bad.yaml"
    path.write_text(json.dumps({"name": "bad", "cell": {"users": 4}, "model": model}))
    code, _, err = cli("profile", path, "--out", tmp_path / "o")
    assert code == 2, err
    errors = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert "Traceback" not in err and len(errors) == 1, err
    assert field in err and message in err


def test_scheme_and_cut_count_must_agree(tmp_path, cli):
    path = tmp_path / "s.yaml"
    path.write_text("scheme: splitllm\ncell: {users: 4, edge_servers: 1}\nmodel: {source: bert-tiny, cut_layers: [1]}\n")
    code, _, err = cli("validate", path)
    assert code == 2 and "needs two model.cut_layers" in err


def test_shipped_table_ii_scenarios_validate_and_name_the_paper_settings():
    from splitsim.scenarios import load_scenario

    mrpc = load_scenario(SCENARIO_DIR / "splitllm_mrpc.yaml")
    cifar = load_scenario(SCENARIO_DIR / "splitllm_cifar100.yaml")
    assert (mrpc.model.source, mrpc.model.batch_size, mrpc.model.sequence_length) == ("bert-base", 16, 128)
    assert (cifar.model.source, cifar.model.batch_size, cifar.model.num_labels) == ("vit-base-patch16-224", 32, 100)
    assert mrpc.cell.users == cifar.cell.users == 20 and mrpc.cell.edge_servers == 5
    assert mrpc.workload.dataset_samples // 20 // 16 == 11 and cifar.workload.dataset_samples // 20 // 32 == 78

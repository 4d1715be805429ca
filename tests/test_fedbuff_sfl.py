"""SFL with buffered asynchronous aggregation (training.aggregation: fedbuff, scheme sfl; SplitFed's first
variant: a server-side copy per training): its two engines against each other, against synchronous SFL
in SimPy and in the epoch simulation (buffer = concurrency = all users), against closed forms on
deterministic schedules and on the channel's own integral; real training against synchronous SFL bit for
bit; bad input at validate."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from helpers import assert_fedbuff_of_everyone_trains_as_sync, assert_same_fedbuff_runs, fedbuff_both_engines
from splitsim.netsim.engine import KIND
from splitsim.netsim.protocols.fedbuff import FedBuffPlan, SplitSteps
from splitsim.netsim.simulate import run_protocol
from splitsim.scenarios import SimulationConfig


def _steps(users, rng, equal=False, down=False) -> SplitSteps:
    def draw(low, high, at):
        return np.full(users, at) if equal else rng.uniform(low, high, users)

    return SplitSteps(client_forward_s=draw(0.01, 0.05, 0.02), client_backward_s=draw(0.02, 0.1, 0.04),
                      server_s=draw(0.005, 0.02, 0.01), activation_up_s=draw(0.05, 0.4, 0.1),
                      gradient_down_s=draw(0.01, 0.1, 0.03) if down else None, activation_bits=4e6, gradient_bits=4e6)


def _plan(users=6, rounds=3, buffer_size=2, concurrency=3, seed=1, equal=False, down=False, aggregation_s=0.0):
    rng = np.random.default_rng(seed)
    batches = np.full(users, 4) if equal else rng.integers(1, 6, users)
    steps = -(-rounds * users // buffer_size)
    down_s = (np.full(users, 0.1) if equal else rng.uniform(0.05, 0.3, users)) if down else None
    return FedBuffPlan(updates=steps * buffer_size, batches=batches, train_s=0.0,
                       adapter_up_s=np.full(users, 0.5) if equal else rng.uniform(0.2, 2.0, users),
                       adapter_down_s=down_s,
                       adapter_bits=8e6, buffer_size=buffer_size, concurrency=concurrency, seed=seed,
                       aggregation_s=aggregation_s, split=_steps(users, rng, equal, down))


_both = fedbuff_both_engines


@pytest.mark.parametrize("case", [dict(), dict(down=True), dict(buffer_size=1, concurrency=4, seed=5),
                                  dict(buffer_size=3, concurrency=5, down=True, aggregation_s=0.05, seed=9),
                                  dict(equal=True, buffer_size=1, concurrency=6, down=True)])
def test_both_engines_give_the_same_run(case):
    assert_same_fedbuff_runs(*_both(_plan(**case)))


def test_a_training_is_its_local_iterations_in_order():
    """Each training's records: the adapter down, then per local iteration forward, activations up to
    the main server, the server's work, gradients down, backward, then the adapter up; back to back."""
    plan = _plan(users=3, rounds=1, buffer_size=3, concurrency=3, down=True, seed=2)
    _, run, _, log = _both(plan)
    order = [KIND[n] for n in ("client_forward", "uplink_activation", "server_compute", "downlink_gradient",
                               "client_backward")]
    for k in range(3):
        mine = sorted(r for r in log.rows if r[4] == k)
        kinds = [r[3] for r in mine]
        n = int(plan.batches[k])
        assert kinds == [KIND["downlink_adapter"], *order * n, KIND["uplink_adapter"]]
        for before, after in zip(mine, mine[1:]):
            assert after[0] == pytest.approx(before[0] + before[1], rel=1e-12)
        assert mine[1][2] == f"user{k}" and mine[2][2] == f"user{k}->main_server" and mine[3][2] == "main_server"


def test_buffer_and_concurrency_of_every_user_is_synchronous_sfl():
    """The identity of issue 35 for SFL: buffer = concurrency = K: every update fresh, one server step a
    round, and the run takes what SimPy's synchronous SFL takes on the same times (netsim.protocols.sfl,
    another engine): per round the slowest user's adapter down, its local iterations and adapter up."""
    from splitsim.netsim import SflPlan
    from splitsim.netsim.protocols.sfl import run_sfl

    users, rounds = 5, 4
    plan = _plan(users=users, rounds=rounds, buffer_size=users, concurrency=users, down=True, seed=3)
    a, b, _, _ = _both(plan)
    assert {u[3] for u in a.updates} == {0} and len(a.accounts.round_end_s) == rounds
    s = plan.split
    iteration = s.client_forward_s + s.activation_up_s + s.server_s + s.gradient_down_s + s.client_backward_s
    expected = rounds * float(np.max(plan.adapter_down_s + plan.batches * iteration + plan.adapter_up_s))
    sync = SflPlan(rounds=[1.0] * rounds, iterations=[[1.0] * int(n) for n in plan.batches],
                   client_forward_s=s.client_forward_s, client_backward_s=s.client_backward_s, server_s=s.server_s,
                   uplink_activation_s=np.tile(s.activation_up_s, (rounds, 1)),
                   uplink_adapter_s=np.tile(plan.adapter_up_s, (rounds, 1)),
                   downlink_gradient_s=np.tile(s.gradient_down_s, (rounds, 1)),
                   downlink_adapter_s=np.tile(plan.adapter_down_s, (rounds, 1)),
                   activation_bits=s.activation_bits, adapter_bits=plan.adapter_bits, gradient_bits=s.gradient_bits)
    _, sync_acc, _, _ = run_protocol(run_sfl, sync, SimulationConfig())
    assert sync_acc.round_end_s[-1] == pytest.approx(expected, rel=1e-12)
    assert a.end_s == pytest.approx(expected, rel=1e-12) and b.end_s == pytest.approx(expected, rel=1e-12)
    assert np.allclose(a.accounts.round_end_s, sync_acc.round_end_s, rtol=1e-12)


@pytest.mark.parametrize("users, concurrency, rounds", [(6, 3, 2), (6, 6, 3), (8, 4, 1)])
def test_equal_users_with_a_buffer_of_one_have_the_staleness_of_their_wave(users, concurrency, rounds):
    """Equal users (one training takes d = V x iteration + adapter up), buffer 1: each wave of
    `concurrency` users starts on one version and arrives together, so its updates are 0 ... c - 1
    versions stale, every wave takes d, and there are rounds·K / concurrency waves."""
    plan = _plan(users=users, rounds=rounds, buffer_size=1, concurrency=concurrency, equal=True)
    a, b, _, _ = _both(plan)
    d = 4 * (0.02 + 0.1 + 0.01 + 0.04) + 0.5
    waves = rounds * users // concurrency
    assert np.array_equal(np.bincount([u[3] for u in a.updates]), np.full(concurrency, waves))
    assert a.end_s == pytest.approx(waves * d, rel=1e-12) == b.end_s


# ---- the plan built from a scenario, on a moving cell with drop-outs ---------------------------------

TINY = {"name": "fb-sfl", "seed": 4, "scheme": "sfl", "cell": {"users": 6}, "workload": {"dataset_samples": 480},
        "model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32, "cut_layers": [1]},
        "simulation": {"rounds": 2}, "training": {"aggregation": "fedbuff", "buffer_size": 2, "concurrency": 3},
        "study": {"kind": "simulate"}}


def _scenario_plan(changes: dict, buffer_size=2, concurrency=3, users=6):
    from splitsim.analysis import realise
    from splitsim.netsim.schemes import build_fedbuff_sfl_plan
    from splitsim.optimizer import delay_inputs_from_profile
    from splitsim.scenarios import parse_scenario, rng_for

    world = realise(parse_scenario({**TINY, **changes}))
    sc = world.scenario
    inputs = delay_inputs_from_profile(sc.theory, sc.compute, sc.workload, sc.radio, sc.model, world.profile,
                                       world.channel, rng_for(sc.seed, "compute"))
    plan = build_fedbuff_sfl_plan(inputs, sc.radio, sc.simulation, world.channel, np.full(users, 3), buffer_size,
                                  concurrency, 17, channel_cfg=sc.channel, cell=sc.cell,
                                  rng=rng_for(sc.seed, "fedbuff-test"))
    return plan, inputs, sc


MOVING = {"channel": {"fading": "rayleigh", "coherence_time_s": 0.002, "mobility_speed_mps": 1.5}}


@pytest.mark.parametrize("case", [dict(dropout=0.0), dict(dropout=0.3), dict(dropout=0.5, buffer=1, concurrency=2)])
def test_both_engines_give_the_same_run_on_a_moving_cell_with_drop_outs(case):
    plan, _, _ = _scenario_plan({**MOVING, "simulation": {"rounds": 4, "dropout_probability": case["dropout"],
                                                          "downlink": True}},
                                case.get("buffer", 2), case.get("concurrency", 3))
    a, b, log_a, log_b = _both(plan)
    assert_same_fedbuff_runs(a, b, log_a, log_b)
    assert len(a.updates) == plan.updates and len(a.accounts.round_end_s) == plan.server_steps
    uploads = [r for r in log_a.rows if r[3] == KIND["uplink_adapter"]]
    assert len(uploads) == len(a.updates)  # a training that drops out uploads nothing
    if case["dropout"]:
        assert a.dropped and a.accounts.wasted_s.sum() > 0
        # every local iteration begun was finished: as many backward passes as forward passes
        kinds = np.bincount([r[3] for r in log_a.rows], minlength=len(KIND))
        assert kinds[KIND["client_forward"]] == kinds[KIND["client_backward"]] == kinds[KIND["server_compute"]]


def test_the_plan_holds_a_slots_share_of_each_band_at_the_links_rate():
    """Each training's share is 1/concurrency of the main band (activations), of the fed band (its
    adapter) and of the downlink; its seconds are the bits over Shannon's rate there, and its compute
    the delay model's per-iteration seconds (forward share to the client's forward)."""
    from splitsim.scenarios import fdma_rate_bps

    plan, inputs, sc = _scenario_plan({"simulation": {"rounds": 2, "downlink": True}})
    radio = sc.radio
    main = fdma_rate_bps(radio.uplink_main_bandwidth_hz / 3, inputs.snr_coeff_main_hz)
    fed = fdma_rate_bps(radio.uplink_fed_bandwidth_hz / 3, inputs.snr_coeff_fed_hz)
    assert np.allclose(plan.split.activation_up_s, inputs.activation_bits / main, rtol=1e-12)
    assert np.allclose(plan.adapter_up_s, inputs.adapter_bits / fed, rtol=1e-12)
    assert np.allclose(plan.split.client_forward_s + plan.split.client_backward_s,
                       inputs.client_seconds_per_iteration, rtol=1e-12)
    assert np.allclose(plan.split.server_s, inputs.server_seconds_per_iteration, rtol=1e-12)
    assert plan.split.gradient_down_s is not None and plan.adapter_down_s is not None


def test_each_activation_upload_on_a_moving_cell_takes_what_the_channel_then_allows():
    """Every activation upload, integrated here block by block over the track's gains from the instant it
    started (Shannon's rate on the slot's share of the main band), took the time the run gave it."""
    from helpers import integrated_transfer_s

    plan, _, _ = _scenario_plan({**MOVING, "simulation": {"rounds": 2}})
    _, _, _, log = _both(plan)
    bandwidth, c, bits, _ = plan.links[KIND["uplink_activation"]]
    rows = [r for r in log.rows if r[3] == KIND["uplink_activation"]]
    assert len(rows) == plan.updates * 3
    moved = 0
    for start, seconds, _, _, k, _, _ in rows:
        expected = integrated_transfer_s(bits, start, bandwidth[k], c[k], plan.track, k)
        assert seconds == pytest.approx(expected, rel=1e-9)
        moved += abs(seconds / plan.split.activation_up_s[k] - 1) > 0.05
    assert moved > len(rows) // 2


def test_simulate_with_every_user_in_the_buffer_takes_synchronous_sfls_time(tmp_path, cli):
    """`splitsim simulate` of SFL with FedBuff, buffer = concurrency = all users, against the epoch
    simulation of synchronous SFL with equal bandwidths (analysis.schemes.run_scheme, another engine and
    another plan builder): the same total delay and round ends."""
    import json

    from splitsim.analysis import realise
    from splitsim.analysis.schemes import run_scheme
    from splitsim.scenarios import parse_scenario

    data = {**TINY, "simulation": {"rounds": 3, "downlink": True},
            "training": {"aggregation": "fedbuff", "buffer_size": 6, "concurrency": 6}}
    path = tmp_path / "fb.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("simulate", path, "--out", tmp_path / "out")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["simulations"]["sfl"]
    assert summary["aggregation"] == "fedbuff" and summary["updates"] == 18 and summary["staleness"]["max"] == 0
    assert "1/6 of the main band and of the fed band" in summary["bandwidth"]
    sync = run_scheme(realise(parse_scenario({**data, "training": {}})), "sfl", bandwidth="equal").result
    assert summary["total_delay_s"] == pytest.approx(sync.total_delay_s, rel=1e-9)


@pytest.mark.parametrize("changes, field", [
    ({"simulation": {"rounds": 2, "server_concurrency": 2}}, "simulation.server_concurrency"),
    ({"training": {"aggregation": "fedbuff", "buffer_size": 4, "concurrency": 3}}, "training.buffer_size"),
    ({"model": None}, "model"),
    ({"study": {"kind": "latency_vs_power"}}, "training.aggregation"),
])
def test_what_sfl_fedbuff_cannot_simulate_is_one_line_and_exit_2(tmp_path, cli, changes, field):
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    path = tmp_path / "fb.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and field in err and "Traceback" not in err, err


# ---- real training in the simulator's order (`splitsim train`) ----------------------------------

def _training(path, **training):
    data = {"name": "tiny-fedbuff-sfl", "seed": 1, "scheme": "sfl", "cell": {"users": 4},
            "model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 16, "cut_layers": [1]},
            "training": {"dataset": "synthetic", "rounds": 3, "lr": 3e-3, "synthetic_samples": 256, "schemes": ["sfl"],
                         "partitions": ["iid"], **training}}
    path.write_text(yaml.safe_dump(data))
    return path


def test_fedbuff_sfl_with_every_user_in_the_buffer_trains_exactly_as_synchronous_sfl(tmp_path, cli):
    """buffer = concurrency = all users, no staleness: both sides of every server step are the FedAvg of
    synchronous SFL's round: the client and server adapters equal synchronous SFL's bit for bit, and
    so does every round's loss and accuracy."""
    fedbuff = assert_fedbuff_of_everyone_trains_as_sync(cli, tmp_path, _training, "sfl", same_times=False)
    assert set(fedbuff["global_state"]) == {"user", "server"}
    assert max(fedbuff["versions"]) == 3  # the versions kept are SFL's pairs, the last one 3
    assert set(fedbuff["versions"][3]) == {"user", "server"}


def test_fedbuff_sfl_training_follows_the_simulated_schedule(tmp_path, cli):
    """buffer 2 of 3 users at once: one row per server step, at the step's simulated time, each step's
    mean staleness that of the updates the simulator put in its buffer."""
    import pandas as pd

    code, _, err = cli("train", _training(tmp_path / "fb.yaml", aggregation="fedbuff", buffer_size=2, concurrency=3),
                       "--out", tmp_path / "out", "--no-progress")
    assert code == 0, err
    rounds = pd.read_csv(tmp_path / "out" / "rounds.csv")
    updates = pd.read_csv(tmp_path / "out" / "updates_iid.csv")
    assert len(rounds) == 3 * 4 // 2 and len(updates) == len(rounds) * 2
    for step, row in rounds.set_index("round").iterrows():
        mine = updates[updates["arrived_at"] == step]
        assert row["staleness_mean"] == pytest.approx(mine["staleness"].mean())
        assert row["simulated_time_s"] == pytest.approx(mine["time_s"].max())
    assert updates["staleness"].max() > 0 and (rounds["user_split_bytes"] > 0).all()


@pytest.mark.parametrize("training, field", [
    ({"aggregation": "fedbuff", "schemes": ["sfl", "fl"]}, "training.schemes"),
    ({"aggregation": "fedbuff", "schemes": ["sl"]}, "training.schemes"),
])
def test_bad_fedbuff_sfl_training_is_one_line_and_exit_2(tmp_path, cli, training, field):
    code, _, err = cli("validate", _training(tmp_path / "bad.yaml", **training))
    assert code == 2 and field in err and "Traceback" not in err, err


@pytest.mark.slow
def test_the_docs_sfl_fedbuff_numbers_are_what_the_sweep_gives(tmp_path, cli):
    """docs/studies/simulate.md's SFL table: `splitsim sweep scenarios/sfl_fedbuff_mrpc.yaml --set
    training.buffer_size=20,5`, each row from its point's summary and updates."""
    import json

    import pandas as pd

    from helpers import REPO

    code, _, err = cli("sweep", REPO / "scenarios" / "sfl_fedbuff_mrpc.yaml", "--set", "training.buffer_size=20,5",
                       "--out", tmp_path / "out", "--no-progress")
    assert code == 0, err
    results = pd.read_csv(tmp_path / "out" / "results.csv").set_index("training.buffer_size")
    got = []
    for buffer in (20, 5):
        point = tmp_path / "out" / "points" / results.loc[buffer, "point"]
        summary = json.loads((point / "summary.json").read_text())["simulations"]["sfl"]
        per_user = pd.read_csv(point / "updates.csv")["user"].value_counts()
        assert summary["updates"] == 200 and len(per_user) == 20
        got.append([str(buffer), f"{results.loc[buffer, 'delay_sfl_s']:.1f}", f"{summary['staleness']['mean']:.2f}",
                    f"{per_user.min()}–{per_user.max()}"])
    page = (REPO / "docs" / "studies" / "simulate.md").read_text()
    block = page.split("<!-- sfl-fedbuff-numbers -->")[1].split("<!-- /sfl-fedbuff-numbers -->")[0]
    assert [line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:]] == got

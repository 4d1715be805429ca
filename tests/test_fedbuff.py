"""FL with buffered asynchronous aggregation (training.aggregation: fedbuff; netsim.protocols.fedbuff):
its two engines against each other, against synchronous FL in SimPy (buffer = concurrency = all users),
and against closed forms on deterministic schedules; bad input at validate."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from helpers import assert_fedbuff_of_everyone_trains_as_sync, assert_same_fedbuff_runs, fedbuff_both_engines
from splitsim.netsim import FlPlan, run_plan
from splitsim.netsim.protocols.fedbuff import FedBuffPlan
from splitsim.scenarios import ChannelConfig, SimulationConfig


def _plan(users=6, rounds=3, buffer_size=2, concurrency=3, seed=1, equal=False, down=False, aggregation_s=0.0):
    rng = np.random.default_rng(seed)
    batches = np.full(users, 4) if equal else rng.integers(1, 6, users)
    up = np.full(users, 0.5) if equal else rng.uniform(0.2, 2.0, users)
    steps = -(-rounds * users // buffer_size)
    return FedBuffPlan(updates=steps * buffer_size, batches=batches, train_s=0.25, adapter_up_s=up,
                       adapter_down_s=(np.full(users, 0.1) if equal else rng.uniform(0.05, 0.3, users)) if down else None,
                       adapter_bits=8e6, buffer_size=buffer_size, concurrency=concurrency, seed=seed,
                       aggregation_s=aggregation_s)


_both = fedbuff_both_engines


@pytest.mark.parametrize("case", [dict(), dict(down=True), dict(buffer_size=1, concurrency=4, seed=5),
                                  dict(buffer_size=3, concurrency=5, down=True, aggregation_s=0.05, seed=9),
                                  dict(equal=True, buffer_size=1, concurrency=6)])
def test_both_engines_give_the_same_run(case):
    """SimPy and the event list: the same updates (user, versions, staleness, time) in the same order,
    the same end, the same busy time per user and kind, the same activity records."""
    a, b, log_a, log_b = _both(_plan(**case))
    assert [u[:4] for u in a.updates] == [u[:4] for u in b.updates]
    assert np.allclose([u[4] for u in a.updates], [u[4] for u in b.updates], rtol=1e-12, atol=0)
    assert a.end_s == pytest.approx(b.end_s, rel=1e-12)
    assert np.allclose(a.accounts.busy_s, b.accounts.busy_s, rtol=1e-12, atol=1e-15)
    assert sorted(log_a.rows) == sorted(log_b.rows)


def test_buffer_and_concurrency_of_every_user_is_synchronous_fedavg():
    """The identity of issue 35: buffer = concurrency = K, every update fresh, one server step per round,
    and the run takes what SimPy's synchronous FL takes on the same uploads (sum over rounds of the
    slowest user's epoch and upload)."""
    users, rounds = 5, 4
    plan = _plan(users=users, rounds=rounds, buffer_size=users, concurrency=users, down=True, seed=3)
    a, b, _, _ = _both(plan)
    assert {u[3] for u in a.updates} == {0} and len(a.accounts.round_end_s) == rounds
    sync = FlPlan(rounds=rounds, batches=plan.batches, train_s=plan.train_s,
                  adapter_up_s=np.tile(plan.adapter_up_s, (rounds, 1)),
                  adapter_down_s=np.tile(plan.adapter_down_s, (rounds, 1)), adapter_bits=plan.adapter_bits)
    expected = rounds * float(np.max(plan.adapter_down_s + plan.batches * plan.train_s + plan.adapter_up_s))
    assert run_plan(sync, SimulationConfig(), ChannelConfig()).total_delay_s == pytest.approx(expected, rel=1e-12)
    assert a.end_s == pytest.approx(expected, rel=1e-12) and b.end_s == pytest.approx(expected, rel=1e-12)
    assert np.allclose(a.accounts.round_end_s, np.arange(1, rounds + 1) * expected / rounds, rtol=1e-12)


@pytest.mark.parametrize("users, concurrency, rounds", [(6, 3, 2), (6, 6, 3), (8, 4, 1)])
def test_equal_users_with_a_buffer_of_one_have_the_staleness_of_their_wave(users, concurrency, rounds):
    """Equal users (one training takes d), buffer 1: each wave of `concurrency` users starts on one
    version and arrives together, so its updates are 0, 1, ..., concurrency - 1 versions stale (the
    server steps at each), every wave takes d and there are rounds·K / concurrency waves."""
    plan = _plan(users=users, rounds=rounds, buffer_size=1, concurrency=concurrency, equal=True)
    a, b, _, _ = _both(plan)
    d = 4 * 0.25 + 0.5
    waves = rounds * users // concurrency
    staleness = np.array([u[3] for u in a.updates])
    assert np.array_equal(np.bincount(staleness), np.full(concurrency, waves))
    assert a.end_s == pytest.approx(waves * d, rel=1e-12) == b.end_s
    assert len(a.accounts.round_end_s) == rounds * users


@pytest.mark.parametrize("seed", [3, 9, 11])
def test_a_server_step_that_takes_time_aggregates_exactly_its_buffer(seed):
    """With aggregation_s > 0 updates keep arriving while a full buffer is aggregated: they go into the
    next buffer (they were once counted into the full one and lost, and the run stopped short). Each
    step aggregates exactly buffer_size updates and ends aggregation_s after the arrival that filled
    its buffer; an update's staleness is its step less the version it started on."""
    plan = _plan(users=6, rounds=4, buffer_size=3, concurrency=5, down=True, aggregation_s=0.05, seed=seed)
    a, b, _, _ = _both(plan)
    for run in (a, b):
        steps = np.array([u[2] for u in run.updates])
        assert np.array_equal(np.bincount(steps), np.full(plan.server_steps, 3))
        fill_s = [max(u[4] for u in run.updates if u[2] == s) for s in range(plan.server_steps)]
        np.testing.assert_allclose(run.accounts.round_end_s, np.array(fill_s) + 0.05, rtol=1e-12)
        assert all(u[3] == u[2] - u[1] for u in run.updates)


# ---- a cell that moves, and users that drop out (issue 35, item 2) -----------------------------------

def _moving_plan(dropout=0.0, buffer_size=2, concurrency=3, users=6, rounds=4, seed=2):
    """FedBuff on a walking, Rayleigh-faded cell of the tiny scenario, built as `simulate` builds it."""
    from splitsim.analysis import realise
    from splitsim.netsim.schemes import build_fedbuff_plan
    from splitsim.scenarios import parse_scenario, rng_for

    data = {**TINY, "seed": seed, "cell": {"users": users},
            "channel": {"fading": "rayleigh", "coherence_time_s": 0.02, "mobility_speed_mps": 1.5},
            "simulation": {"rounds": rounds, "dropout_probability": dropout},
            "training": {"aggregation": "fedbuff", "buffer_size": buffer_size, "concurrency": concurrency}}
    world = realise(parse_scenario(data))
    sc = world.scenario
    return build_fedbuff_plan(world.profile, sc.compute, sc.radio, sc.simulation, world.channel,
                              np.full(users, 3), buffer_size, concurrency, 17, channel_cfg=sc.channel, cell=sc.cell,
                              rng=rng_for(sc.seed, "fedbuff-test"))


@pytest.mark.parametrize("case", [dict(), dict(dropout=0.3), dict(dropout=0.3, buffer_size=6, concurrency=6),
                                  dict(dropout=0.5, buffer_size=1, concurrency=2, seed=5)])
def test_both_engines_give_the_same_run_on_a_moving_cell_with_drop_outs(case):
    plan = _moving_plan(**case)
    a, b, log_a, log_b = _both(plan)
    assert_same_fedbuff_runs(a, b, log_a, log_b)
    assert len(a.updates) == plan.updates and len(a.accounts.round_end_s) == plan.server_steps


def test_each_upload_on_a_moving_cell_takes_what_the_channel_then_allows():
    """Every adapter upload, integrated here block by block over the track's gains from the instant it
    started (Shannon's rate on the slot's share), took the time the run gave it; and the uploads differ
    from the planned still-channel ones (the cell does move)."""
    from helpers import integrated_transfer_s
    from splitsim.netsim.engine import KIND

    plan = _moving_plan()
    _, run, _, _ = _both(plan)
    bandwidth, c, bits, _ = plan.links[KIND["uplink_adapter"]]
    rows = [r for r in _both(plan)[3].rows if r[3] == KIND["uplink_adapter"]]
    assert len(rows) == plan.updates
    moved = 0
    for start, seconds, _, _, k, _, _ in rows:
        expected = integrated_transfer_s(bits, start, bandwidth[k], c[k], plan.track, k)
        assert seconds == pytest.approx(expected, rel=1e-9)
        moved += abs(seconds / plan.adapter_up_s[k] - 1) > 0.05
    assert moved > len(rows) // 2


def test_drop_outs_deliver_nothing_waste_their_work_and_happen_at_their_rate():
    """Each training drops with p = 0.3 (over a long run the share is within 4 binomial sigmas), after
    a whole number of its 3 local steps (0, 1 or 2): its wasted time is those steps (and nothing is
    uploaded); the run still aggregates every update it needs."""
    from splitsim.netsim.engine import KIND

    plan = _moving_plan(dropout=0.3, rounds=30)
    _, run, _, log = _both(plan)
    trainings = len(run.updates) + len(run.dropped)
    share = len(run.dropped) / trainings
    assert abs(share - 0.3) <= 4 * np.sqrt(0.3 * 0.7 / trainings), share
    assert len(run.updates) == plan.updates
    wasted = run.accounts.wasted_s
    per_user = np.zeros(plan.users)
    for k, _, _ in run.dropped:
        per_user[k] += 1
    assert np.all((wasted > 0) <= (per_user > 0))  # only users that dropped waste time
    # every wasted stretch is whole local steps: the training records of dropped trainings are 0-2 steps
    short = [r for r in log.rows if r[3] == KIND["client_train"] and r[1] < 3 * plan.train_s - 1e-12]
    assert len(short) <= len(run.dropped)
    for r in short:
        assert r[1] / plan.train_s == pytest.approx(round(r[1] / plan.train_s), abs=1e-9)
    assert np.isclose(wasted.sum(), sum(r[1] for r in short), rtol=1e-9)


def test_a_moving_cell_with_drop_outs_is_simulated_from_the_cli(tmp_path, cli):
    import json

    data = {**TINY, "channel": {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.0},
            "simulation": {"rounds": 2, "dropout_probability": 0.2}}
    path = tmp_path / "fb.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("simulate", path, "--out", tmp_path / "out")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["simulations"]["fl"]
    assert "as it is when each transfer starts" in summary["bandwidth"] and summary["dropped_trainings"] >= 0


TINY = {"name": "fb", "seed": 4, "scheme": "fl", "cell": {"users": 6}, "workload": {"dataset_samples": 480},
        "model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32, "cut_layers": [1]},
        "simulation": {"rounds": 2}, "training": {"aggregation": "fedbuff", "buffer_size": 2, "concurrency": 3},
        "study": {"kind": "simulate"}}


def test_simulate_writes_every_updates_staleness(tmp_path, cli):
    import json

    import pandas as pd

    path = tmp_path / "fb.yaml"
    path.write_text(yaml.safe_dump(TINY))
    code, _, err = cli("simulate", path, "--out", tmp_path / "out")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())["simulations"]["fl"]
    updates = pd.read_csv(tmp_path / "out" / "updates.csv")
    assert summary["aggregation"] == "fedbuff" and summary["updates"] == len(updates) == 12
    assert summary["server_steps"] == 6 and summary["concurrency"] == 3 and summary["buffer_size"] == 2
    assert (updates["staleness"] == updates["arrived_at"] - updates["started_on"]).all()
    assert summary["staleness"]["counts"] == np.bincount(updates["staleness"]).tolist()
    assert "1/3 of the fed band" in summary["bandwidth"]


@pytest.mark.parametrize("changes, field", [
    ({"training": {"aggregation": "fedbuff", "buffer_size": 4, "concurrency": 3}}, "training.buffer_size"),
    ({"training": {"aggregation": "fedbuff", "concurrency": 9}}, "training.concurrency"),
    ({"scheme": "sl"}, "training.aggregation"),
    ({"study": {"kind": "scheme_comparison"}}, "training.aggregation"),
    ({"simulation": {"rounds": 2, "participants_per_round": 2}}, "simulation.participants_per_round"),
    ({"simulation": {"rounds": 2, "straggler_probability": 0.2}}, "simulation.straggler_probability"),
    ({"channel": {"redraw_each_round": True}}, "channel.redraw_each_round"),
])
def test_what_fedbuff_cannot_simulate_is_one_line_and_exit_2(tmp_path, cli, changes, field):
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data.update(changes)
    path = tmp_path / "fb.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and field in err and "Traceback" not in err, err


def _aggregation_sweep(cli, tmp_path, name: str):
    """`splitsim sweep scenarios/NAME --set training.aggregation=sync,fedbuff`: its results by aggregation."""
    import pandas as pd

    from helpers import REPO

    code, _, err = cli("sweep", REPO / "scenarios" / name, "--set", "training.aggregation=sync,fedbuff", "--out",
                       tmp_path / "out", "--no-progress")
    assert code == 0, err
    return pd.read_csv(tmp_path / "out" / "results.csv").set_index("training.aggregation")


def _docs_rows(marker: str) -> list[list[str]]:
    """The rows of the table between <!-- marker --> and <!-- /marker --> in docs/studies/simulate.md."""
    from helpers import REPO

    page = (REPO / "docs" / "studies" / "simulate.md").read_text()
    block = page.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]
    return [line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:]]


@pytest.mark.slow
def test_the_docs_fedbuff_numbers_are_what_the_sweep_gives(tmp_path, cli):
    results = _aggregation_sweep(cli, tmp_path, "fl_fedbuff_mrpc.yaml")
    assert {k: float(v) for k, v in _docs_rows("fedbuff-numbers")} == {
        k: round(float(results.loc[k, "delay_fl_s"]), 1) for k in ("sync", "fedbuff")}


@pytest.mark.slow
def test_the_docs_fedbuff_numbers_on_a_moving_cell_are_what_the_sweep_gives(tmp_path, cli):
    import json

    results = _aggregation_sweep(cli, tmp_path, "fl_fedbuff_dynamic_mrpc.yaml")
    got = {}
    for name in ("sync", "fedbuff"):
        summary = json.loads((tmp_path / "out" / "points" / results.loc[name, "point"] / "summary.json").read_text())
        fl = summary["simulations"]["fl"]
        updates = fl["updates"] if name == "fedbuff" else fl["participation"]["mean_updates_per_round"] * fl["rounds"]
        seconds = float(results.loc[name, "delay_fl_s"])
        got[name] = [round(seconds, 1), round(updates), round(100 * seconds / updates, 1)]
    assert {cells[0]: [float(x) for x in cells[1:]] for cells in _docs_rows("fedbuff-dynamic-numbers")} == got


# ---- real training in the simulator's order (`splitsim train`) ----------------------------------

def _training(path, extra: dict | None = None, **training):
    data = {"name": "tiny-fedbuff", "seed": 1, "scheme": "fl", "cell": {"users": 4},
            "model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 16, "cut_layers": [1]},
            "training": {"dataset": "synthetic", "rounds": 3, "lr": 3e-3, "synthetic_samples": 256, "schemes": ["fl"],
                         "partitions": ["iid"], **training}, **(extra or {})}
    path.write_text(yaml.safe_dump(data))
    return path


def _global_state(out):
    import torch

    return torch.load(out / "checkpoints" / "fl-iid.pt", weights_only=False)["trainer"]["global_state"]["whole"]


def test_fedbuff_with_every_user_in_the_buffer_trains_exactly_as_synchronous_fedavg(tmp_path, cli):
    """buffer = concurrency = all users, no staleness: every update is fresh, each server step is a
    FedAvg round: the trained adapters equal synchronous FL's bit for bit, and so does every round's
    loss and accuracy, at the same simulated times."""
    assert_fedbuff_of_everyone_trains_as_sync(cli, tmp_path, _training, "fl", same_times=True)


MOVING_WITH_DROP_OUTS = {"channel": {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.0},
                        "simulation": {"dropout_probability": 0.3}}


@pytest.mark.parametrize("dynamics", [None, pytest.param(MOVING_WITH_DROP_OUTS, marks=pytest.mark.slow)])
def test_fedbuff_training_follows_the_simulated_schedule(tmp_path, cli, dynamics):
    """buffer 2 of 3 users at once: one row per server step (rounds x users / buffer), at the step's
    simulated time; the updates file is the simulator's, each step's mean staleness that of the updates
    it aggregated — on a still cell, and on a moving one where trainings drop out (they deliver no
    update, so the trained steps are those of the updates that arrived)."""
    import pandas as pd

    code, out, err = cli("train", _training(tmp_path / "fb.yaml", dynamics, aggregation="fedbuff", buffer_size=2,
                                            concurrency=3), "--out", tmp_path / "out", "--no-progress")
    assert code == 0, err
    rounds = pd.read_csv(tmp_path / "out" / "rounds.csv")
    updates = pd.read_csv(tmp_path / "out" / "updates_iid.csv")
    assert len(rounds) == 3 * 4 // 2 and len(updates) == len(rounds) * 2
    assert (rounds["simulated_time_s"].diff().dropna() > 0).all()
    for step, row in rounds.set_index("round").iterrows():
        mine = updates[updates["arrived_at"] == step]
        assert len(mine) == 2 and row["staleness_mean"] == pytest.approx(mine["staleness"].mean())
        assert row["simulated_time_s"] == pytest.approx(mine["time_s"].max())
    assert updates["staleness"].max() > 0


def test_synchronous_training_where_users_drop_out_follows_the_simulated_rounds(tmp_path, cli):
    """Synchronous FL on a moving cell where 30 % of the participants drop out: each round averages the
    users whose adapter the simulator delivered in it (so fewer than all in some rounds), at the
    round's simulated end; SL, whose trainer runs every user every round, is refused."""
    import pandas as pd

    path = _training(tmp_path / "s.yaml", MOVING_WITH_DROP_OUTS, aggregation="sync")
    code, _, err = cli("train", path, "--out", tmp_path / "out", "--no-progress")
    assert code == 0, err
    rounds = pd.read_csv(tmp_path / "out" / "rounds.csv")
    assert len(rounds) == 3 and (rounds["users_aggregated"] <= 4).all() and (rounds["users_aggregated"] < 4).any()
    assert (rounds["simulated_time_s"].diff().dropna() > 0).all()
    assert (rounds["samples"] == rounds["users_aggregated"] * 256 // 4).all()  # iid: 64 samples a user
    code, _, err = cli("validate", _training(tmp_path / "sl.yaml", MOVING_WITH_DROP_OUTS, aggregation="sync",
                                             schemes=["sl"]))
    assert code == 2 and "simulation.dropout_probability" in err and "every round of sl" in err


@pytest.mark.parametrize("scheme", ["fl", "sfl"])
def test_a_round_of_some_users_is_fedavg_of_those_users(scheme):
    """run_round(r, users): the FedAvg of those users' trainings — bit for bit a round of a trainer in
    which the other users hold no data (an independent path: they are skipped for having no batch)."""
    import torch

    from splitsim.learning import apply_lora, build_model, specs_from_config
    from splitsim.learning.data import synthetic_task
    from splitsim.learning.train import FederatedTrainer, TrainSettings
    from splitsim.scenarios import parse_scenario

    scenario = parse_scenario({"model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 16,
                                         "cut_layers": [1]}})
    data = synthetic_task("text", 128, 2, seed=1, vocab_size=1000, sequence_length=16)
    parts = [np.arange(32 * k, 32 * (k + 1)) for k in range(4)]
    settings = TrainSettings(scheme=scheme, cuts=(1,), batch_size=8, optimizer="adamw", lr_user=3e-3, lr_edge=3e-3,
                             lr_cloud=3e-3, local_steps=2, seed=5)

    def trainer(parts):
        torch.manual_seed(0)
        spec, lora = specs_from_config(scenario.model)
        model, arch = build_model(spec)
        return FederatedTrainer(apply_lora(model, arch, lora), arch, spec.task, settings, data, data, parts, None,
                                torch.device("cpu"))

    some = trainer(parts)
    emptied = trainer([p if k in (0, 2) else p[:0] for k, p in enumerate(parts)])
    log_some = some.run_round(0, np.array([2, 0]))
    log_emptied = emptied.run_round(0)
    assert log_some.train_loss == log_emptied.train_loss and log_some.samples == 64
    for group, state in some.global_state.items():
        other = emptied.global_state[group]
        assert all(torch.equal(state[k], other[k]) for k in state), group
    everyone = trainer(parts)
    everyone.run_round(0)
    assert any(not torch.equal(everyone.global_state[g][k], some.global_state[g][k])
               for g in some.global_state for k in some.global_state[g])


def test_a_stale_update_is_applied_with_its_weight_and_the_server_step(tmp_path):
    """The server step on one stale update (user 1 trained from version 0, arriving at version 1):
    x2 = x1 + server_lr · (1 + 1)^-a · (local − x0), computed here in float64 from the local state
    user 1 reaches from x0 (a second trainer where that update is fresh, so its step is the local
    state itself)."""
    import torch

    from splitsim.learning import apply_lora, build_model, specs_from_config
    from splitsim.learning.data import synthetic_task
    from splitsim.learning.train import FederatedTrainer, TrainSettings
    from splitsim.scenarios import parse_scenario

    scenario = parse_scenario({"model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 16,
                                         "cut_layers": [1]}})
    data = synthetic_task("text", 64, 2, seed=1, vocab_size=1000, sequence_length=16)
    parts = [np.arange(0, 32), np.arange(32, 64)]
    settings = TrainSettings(scheme="fl", cuts=(1,), batch_size=8, optimizer="adamw", lr_user=3e-3, lr_edge=3e-3,
                             lr_cloud=3e-3, local_steps=2, seed=5)

    def trainer():
        torch.manual_seed(0)
        spec, lora = specs_from_config(scenario.model)
        model, arch = build_model(spec)
        return FederatedTrainer(apply_lora(model, arch, lora), arch, spec.task, settings, data, data, parts, None,
                                torch.device("cpu"))

    a, exponent, server_lr = 0.7, 0.7, 0.5
    stale = trainer()
    x0 = {k: v.clone() for k, v in stale.global_state["whole"].items()}
    stale.fedbuff_step(0, [(0, 0)], keep={0}, rounds_per_version=0.5, staleness_exponent=exponent, server_lr=server_lr)
    x1 = {k: v.clone() for k, v in stale.global_state["whole"].items()}
    stale.fedbuff_step(1, [(1, 0)], keep=set(), rounds_per_version=0.5, staleness_exponent=exponent,
                       server_lr=server_lr)
    fresh = trainer()
    fresh.fedbuff_step(0, [(1, 0)], keep=set(), rounds_per_version=0.5, staleness_exponent=0.0, server_lr=1.0)
    local = fresh.global_state["whole"]  # user 1's first training from x0, as a fresh single update
    assert any(not torch.equal(local[k], x0[k]) for k in x0)
    for key in x0:
        expected = x1[key].double() + server_lr * 2.0 ** -a * (local[key].double() - x0[key].double())
        assert torch.allclose(stale.global_state["whole"][key].double(), expected, rtol=0, atol=1e-7), key


@pytest.mark.parametrize("training, field", [
    ({"aggregation": "fedbuff", "schemes": ["sfl", "fl"]}, "training.schemes"),
    ({"aggregation": "fedbuff", "staleness_exponent": -1}, "training.staleness_exponent"),
    ({"aggregation": "fedbuff", "server_lr": 0}, "training.server_lr"),
    ({"aggregation": "fedbuff", "buffer_size": 3, "concurrency": 2}, "training.buffer_size"),
])
def test_bad_fedbuff_training_is_one_line_and_exit_2(tmp_path, cli, training, field):
    code, _, err = cli("validate", _training(tmp_path / "bad.yaml", **training))
    assert code == 2 and field in err and "Traceback" not in err, err


# ---- study async_vs_sync ---------------------------------------------------------------------------

def _study(path, **study):
    data = {"name": "tiny-async", "seed": 1, "scheme": "fl", "cell": {"users": 4},
            "model": {"source": "bert-tiny", "batch_size": 8, "sequence_length": 16, "cut_layers": [1]},
            "training": {"dataset": "synthetic", "rounds": 3, "lr": 3e-3, "synthetic_samples": 256,
                         "partitions": ["iid"], "concurrency": 3},
            "study": {"kind": "async_vs_sync", "buffer_sizes": [2], "target_accuracy": 0.6, **study}}
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.slow
def test_async_vs_sync_is_train_of_each_variant_and_reads_its_time_to_target_from_the_curve(tmp_path, cli,
                                                                                             monkeypatch):
    """Each variant's curve is what `splitsim train` gives for that aggregation (sync; FedBuff with
    buffer 2 of 3 at once), its staleness counts those of the FedBuff schedule `splitsim train`
    writes, and its time to target the simulated time of the first evaluation at or above it."""
    import pandas as pd

    monkeypatch.setenv("SPLITSIM_CACHE_DIR", str(tmp_path / "cache"))
    code, out, err = cli("run", _study(tmp_path / "s.yaml"), "--out", tmp_path / "study", "--no-progress")
    assert code == 0, err
    curves = pd.read_csv(tmp_path / "study" / "curves.csv")
    results = pd.read_csv(tmp_path / "study" / "async_vs_sync.csv").set_index("variant")
    staleness = pd.read_csv(tmp_path / "study" / "staleness.csv")
    assert list(results.index) == ["sync", "fedbuff_2"]
    columns = ["round", "eval_loss", "eval_accuracy", "simulated_time_s"]
    for variant, training in (("sync", {"aggregation": "sync"}),
                              ("fedbuff_2", {"aggregation": "fedbuff", "buffer_size": 2, "concurrency": 3})):
        path = _training(tmp_path / f"{variant}.yaml", **training)
        assert cli("train", path, "--out", tmp_path / variant, "--no-progress")[0] == 0
        trained = pd.read_csv(tmp_path / variant / "rounds.csv")[columns]
        mine = curves[curves["variant"] == variant][columns].reset_index(drop=True)
        assert np.allclose(mine.to_numpy(), trained.to_numpy(), rtol=1e-12), variant
        hit = mine[mine["eval_accuracy"] >= 0.6]
        expected = hit["simulated_time_s"].iloc[0] if len(hit) else float("inf")
        assert results.loc[variant, "time_to_target_s"] == pytest.approx(expected)
        # smoothed: the mean over a round's worth of updates (4 users: 1 sync evaluation, 2 of buffer 2)
        evaluations = 1 if variant == "sync" else 2
        smooth = mine["eval_accuracy"].rolling(evaluations, min_periods=1).mean()
        hit = mine[smooth >= 0.6]
        expected = hit["simulated_time_s"].iloc[0] if len(hit) else float("inf")
        assert results.loc[variant, "time_to_target_smoothed_s"] == pytest.approx(expected)
    updates = pd.read_csv(tmp_path / "fedbuff_2" / "updates_iid.csv")
    assert staleness["updates"].tolist() == np.bincount(updates["staleness"]).tolist()
    assert results.loc["fedbuff_2", "staleness_mean"] == pytest.approx(updates["staleness"].mean())
    assert (tmp_path / "study" / "async_vs_sync.png").is_file() and "fedbuff_2" in out


@pytest.mark.parametrize("changes, field", [
    ({"study": {"kind": "async_vs_sync", "buffer_sizes": [4]}}, "study.buffer_sizes"),
    ({"scheme": "sfl"}, "scheme"),
    ({"training": {"dataset": "synthetic", "partitions": ["iid", "dirichlet"]}}, "training.partitions"),
    ({"study": {"kind": "async_vs_sync", "target_accuracy": 1.2}}, "study.target_accuracy"),
    ({"simulation": {"participants_per_round": 2}}, "simulation.participants_per_round"),
])
def test_what_async_vs_sync_cannot_run_is_one_line_and_exit_2(tmp_path, cli, changes, field):
    data = yaml.safe_load(_study(tmp_path / "s.yaml").read_text())
    data.update(changes)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and field in err and "Traceback" not in err, err


def test_async_vs_sync_runs_on_a_moving_cell_where_trainings_drop_out(tmp_path, cli):
    """A moving cell with drop-outs is what the study is for: validate accepts it (both variants are
    simulated there; the synchronous rounds average the users the simulator delivered)."""
    data = yaml.safe_load(_study(tmp_path / "s.yaml").read_text())
    data.update(MOVING_WITH_DROP_OUTS)
    path = tmp_path / "moving.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 0, err


def test_the_convergence_study_refuses_fedbuff(tmp_path, cli):
    data = yaml.safe_load(_training(tmp_path / "t.yaml", aggregation="fedbuff").read_text())
    data.update({"scheme": "sfl", "study": {"kind": "convergence"}})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and "training.aggregation" in err and "Traceback" not in err, err


@pytest.mark.slow
def test_an_interrupted_fedbuff_training_resumes_to_the_same_result(tmp_path, cli, monkeypatch):
    """Stopped after two server steps (its checkpoint holds the versions later updates start on) and
    run again, FedBuff training ends exactly as an uninterrupted run."""
    import pandas as pd
    import torch

    from splitsim.analysis import train_run

    path = _training(tmp_path / "fb.yaml", aggregation="fedbuff", buffer_size=2, concurrency=3)
    assert cli("train", path, "--out", tmp_path / "straight", "--no-progress")[0] == 0
    original = train_run.train_one
    calls = {"n": 0}

    def stop_after_two(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            kwargs["until"] = lambda rows: len(rows) >= 2
        return original(*args, **kwargs)

    monkeypatch.setattr(train_run, "train_one", stop_after_two)
    assert cli("train", path, "--out", tmp_path / "resumed", "--no-progress")[0] == 0  # stops after 2 steps
    assert len(pd.read_csv(tmp_path / "resumed" / "rounds.csv")) == 2
    assert cli("train", path, "--out", tmp_path / "resumed", "--no-progress")[0] == 0  # resumes at step 2
    columns = ["round", "train_loss", "eval_loss", "eval_accuracy", "simulated_time_s", "staleness_mean"]
    a = pd.read_csv(tmp_path / "straight" / "rounds.csv")[columns]
    b = pd.read_csv(tmp_path / "resumed" / "rounds.csv")[columns]
    assert a.equals(b)
    x, y = _global_state(tmp_path / "straight"), _global_state(tmp_path / "resumed")
    assert all(torch.equal(x[k], y[k]) for k in x)


def _docs_async_rows(name: str, marker: str):
    """(the committed results of study run `name`, the rows of docs/studies/async_vs_sync.md's table
    between <!-- marker --> and <!-- /marker -->), each row checked against its result number for number."""
    import pandas as pd

    from helpers import REPO

    results = pd.read_csv(REPO / "scenarios" / "data" / name / "async_vs_sync.csv")
    page = (REPO / "docs" / "studies" / "async_vs_sync.md").read_text()
    block = page.split(f"<!-- {marker} -->")[1].split(f"<!-- /{marker} -->")[0]
    rows = [line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:]]
    assert [r[0] for r in rows] == list(results["variant"])
    for row, r in zip(rows, results.itertuples()):
        reached = np.isfinite(r.time_to_target_s)
        smoothed = f"{r.time_to_target_smoothed_s:.1f}" if np.isfinite(r.time_to_target_smoothed_s) else "never"
        assert row[1:] == [str(r.buffer_size),
                           f"{r.time_to_target_s:.1f}" if reached else f"not in {r.simulated_s:.1f}",
                           f"{int(r.updates_to_target)}" if reached else "–", smoothed,
                           f"{r.best_accuracy:.3f}", f"{r.staleness_mean:.2f} / {r.staleness_max} / {100 * r.share_fresh:.0f} %",
                           f"{r.train_wall_s / 60:.0f}"]
    return results


def test_the_docs_async_vs_sync_table_is_the_committed_runs():
    """docs/studies/async_vs_sync.md's table is scenarios/data/async_vs_sync_mrpc/async_vs_sync.csv, the
    output of `splitsim run scenarios/async_vs_sync_mrpc.yaml` (copied there by
    `bash scripts/make_examples.sh --with-training`), number for number, and so are the README's words."""
    from helpers import REPO

    results = _docs_async_rows("async_vs_sync_mrpc", "async-vs-sync-table")
    by = results.set_index("variant")
    readme = (REPO / "README.md").read_text()
    sync, five, two = by.loc["sync"], by.loc["fedbuff_5"], by.loc["fedbuff_2"]
    for words in (f"{five.time_to_target_s:.1f} s of simulated time against synchronous FedAvg's "
                  f"{sync.time_to_target_s:.1f} s (−{100 * (1 - five.time_to_target_s / sync.time_to_target_s):.0f} %",
                  f"{two.staleness_mean:.1f} versions stale) it needs "
                  f"{100 * (two.updates_to_target / sync.updates_to_target - 1):.0f} % more updates",
                  f"({two.time_to_target_s:.1f} s on one evaluation;"):
        assert words in readme.replace("\n", " "), words

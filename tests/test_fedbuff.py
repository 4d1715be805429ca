"""FL with buffered asynchronous aggregation (training.aggregation: fedbuff; netsim.protocols.fedbuff):
its two engines against each other, against synchronous FL in SimPy (buffer = concurrency = all users),
and against closed forms on deterministic schedules; bad input at validate."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from splitsim.netsim import FlPlan, run_plan
from splitsim.netsim.engine import EventLog
from splitsim.netsim.protocols.fedbuff import FedBuffPlan, run_fedbuff, run_fedbuff_event_list
from splitsim.netsim.simulate import run_protocol
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


def _both(plan):
    _, simpy_run, simpy_log, _ = run_protocol(run_fedbuff, plan, SimulationConfig())
    log = EventLog()
    listed = run_fedbuff_event_list(plan, log)
    return simpy_run, listed, simpy_log, log


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
    ({"scheme": "sfl"}, "training.aggregation"),
    ({"study": {"kind": "scheme_comparison"}}, "training.aggregation"),
    ({"channel": {"fading": "rayleigh", "coherence_time_s": 0.05}}, "channel.coherence_time_s"),
    ({"simulation": {"rounds": 2, "dropout_probability": 0.1}}, "simulation.dropout_probability"),
])
def test_what_fedbuff_cannot_simulate_is_one_line_and_exit_2(tmp_path, cli, changes, field):
    data = yaml.safe_load(yaml.safe_dump(TINY))
    data.update(changes)
    path = tmp_path / "fb.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and field in err and "Traceback" not in err, err


@pytest.mark.slow
def test_the_docs_fedbuff_numbers_are_what_the_sweep_gives(tmp_path, cli):
    import pandas as pd

    from helpers import REPO

    code, _, err = cli("sweep", REPO / "scenarios" / "fl_fedbuff_mrpc.yaml", "--set",
                       "training.aggregation=sync,fedbuff", "--out", tmp_path / "out", "--no-progress")
    assert code == 0, err
    results = pd.read_csv(tmp_path / "out" / "results.csv").set_index("training.aggregation")
    page = (REPO / "docs" / "studies" / "simulate.md").read_text()
    block = page.split("<!-- fedbuff-numbers -->")[1].split("<!-- /fedbuff-numbers -->")[0]
    rows = dict(line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:])
    assert {k: float(v) for k, v in rows.items()} == {k: round(float(results.loc[k, "delay_fl_s"]), 1)
                                                      for k in ("sync", "fedbuff")}

"""Test helpers: run the CLI in-process, build small scenarios."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from splitsim.scenarios import Scenario, parse_scenario

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SPLITSIM_SHARED_DIR", REPO.parent / "shared"))  # the data folder beside the repo


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `splitsim ARGS` in this process; return (exit status, stdout, stderr)."""
    from splitsim.analysis.cli import main

    old = sys.argv
    sys.argv = ["splitsim", *map(str, args)]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def small_scenario(**sections) -> Scenario:
    """A quick SFL scenario (few users, few rounds) with sections overridden by keyword."""
    data = {"name": "test", "seed": 1, "cell": {"users": 6}, "workload": {"dataset_samples": 600},
            "theory": {"epsilon0": 0.2}}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_scenario(data)


def integrated_transfer_s(bits: float, start_s: float, bandwidth_hz: float, c_hz: float, track, k: int) -> float:
    """Seconds to send `bits` from `start_s` on a moving cell, integrated here block by block over the
    track's gain factors of user k (Shannon's rate on `bandwidth_hz` at c = g·p/N0 times the factor):
    the oracle the engines' transfers on a ChannelTrack are held against."""
    import numpy as np

    from splitsim.scenarios import fdma_rate_bps

    left, t, block = bits, start_s, track.block_s
    while True:
        b = int(np.floor(t / block))
        rate = float(fdma_rate_bps(bandwidth_hz, c_hz * track.factor(np.array([b]), np.array([k]))[0]))
        room = ((b + 1) * block - t) * rate
        if room >= left:
            return t + left / rate - start_s
        left, t = left - room, (b + 1) * block


def assert_same_fedbuff_runs(a, b, log_a, log_b) -> None:
    """Two FedBuff runs (netsim.protocols.fedbuff: SimPy and the event list) are the same run: updates in
    order (to 1e-12 in time), drops, end, busy and wasted time per user and kind, activity records."""
    import numpy as np
    import pytest

    assert [u[:4] for u in a.updates] == [u[:4] for u in b.updates]
    assert np.allclose([u[4] for u in a.updates], [u[4] for u in b.updates], rtol=1e-12, atol=0)
    assert a.dropped == b.dropped and a.end_s == pytest.approx(b.end_s, rel=1e-12)
    assert np.allclose(a.accounts.busy_s, b.accounts.busy_s, rtol=1e-12, atol=1e-15)
    assert np.allclose(a.accounts.wasted_s, b.accounts.wasted_s, rtol=1e-12, atol=1e-15)
    assert sorted(log_a.rows) == sorted(log_b.rows)


def fedbuff_both_engines(plan):
    """(SimPy run, event-list run, SimPy's log, the event list's log) of one FedBuff plan."""
    from splitsim.netsim.engine import EventLog
    from splitsim.netsim.protocols.fedbuff import run_fedbuff, run_fedbuff_event_list
    from splitsim.netsim.simulate import run_protocol
    from splitsim.scenarios import SimulationConfig

    _, simpy_run, simpy_log, _ = run_protocol(run_fedbuff, plan, SimulationConfig())
    log = EventLog()
    listed = run_fedbuff_event_list(plan, log)
    return simpy_run, listed, simpy_log, log


def assert_fedbuff_of_everyone_trains_as_sync(cli, tmp_path, write_scenario, scheme: str, same_times: bool) -> dict:
    """`splitsim train` of the scenario `write_scenario(path, **training)` writes, synchronously and with
    FedBuff (buffer = concurrency = all users, no staleness weighting): every round's loss and accuracy,
    and every trained adapter group, equal bit for bit; with `same_times`, the simulated times too (FL:
    both on equal shares; synchronous SFL is simulated on its optimised bandwidths, FedBuff's on equal
    shares). Returns FedBuff's trainer checkpoint."""
    import pandas as pd
    import torch

    runs, states = {}, {}
    for name, aggregation in (("sync", {"aggregation": "sync"}),
                              ("fedbuff", {"aggregation": "fedbuff", "staleness_exponent": 0.0})):
        code, _, err = cli("train", write_scenario(tmp_path / f"{name}.yaml", **aggregation), "--out", tmp_path / name,
                           "--no-progress")
        assert code == 0, err
        runs[name] = pd.read_csv(tmp_path / name / "rounds.csv")
        states[name] = torch.load(tmp_path / name / "checkpoints" / f"{scheme}-iid.pt", weights_only=False)["trainer"]
    columns = ["round", "train_loss", "eval_loss", "eval_accuracy", "eval_f1"]
    assert runs["sync"][columns].equals(runs["fedbuff"][columns])
    if same_times:
        assert (runs["sync"]["simulated_time_s"] - runs["fedbuff"]["simulated_time_s"]).abs().max() <= \
            1e-12 * runs["sync"]["simulated_time_s"].abs().max()
    assert (runs["fedbuff"]["staleness_mean"] == 0).all()
    for group, a in states["sync"]["global_state"].items():
        b = states["fedbuff"]["global_state"][group]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), group
    return states["fedbuff"]

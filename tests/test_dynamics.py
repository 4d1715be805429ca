"""A cell that moves and users who come and go (issue 12): each option against a case with a known
answer, the vectorised engine against SimPy, PRBs against the 3GPP table, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import yaml

from splitsim.analysis import realise
from splitsim.netsim import simulate_sfl
from splitsim.netsim.dynamics import ChannelTrack
from splitsim.netsim.participation import SyntheticAvailability
from splitsim.optimizer import equal_bandwidth_allocation
from splitsim.optimizer.prb import PRBS_PER_CHANNEL, allocation_in_prbs, prb_bandwidth_hz, round_to_prbs
from splitsim.scenarios import SimulationConfig, rng_for

from helpers import small_scenario


def _sim(scenario, world, alloc, engine="auto", rng_stream="simulation", **sim):
    cfg = SimulationConfig(engine=engine, **sim)
    return simulate_sfl(world.inputs, alloc, cfg, scenario.radio, scenario.channel, world.channel,
                        rng_for(scenario.seed, rng_stream), cell=scenario.cell)


def _world(users=8, seed=1, **channel):
    scenario = small_scenario(seed=seed, cell={"users": users}, channel=channel)
    world = realise(scenario)
    return scenario, world, equal_bandwidth_allocation(world.inputs, 0.3)


def _events(result):
    frame = result.events_frame()
    frame["node"] = frame["node"].astype(str)
    return frame.sort_values(["round", "user", "time_s", "kind"]).reset_index(drop=True)


DYNAMIC_CASES = [
    ({}, {"downlink": True, "max_rounds": 3}),
    ({"fading": "rayleigh", "coherence_time_s": 0.3}, {"max_rounds": 3}),
    ({"fading": "rician", "coherence_time_s": 0.2, "mobility_speed_mps": 30.0}, {"max_rounds": 3, "downlink": True}),
    ({}, {"participants_per_round": 4, "dropout_probability": 0.3, "max_rounds": 5,
          "straggler_probability": 0.2}),
    ({"fading": "rayleigh", "coherence_time_s": 0.5}, {"round_deadline_s": 2.0, "max_rounds": 5,
                                                       "availability_mean_on_s": 8.0, "availability_mean_off_s": 4.0}),
]


@pytest.mark.parametrize("seed", range(len(DYNAMIC_CASES)))
def test_vectorised_engine_equals_simpy_on_random_scenarios(seed):
    channel, sim = DYNAMIC_CASES[seed]
    rng = np.random.default_rng(seed)
    scenario, world, alloc = _world(users=int(rng.integers(3, 12)), seed=seed, **channel)
    a = _sim(scenario, world, alloc, "simpy", **sim)
    b = _sim(scenario, world, alloc, "vectorised", **sim)
    assert (a.engine, b.engine) == ("simpy", "vectorised")
    assert b.total_delay_s == pytest.approx(a.total_delay_s, rel=1e-9)
    for name in ("compute_s", "uplink_s", "downlink_s", "busy_s", "wasted_s", "round_end_s"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9, atol=1e-12, err_msg=name)
    for part in ("critical_user", "mean_over_users"):
        assert b.breakdown()[part] == pytest.approx(a.breakdown()[part], rel=1e-9, abs=1e-12)
    ea, eb = _events(a), _events(b)
    assert len(ea) == len(eb) > 0
    for col in ("time_s", "duration_s", "bits"):
        np.testing.assert_allclose(eb[col], ea[col], rtol=1e-9, atol=1e-12, err_msg=col)
    for col in ("node", "kind", "user", "round"):
        assert (ea[col].astype(str) == eb[col].astype(str)).all(), col


def test_everyone_every_round_and_a_loose_deadline_reproduce_the_static_run():
    scenario, world, alloc = _world(users=7)
    static = _sim(scenario, world, alloc, "simpy", max_rounds=4)
    slowest_round = float(np.diff(static.round_end_s, prepend=0.0).max())
    for extra in ({"participants_per_round": 7}, {"round_deadline_s": 1.01 * slowest_round},
                  {"participants_per_round": 7, "round_deadline_s": 1e6, "dropout_probability": 0.0}):
        for engine in ("simpy", "vectorised"):
            run = _sim(scenario, world, alloc, engine, max_rounds=4, **extra)
            assert run.total_delay_s == static.total_delay_s, extra
            assert run.participation_summary()["wasted_user_s"] == 0.0
            assert (run.round_updates == 7).all()
            pd.testing.assert_frame_equal(_events(run), _events(static))


def test_a_frozen_track_is_the_static_channel():
    """coherence_time_s with no fading and no motion: the rate never changes, so the block-by-block
    integration must give bits / rate (rounding aside) whatever the block length."""
    scenario, world, alloc = _world(users=5)
    static = _sim(scenario, world, alloc, max_rounds=3)
    for block in (0.01, 0.37, 50.0):
        s2 = small_scenario(seed=1, cell={"users": 5}, channel={"coherence_time_s": block})
        moving = _sim(s2, realise(s2), alloc, max_rounds=3)
        assert moving.total_delay_s == pytest.approx(static.total_delay_s, rel=1e-9)


def test_a_deadline_cuts_rounds_and_counts_the_waste():
    scenario, world, alloc = _world(users=6)
    static = _sim(scenario, world, alloc, max_rounds=3)
    user_round_s = static.compute_s + static.uplink_s  # per user over 3 rounds
    deadline = float(np.median(user_round_s) / 3)
    for engine in ("simpy", "vectorised"):
        run = _sim(scenario, world, alloc, engine, max_rounds=3, round_deadline_s=deadline)
        np.testing.assert_allclose(np.diff(run.round_end_s, prepend=0.0), deadline, rtol=1e-12)
        late = user_round_s / 3 > deadline
        assert (run.round_updates == (~late).sum()).all()
        np.testing.assert_allclose(run.wasted_s[late], 3 * deadline, rtol=1e-9)  # busy until cut off, every round
        assert (run.wasted_s[~late] == 0).all()


def test_dropouts_and_sampling_follow_their_probabilities():
    scenario, world, alloc = _world(users=20)
    run = _sim(scenario, world, alloc, max_rounds=200, participants_per_round=10, dropout_probability=0.25,
               record_events=False)
    assert (run.round_participants == 10).all()
    joined = run.rounds_joined
    trials = 10 * run.round_participants.size
    assert joined.sum() == trials
    assert st.chisquare(joined).pvalue > 1e-3  # uniform sampling: each user in about half the rounds
    dropped = trials - run.round_updates.sum()
    assert st.binomtest(int(dropped), trials, 0.25).pvalue > 1e-3


def test_synthetic_availability_is_online_its_stationary_share():
    avail = SyntheticAvailability(2000, 30.0, 10.0, np.random.default_rng(0))
    share = [float(np.mean(avail.online_until(t) > t)) for t in np.arange(0, 2000, 50.0)]
    assert np.mean(share) == pytest.approx(0.75, abs=0.01)


def test_fading_distributions_match_scipy():
    """Independent oracles: Rayleigh power is exponential(1); Rician amplitude is scipy's rice law."""
    for fading, k_db in (("rayleigh", 0.0), ("rician", 6.0)):
        s = small_scenario(cell={"users": 400}, channel={"fading": fading, "rician_k_factor_db": k_db,
                                                        "coherence_time_s": 1.0})
        world = realise(s)
        track = ChannelTrack(world.channel, s.channel, s.cell, np.random.default_rng(5))
        power = track.factor(np.repeat(np.arange(40), 400), np.tile(np.arange(400), 40))
        assert power.mean() == pytest.approx(1.0, abs=5 * power.std() / np.sqrt(power.size))
        if fading == "rayleigh":
            assert st.kstest(power, st.expon().cdf).pvalue > 1e-3
        else:
            k = 10 ** (k_db / 10)
            nu, sigma = np.sqrt(k / (k + 1)), np.sqrt(1 / (2 * (k + 1)))
            assert st.kstest(np.sqrt(power), st.rice(nu / sigma, scale=sigma).cdf).pvalue > 1e-3


def test_random_waypoint_users_move_at_their_speed_inside_the_cell():
    speed, block = 10.0, 0.5
    s = small_scenario(cell={"users": 50}, channel={"coherence_time_s": block, "mobility_speed_mps": speed,
                                                   "shadowing_sigma_db": 8.0, "shadowing_decorrelation_m": 20.0})
    world = realise(s)
    track = ChannelTrack(world.channel, s.channel, s.cell, np.random.default_rng(2))
    walk = track._walk(400)  # (blocks, K, 2)
    assert np.abs(walk).max() <= s.cell.side_m / 2 + 1e-9
    steps = np.linalg.norm(np.diff(walk, axis=0), axis=2)
    assert steps.max() <= speed * block + 1e-9
    assert np.median(steps) == pytest.approx(speed * block)  # straight legs: every step is v·Tc


def test_shadowing_decorrelates_with_the_distance_walked():
    """Gudmundson: after d metres the shadowing keeps correlation exp(-d / d_corr) and its sigma."""
    speed, block, d_corr = 10.0, 0.01, 20.0
    s = small_scenario(cell={"users": 3000}, channel={"coherence_time_s": block, "mobility_speed_mps": speed,
                                                     "shadowing_sigma_db": 8.0, "shadowing_decorrelation_m": d_corr})
    track = ChannelTrack(realise(s).channel, s.channel, s.cell, np.random.default_rng(4))
    track._ensure(63)
    first = track._shadow_db.copy()
    track._ensure(64)  # 64 more blocks: 6.4 m further
    second = track._shadow_db
    assert np.corrcoef(first, second)[0, 1] == pytest.approx(np.exp(-64 * speed * block / d_corr), abs=0.04)
    assert second.std() == pytest.approx(8.0, rel=0.05)


def test_prbs_per_channel_are_3gpp_table_5_3_2_1():
    # the figures: 20 MHz -> 106 / 51 / 24 PRBs at 15 / 30 / 60 kHz
    assert [PRBS_PER_CHANNEL[scs][20] for scs in (15, 30, 60)] == [106, 51, 24]
    assert PRBS_PER_CHANNEL[30][100] == 273 and PRBS_PER_CHANNEL[15][5] == 25
    for scs, table in PRBS_PER_CHANNEL.items():  # what is not in PRBs is guard band: 2 ... 21 %
        for mhz, n in table.items():
            assert 0.79 < n * prb_bandwidth_hz(scs) / (mhz * 1e6) < 0.985, (scs, mhz)


def test_prb_rounding_keeps_the_budget_and_stays_within_one_prb():
    rng = np.random.default_rng(3)
    for _ in range(50):
        users = int(rng.integers(1, 60))
        b = 20e6 * rng.dirichlet(np.full(users, rng.choice([0.5, 20.0])))
        n = round_to_prbs(b, 20e6, 106)
        quota = 106 * b / 20e6
        assert n.sum() == 106 and (n >= 1).all()
        if (quota >= 1).all():  # no floor of one to pay for: Hamilton's method, within one PRB of the quota
            assert (np.abs(n - quota) < 1).all()
            assert (n == np.floor(quota)).sum() + (n == np.ceil(quota)).sum() >= users
    scenario, world, alloc = _world(users=10)
    rounded = allocation_in_prbs(world.inputs, alloc, 15)  # equal bandwidth: 106 = 6 x 11 + 4 x 10
    assert sorted(rounded.details["prb"]["prbs_main"].tolist()) == [10] * 4 + [11] * 6
    assert rounded.T_s > alloc.T_s and rounded.details["prb"]["rounding_cost_relative"] > 0


def test_streamed_and_round_level_events_hold_the_same_totals(tmp_path):
    scenario, world, alloc = _world(users=6)
    chunks = []
    streamed = simulate_sfl(world.inputs, alloc, SimulationConfig(max_rounds=3), scenario.radio, scenario.channel,
                            world.channel, world.simulation_rng(), cell=scenario.cell, events_sink=chunks.append)
    whole = _sim(scenario, world, alloc, max_rounds=3)
    assert len(chunks) == 3 and streamed.total_delay_s == whole.total_delay_s
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True).astype({"node": str}),
                                  whole.events_frame().astype({"node": str}))
    per_round = _sim(scenario, world, alloc, max_rounds=3, event_detail="round").events_frame()
    assert len(per_round) < len(whole.events_frame())
    assert per_round["duration_s"].sum() == pytest.approx(whole.events_frame()["duration_s"].sum(), rel=1e-12)
    assert per_round["bits"].sum() == pytest.approx(whole.events_frame()["bits"].sum(), rel=1e-12)


def _write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


TINY = {"name": "dyn", "seed": 3, "cell": {"users": 6}, "workload": {"dataset_samples": 600},
        "theory": {"epsilon0": 0.2}}


def test_robustness_study_writes_table_plot_and_report(cli, tmp_path):
    data = {**TINY, "channel": {"fading": "rayleigh", "coherence_time_s": 0.2, "mobility_speed_mps": 5.0},
            "radio": {"subcarrier_spacing_khz": 30},
            "simulation": {"participants_per_round": 5, "dropout_probability": 0.1},
            "study": {"kind": "robustness", "seeds": 3}}
    path = _write(tmp_path, "r.yaml", data)
    out = tmp_path / "out"
    code, stdout, err = cli("run", path, "--out", out)
    assert code == 0, err
    runs = pd.read_csv(out / "robustness_runs.csv")
    assert len(runs) == 4 * 3 and set(runs["strategy"]) == {"proposed", "EB", "FE", "BA"}
    table = pd.read_csv(out / "robustness.csv")
    fastest = runs.groupby("strategy")["simulated_s"].min().reindex(table["strategy"]).to_numpy()
    assert (table["simulated_worst_s"] >= table["simulated_p95_s"]).all()
    assert (table["simulated_p95_s"] >= fastest).all()
    assert (runs["simulated_s"] != runs["planned_s"]).all()  # the cell moved
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["prb_rounding_cost_relative"]) == {"proposed", "EB", "FE", "BA"}
    assert (out / "robustness.png").stat().st_size > 10_000 and "Planned against simulated" in \
        (out / "report.md").read_text()


@pytest.mark.parametrize("change, field", [
    ({"channel": {"mobility_speed_mps": -1.0, "coherence_time_s": 1.0}}, "channel.mobility_speed_mps"),
    ({"channel": {"mobility_speed_mps": 5000.0, "coherence_time_s": 1.0}}, "channel.mobility_speed_mps"),
    ({"channel": {"coherence_time_s": 0.0}}, "channel.coherence_time_s"),
    ({"channel": {"coherence_time_s": 1.0}, "study": {"kind": "delay_energy"}}, "channel.coherence_time_s"),
    ({"channel": {"mobility_speed_mps": 3.0}}, "channel"),
    ({"study": {"kind": "robustness"}}, "study.kind"),
    ({"simulation": {"participants_per_round": 9}}, "simulation.participants_per_round"),
    ({"simulation": {"round_deadline_s": 1e-6}}, "simulation.round_deadline_s"),
    ({"simulation": {"availability_trace": "missing.csv"}}, "simulation.availability_trace"),
    ({"radio": {"subcarrier_spacing_khz": 60, "uplink_main_bandwidth_hz": 7e6}}, "radio.uplink_main_bandwidth_hz"),
    ({"cell": {"users": 30}, "radio": {"subcarrier_spacing_khz": 60}}, "cell.users"),
])
def test_bad_dynamics_are_one_line_exit_2_at_validate(cli, tmp_path, change, field):
    data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in TINY.items()}
    for key, value in change.items():
        data[key] = {**data.get(key, {}), **value}
    code, _, err = cli("validate", _write(tmp_path, "bad.yaml", data))
    assert code == 2, err
    assert field in err and "Traceback" not in err


@pytest.mark.parametrize("content, says", [
    ("user,start\n0,1\n", "header user,start_s,end_s"),
    ("user,start_s,end_s\n0,0,10\n9,0,5\n", "outside 0 ... K-1"),
    ("user,start_s,end_s\n0,5,2\n", "start_s < end_s"),
    ("user,start_s,end_s\n0,0,10\n0,5,20\n", "overlapping"),
    ("user,start_s,end_s\n0,zero,10\n", "not a finite number"),
])
def test_bad_availability_traces_are_refused_before_the_run(cli, tmp_path, content, says):
    trace = tmp_path / "trace.csv"
    trace.write_text(content)
    path = _write(tmp_path, "t.yaml", {**TINY, "simulation": {"availability_trace": str(trace)}})
    code, _, err = cli("simulate", path, "--out", tmp_path / "out")
    assert code == 2 and says in err and "simulation.availability_trace" in err, err
    assert not (tmp_path / "out" / "summary.json").exists()


def test_a_trace_user_offline_all_along_never_trains(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("user,start_s,end_s\n2,1e9,1000000001\n4,0,0.5\n4,3,1e9\n")
    scenario = small_scenario(seed=1, cell={"users": 6}, simulation={"availability_trace": str(trace)})
    world = realise(scenario)
    alloc = equal_bandwidth_allocation(world.inputs, 0.3)
    for engine in ("simpy", "vectorised"):
        run = _sim(scenario, world, alloc, engine, max_rounds=4, availability_trace=str(trace))
        assert run.rounds_joined[2] == 0 and run.busy_s[:, 2].sum() == 0
        assert run.round_participants[0] == 5  # user 2 offline; user 4 online at t = 0
        assert run.wasted_s[4] > 0  # user 4 goes offline at 0.5 s, mid-round


def test_min_max_prbs_are_no_slower_than_rounding_and_optimal_on_a_tiny_cell():
    """Brute force over every split of a small PRB pool (the other pool fixed): the greedy is optimal."""
    import itertools

    from splitsim.optimizer import optimise
    from splitsim.optimizer.prb import _PrbDelays, min_max_prbs

    scenario = small_scenario(seed=2, cell={"users": 4})
    world = realise(scenario)
    alloc = optimise(world.inputs, scenario.optimizer.model_copy(update={"strategies": ["proposed"]}))["proposed"]
    prb_hz, pool = prb_bandwidth_hz(15), 12
    n_main, n_fed = min_max_prbs(world.inputs, alloc, pool, 4, prb_hz)  # the fed pool: one PRB each
    delay = _PrbDelays(world.inputs, alloc, prb_hz)
    best = min(float(delay(np.array(split), n_fed).max())
               for split in itertools.product(range(1, pool), repeat=4) if sum(split) == pool)
    assert float(delay(n_main, n_fed).max()) == pytest.approx(best, rel=1e-12)
    rounded = allocation_in_prbs(world.inputs, alloc, 15, "largest_remainder")
    greedy = allocation_in_prbs(world.inputs, alloc, 15, "min_max")
    assert greedy.T_s <= rounded.T_s and greedy.T_s >= alloc.T_s * (1 - 1e-12)


def test_fl_rounds_with_users_who_come_and_go_against_their_closed_form():
    """FL through the shared round driver: everyone = the barrier form; a deadline cuts every round at
    min(deadline, slowest); a drop-out trains a uniform number of batches and never uploads."""
    from splitsim.netsim import FlPlan, run_plan
    from splitsim.netsim.participation import Participation
    from splitsim.scenarios import ChannelConfig

    rng = np.random.default_rng(3)
    rounds, users = 5, 7
    batches = rng.integers(1, 6, users)
    up = rng.uniform(0.5, 2.0, (rounds, users))
    base = dict(rounds=rounds, batches=batches, train_s=0.3, adapter_up_s=up, adapter_down_s=None, adapter_bits=8e6)
    per_user = batches[None, :] * 0.3 + up  # (R, K) each user's round
    everyone = SimulationConfig(participants_per_round=users)
    plan = FlPlan(**base, participation=Participation(everyone, batches, np.random.default_rng(0)))
    run = run_plan(plan, everyone, ChannelConfig())
    assert run.total_delay_s == pytest.approx(per_user.max(axis=1).sum(), rel=1e-12)
    assert (run.round_updates == users).all() and run.wasted_s.sum() == 0

    deadline = float(np.median(per_user))
    cut = SimulationConfig(round_deadline_s=deadline)
    run = run_plan(FlPlan(**base, participation=Participation(cut, batches, np.random.default_rng(0))), cut,
                   ChannelConfig())
    assert run.total_delay_s == pytest.approx(np.minimum(per_user.max(axis=1), deadline).sum(), rel=1e-12)
    np.testing.assert_array_equal(run.round_updates, (per_user <= deadline).sum(axis=1))
    np.testing.assert_allclose(run.wasted_s, np.where(per_user > deadline, deadline, 0.0).sum(axis=0), rtol=1e-12)

    drops = SimulationConfig(dropout_probability=0.5)
    run = run_plan(FlPlan(**base, participation=Participation(drops, batches, np.random.default_rng(1))), drops,
                   ChannelConfig())
    assert 0 < run.round_updates.sum() < rounds * users
    frame = run.events_frame()
    uploads = frame[frame["kind"] == "uplink_adapter"].groupby("round").size()
    np.testing.assert_array_equal(uploads.reindex(range(rounds), fill_value=0), run.round_updates)
    trained = frame[frame["kind"] == "client_train"].groupby(["round", "user"]).size()
    dropped = trained[trained < batches[trained.index.get_level_values("user")]]
    assert len(dropped) + run.round_updates.sum() <= rounds * users  # a drop-out stops short of its epoch


@pytest.mark.parametrize("scheme", ["fl", "sl"])
def test_fl_and_sl_on_a_time_varying_channel_from_a_profile(scheme):
    from splitsim.analysis.schemes import run_scheme

    model = {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32, "cut_layers": [1]}

    def fl(**channel):
        return run_scheme(realise(small_scenario(scheme=scheme, cell={"users": 6}, workload={"dataset_samples": 192},
                                                 model=model, channel=channel, simulation={"rounds": 3})), scheme)

    static = fl().result
    frozen = fl(coherence_time_s=0.01).result  # no fading, no motion: the same rates, block by block
    assert frozen.total_delay_s == pytest.approx(static.total_delay_s, rel=1e-9)
    fading = fl(coherence_time_s=0.01, fading="rayleigh").result
    assert fading.total_delay_s != pytest.approx(static.total_delay_s, rel=1e-6)
    np.testing.assert_allclose(fading.compute_s, static.compute_s, rtol=1e-12)  # only the transfers change


def test_sl_turns_with_users_who_come_and_go_against_their_closed_form():
    """SL: users in turn. Everyone = the sum of the turns; a deadline ends the round there (later
    turns skipped, the cut one wasted); a drop-out hands the model on after a partial epoch."""
    from splitsim.netsim import SlPlan, run_plan
    from splitsim.netsim.participation import Participation
    from splitsim.scenarios import ChannelConfig

    rng = np.random.default_rng(5)
    rounds, users = 4, 5
    batches = rng.integers(1, 5, users)
    up = rng.uniform(0.1, 0.4, (rounds, users))
    adapter = rng.uniform(0.2, 0.5, (rounds, users))
    base = dict(rounds=rounds, batches=batches, user_forward_s=0.05, user_backward_s=0.1, server_s=0.2, uplink_s=up,
                downlink_gradient_s=None, user_adapter_up_s=adapter, user_adapter_down_s=None,
                bits={"activation": 1e6, "gradient": 1e6, "user_adapter": 1e5})
    turn = batches[None, :] * (0.05 + 0.1 + 0.2 + up) + adapter  # (R, K)

    def run(sim, seed=0):
        return run_plan(SlPlan(**base, participation=Participation(sim, batches, np.random.default_rng(seed))), sim,
                        ChannelConfig())

    everyone = run(SimulationConfig(participants_per_round=users))
    assert everyone.total_delay_s == pytest.approx(turn.sum(), rel=1e-12)
    assert (everyone.round_updates == users).all()
    deadline = float(turn.sum(axis=1).min() * 0.6)
    cut = run(SimulationConfig(round_deadline_s=deadline))
    assert cut.total_delay_s == pytest.approx(rounds * deadline, rel=1e-12)
    done = (np.cumsum(turn, axis=1) <= deadline).sum(axis=1)  # turns finished in each round
    np.testing.assert_array_equal(cut.round_updates, done)
    assert cut.wasted_s.sum() == pytest.approx(sum(deadline - np.cumsum(turn[r])[done[r] - 1] if done[r] else deadline
                                                   for r in range(rounds)), rel=1e-9)
    drops = run(SimulationConfig(dropout_probability=0.5), seed=2)
    assert drops.total_delay_s < turn.sum() and 0 < drops.round_updates.sum() < rounds * users


def test_an_fl_deadline_no_user_can_meet_is_refused_before_the_run():
    from splitsim.netsim import FlPlan, NetsimError, run_plan
    from splitsim.scenarios import ChannelConfig

    plan = FlPlan(rounds=2, batches=np.array([3, 4]), train_s=1.0, adapter_up_s=np.ones((2, 2)), adapter_down_s=None,
                  adapter_bits=1e6)
    with pytest.raises(NetsimError, match="fastest needs 4 s") as err:
        run_plan(plan, SimulationConfig(round_deadline_s=3.5), ChannelConfig())
    assert err.value.field == "simulation.round_deadline_s"


def test_splitllm_turns_with_users_who_come_and_go():
    """Everyone every round reproduces the static SplitLLM run exactly; a deadline stops the users'
    work there (the edges then forward what they hold); a frozen track is the static channel."""
    from splitsim.analysis.schemes import run_scheme

    model = {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32, "cut_layers": [1, 2]}

    def splitllm(**sections):
        return run_scheme(realise(small_scenario(scheme="splitllm", cell={"users": 6, "edge_servers": 2},
                                                 workload={"dataset_samples": 192}, model=model,
                                                 **{k: v for k, v in sections.items() if k != "simulation"},
                                                 simulation={"rounds": 3, **sections.get("simulation", {})})),
                          "splitllm").result

    static = splitllm()
    everyone = splitllm(simulation={"participants_per_round": 6})
    assert everyone.total_delay_s == pytest.approx(static.total_delay_s, rel=1e-12)
    assert (everyone.round_updates == 6).all()
    pd.testing.assert_frame_equal(_events(everyone), _events(static))
    frozen = splitllm(channel={"coherence_time_s": 0.01})
    assert frozen.total_delay_s == pytest.approx(static.total_delay_s, rel=1e-9)
    rounds = np.diff(static.round_end_s, prepend=0.0)
    deadline = float(rounds.min() * 0.5)
    cut = splitllm(simulation={"round_deadline_s": deadline})
    assert (cut.round_updates < 6).all() and cut.wasted_s.sum() > 0
    users_work = cut.events_frame().query("user >= 0")
    starts = np.concatenate([[0.0], cut.round_end_s[:-1]])
    assert (users_work["end_s"].to_numpy() <= starts[users_work["round"].to_numpy()] + deadline + 1e-9).all()


def test_round_level_events_for_an_epoch_scheme():
    from splitsim.netsim import FlPlan, run_plan
    from splitsim.scenarios import ChannelConfig

    plan = FlPlan(rounds=2, batches=np.array([3, 4]), train_s=1.0, adapter_up_s=np.ones((2, 2)), adapter_down_s=None,
                  adapter_bits=1e6)
    rows = run_plan(plan, SimulationConfig(event_detail="round"), ChannelConfig()).events_frame()
    train = rows[rows["kind"] == "client_train"].set_index(["round", "user"])
    assert train["activities"].tolist() == [3, 4, 3, 4] and train["duration_s"].tolist() == [3.0, 4.0, 3.0, 4.0]


def test_editing_a_trace_file_is_a_new_run(tmp_path):
    """The run's identity includes the contents of the trace it reads, not only its name."""
    from splitsim.analysis.outputs import scenario_digest

    trace = tmp_path / "trace.csv"
    trace.write_text("user,start_s,end_s\n0,0,5\n")
    scenario = small_scenario(simulation={"availability_trace": str(trace)})
    before = scenario_digest(scenario)
    trace.write_text("user,start_s,end_s\n0,0,6\n")
    assert scenario_digest(scenario) != before


def _compositions(total: int, parts: int):
    """Every way of giving `parts` users at least one of `total` PRBs each, all PRBs used."""
    import itertools

    for cuts in itertools.combinations(range(1, total), parts - 1):
        bounds = (0, *cuts, total)
        yield np.diff(bounds)


def test_min_max_prbs_with_two_pools_equal_brute_force():
    """#22.8: both pools free. The greedy missed the optimum in 4 of 300 small cells (up to 1.8 %);
    the exact search must equal brute force over every split of both pools in every cell."""
    from splitsim.optimizer import optimise
    from splitsim.optimizer.prb import _greedy_min_max, _PrbDelays, min_max_prbs

    prb_hz = prb_bandwidth_hz(15)
    rng = np.random.default_rng(8)
    greedy_worse = 0
    for seed in range(120):
        users = int(rng.integers(2, 4))
        scenario = small_scenario(seed=seed, cell={"users": users})
        world = realise(scenario)
        alloc = optimise(world.inputs, scenario.optimizer.model_copy(update={"strategies": ["proposed"]}))["proposed"]
        pools = int(rng.integers(users, 10)), int(rng.integers(users, 10))
        delay = _PrbDelays(world.inputs, alloc, prb_hz)
        best = min(float(delay(m, f).max()) for m in _compositions(pools[0], users)
                   for f in _compositions(pools[1], users))
        n_main, n_fed = min_max_prbs(world.inputs, alloc, *pools, prb_hz)
        assert n_main.sum() == pools[0] and n_fed.sum() == pools[1] and n_main.min() >= 1 and n_fed.min() >= 1
        assert float(delay(n_main, n_fed).max()) == pytest.approx(best, rel=1e-11), seed
        greedy = float(delay(*_greedy_min_max(delay, users, *pools)).max())
        greedy_worse += greedy > best * (1 + 1e-9)
    assert greedy_worse > 0  # the cells include ones where the greedy alone is not optimal

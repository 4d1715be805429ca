"""FL's adapter uplink planned once, robustly and re-planned (issue 25): the min-max bandwidths
against cvxpy (a solver the planner does not use), the re-planned run against the plan-once run
and against each round's prediction, and bad input."""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pandas as pd
import pytest
import yaml

from splitsim.analysis import realise
from splitsim.analysis.replan import _fl_busy, fl_allocations, fl_replan_spec
from splitsim.netsim import build_fl_plan, run_plan
from splitsim.optimizer.fl_bandwidth import fl_min_max_bandwidth
from splitsim.scenarios import fdma_rate_bps, parse_scenario, rng_for

from helpers import run_cli

LN2 = np.log(2.0)
TINY = {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32}
FL_STRATEGIES = ["EB", "proposed", "robust", "proposed_replan"]


def _data(**change) -> dict:
    """An FL robustness scenario of 6 walking users in Rayleigh fading, a tiny BERT; sections updated by `change`."""
    data = {"name": "fl_move", "seed": 3, "scheme": "fl", "cell": {"users": 6}, "workload": {"dataset_samples": 256},
            "model": TINY, "channel": {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.5},
            "optimizer": {"strategies": FL_STRATEGIES}, "simulation": {"rounds": 3, "participants_per_round": 5},
            "study": {"kind": "robustness", "seeds": 2}}
    for section, value in change.items():
        if value is None:
            data.pop(section, None)
        else:
            data[section] = {**data[section], **value} if isinstance(data.get(section), dict) else value
    return data


def _scenario(channel=None, optimizer=None, simulation=None):
    """A frozen channel unless `channel` says otherwise (re-planning then sees no change)."""
    return parse_scenario(_data(channel=channel or {"fading": "none", "coherence_time_s": None,
                                                    "mobility_speed_mps": 0},
                                optimizer={"replan_solve_s": 0.02, **(optimizer or {})},
                                simulation={"rounds": 4, "straggler_probability": 0.0, **(simulation or {})}))


def _run(world, plan, stream="robustness/0", replan=True):
    sc = world.scenario
    spec = fl_replan_spec(world, plan) if replan else None
    fl = build_fl_plan(world.profile, sc.compute, sc.radio, sc.simulation, sc.channel, world.channel,
                       world.batches_per_round(), rng_for(sc.seed, stream), cell=sc.cell,
                       bandwidth_hz=plan.bandwidth_hz, replan=spec)
    return run_plan(fl, sc.simulation, sc.channel), fl


def _cvxpy_min_max(busy_s, bits, c_hz, band_hz):
    """min P s.t. busy_k + t_k <= P, t_k >= bits / (b_k log2(1 + c_k/b_k)), sum b <= B (MHz, s)."""
    k = busy_s.size
    b, t, P = cp.Variable(k), cp.Variable(k), cp.Variable()
    c = c_hz / 1e6
    cons = [busy_s + t <= P, bits * LN2 / 1e6 * cp.inv_pos(t) <= -cp.rel_entr(b, b + c), cp.sum(b) <= band_hz / 1e6]
    cp.Problem(cp.Minimize(P), cons).solve(solver=cp.CLARABEL)
    return float(P.value)


def test_min_max_bandwidths_equal_cvxpy_and_finish_everyone_together():
    rng = np.random.default_rng(4)
    k = 12
    busy = rng.uniform(0.0, 3.0, k)
    c = 10 ** rng.uniform(5.5, 8.5, k)
    bits, band = 2.4e6, 10e6
    b, round_s = fl_min_max_bandwidth(busy, bits, c, band)
    assert b.sum() == pytest.approx(band, rel=1e-12)
    np.testing.assert_allclose(round_s, busy + bits / fdma_rate_bps(b, c), rtol=1e-12)
    assert np.ptp(round_s) < 1e-9 * round_s.max()  # all finish together
    assert round_s.max() == pytest.approx(_cvxpy_min_max(busy, bits, c, band), rel=1e-6)
    equal = busy + bits / fdma_rate_bps(np.full(k, band / k), c)
    assert round_s.max() < equal.max()


def test_fl_strategies_on_a_frozen_channel():
    """EB's prediction is its run; proposed's run is its min-max prediction; robust = proposed;
    re-planning never re-solves and reproduces the plan-once run exactly."""
    scenario = _scenario()
    world = realise(scenario)
    plans = fl_allocations(world)
    assert np.array_equal(plans["robust"].bandwidth_hz, plans["proposed"].bandwidth_hz)
    assert np.array_equal(plans["proposed_replan"].bandwidth_hz, plans["proposed"].bandwidth_hz)
    for name in ("EB", "proposed"):  # every round's slowest participant is at most the planned slowest user
        result, _ = _run(world, plans[name], replan=False)
        assert result.total_delay_s <= plans[name].T_s * (1 + 1e-12)
    full = _scenario(simulation={"participants_per_round": 6})  # everyone, drawn each round
    full_world = realise(full)
    full_plans = fl_allocations(full_world)
    for name in ("EB", "proposed"):
        result, _ = _run(full_world, full_plans[name], replan=False)
        assert result.total_delay_s == pytest.approx(full_plans[name].T_s, rel=1e-12)
    once, _ = _run(world, plans["proposed_replan"], replan=False)
    again, _ = _run(world, plans["proposed_replan"])
    assert again.total_delay_s == once.total_delay_s
    np.testing.assert_array_equal(again.round_end_s, once.round_end_s)
    np.testing.assert_array_equal(again.busy_s, once.busy_s)
    assert again.extra["replan_solves"] == 0 and again.extra["replan_checks"] == 4


@pytest.mark.parametrize("users", ["all", "participants"])
def test_perfect_csi_every_round_each_round_is_its_prediction_and_cvxpys_optimum(users):
    """Also when the base station plans for each round's participants only (4 of 6: the others get 0 Hz)."""
    scenario = _scenario(channel={"redraw_each_round": True, "coherence_time_s": None, "mobility_speed_mps": 0},
                         simulation={"participants_per_round": None if users == "all" else 4, "rounds": 5,
                                     "downlink": False},
                         optimizer={"replan_csi": "full", "replan_interval_s": None, "replan_users": users})
    world = realise(scenario)
    plan = fl_allocations(world)["proposed_replan"]
    sc = world.scenario
    fl = build_fl_plan(world.profile, sc.compute, sc.radio, sc.simulation, sc.channel, world.channel,
                       world.batches_per_round(), rng_for(sc.seed, "robustness/0"), cell=sc.cell,
                       bandwidth_hz=plan.bandwidth_hz, replan=fl_replan_spec(world, plan))
    rep, seen = fl.replan, {}
    original = rep.before_round

    def spy(plan_, r, now, participants, work, agg):
        hold = original(plan_, r, now, participants, work, agg)
        seen[r] = (participants.copy(), rep.bands[0].copy(), hold)
        return hold

    rep.before_round = spy
    result = run_plan(fl, sc.simulation, sc.channel)
    rounds = np.diff(np.concatenate([[0.0], result.round_end_s]))
    np.testing.assert_allclose(rounds, np.asarray(rep.predicted_round_s), rtol=1e-9)
    assert result.extra["replan_solves"] == (4 if users == "all" else 5)  # participants: round 0's set too
    busy = _fl_busy(world, "none")(np.ones(scenario.cell.users))
    from splitsim.netsim.channel import round_gain_factors
    factors = round_gain_factors(world.channel, scenario.channel, 5, rng_for(scenario.seed, "robustness/0"))
    for r in (1, 3):
        who, band, hold = seen[r]
        assert band[who].sum() == pytest.approx(scenario.radio.uplink_fed_bandwidth_hz, rel=1e-9)
        assert np.all(np.delete(band, who) == 0)
        want = _cvxpy_min_max(busy[who], float(fl.adapter_bits), (world.channel.snr_coeff_hz * factors[r])[who],
                              scenario.radio.uplink_fed_bandwidth_hz)
        assert rounds[r] - hold == pytest.approx(want, rel=1e-6)


def _write(tmp_path, data) -> str:
    path = tmp_path / "fl.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_fl_robustness_study_runs_its_strategies(tmp_path, capsys):
    data = _data(optimizer={"replan_solve_s": 0.001, "replan_interval_s": 0.05})
    code, out, err = run_cli(["run", _write(tmp_path, data), "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "robustness.csv").set_index("strategy")
    assert set(table.index) == set(FL_STRATEGIES)
    assert table.loc["proposed_replan", "replan_solves"] > 0
    assert (table["simulated_mean_s"] > 0).all()


@pytest.mark.parametrize("change, field", [
    ({"optimizer": {"strategies": ["EB", "FE"]}}, "optimizer.strategies"),
    ({"optimizer": {"strategies": ["EB", "BA"]}}, "optimizer.strategies"),
    ({"model": None}, "model"),
])
def test_fl_robustness_bad_input_is_one_line_at_validate(tmp_path, capsys, change, field):
    code, out, err = run_cli(["validate", _write(tmp_path, _data(**change))], capsys)
    assert code == 2, out + err
    assert field in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("change, field", [
    ({"theory": {"epsilon0": 0.2}}, "theory.epsilon0"),
    ({"optimizer": {"fixed_eta": 0.3}}, "optimizer.fixed_eta"),
    ({"radio": {"subcarrier_spacing_khz": 15}}, "radio.subcarrier_spacing_khz"),
])
def test_fl_robustness_fields_without_effect_are_named(tmp_path, capsys, change, field):
    """What FL's robustness does not read: a warning naming it, an error in a sweep (as everywhere)."""
    code, out, err = run_cli(["validate", _write(tmp_path, _data(**change))], capsys)
    assert code == 0 and f"{field}: has no effect" in err, out + err


# ---- FL's adapter shares on the NR link: whole PRBs (issue 33) ---------------------------------------

NR_RADIO = {"link_model": "nr", "subcarrier_spacing_khz": 30, "uplink_fed_bandwidth_hz": 5e6,
            "uplink_main_bandwidth_hz": 5e6, "downlink_bandwidth_hz": 5e6}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fl_min_max_prbs_on_nr_equals_every_split(seed):
    """Three users with random busy times and channels on the 11 PRBs of 5 MHz at 30 kHz: PRB by PRB
    to the slowest gives the least slowest round of all 45 splits (each user at least one PRB)."""
    pytest.importorskip("sionna", reason="the NR link model needs sionna-no-rt")
    from itertools import product

    from splitsim.optimizer.fl_bandwidth import fl_min_max_prbs, fl_round_s
    from splitsim.scenarios.nr_link import NrRate, NrUplink, UplinkSlots

    link = NrRate(NrUplink(30, 0, UplinkSlots("DDDSU", 2, 10)), 360e3)
    rng = np.random.default_rng(seed)
    busy = rng.uniform(0.01, 0.2, 3)
    c = 10 ** rng.uniform(5.5, 8.0, 3) * 360e3 / 1e6  # one-PRB SINR from about 0 to 25 dB
    bits = 2e5
    b, rounds = fl_min_max_prbs(busy, bits, c, 5e6, link)
    assert np.allclose(b / 360e3, np.round(b / 360e3)) and round(b.sum() / 360e3) == 11
    best = min(max(fl_round_s(busy, bits, np.array(n, dtype=float) * 360e3, c, link=link))
               for n in product(range(1, 10), repeat=3) if sum(n) == 11)
    assert rounds.max() == pytest.approx(best, rel=1e-12)
    np.testing.assert_allclose(rounds, fl_round_s(busy, bits, b, c, link=link), rtol=1e-12)


def test_fl_plans_on_nr_are_whole_prbs_and_the_simulator_runs_them():
    """On a frozen NR cell: EB and proposed are whole PRBs of the fed band (proposed no slower than
    EB), and the simulated run of each (all users every round) is its predicted delay."""
    pytest.importorskip("sionna", reason="the NR link model needs sionna-no-rt")
    data = _data(channel={"fading": "none", "coherence_time_s": None, "mobility_speed_mps": 0}, radio=NR_RADIO,
                 optimizer={"strategies": ["EB", "proposed"]}, simulation={"rounds": 3, "participants_per_round": None})
    scenario = parse_scenario({**data, "study": {"kind": "simulate"}})
    world = realise(scenario)
    plans = fl_allocations(world)
    prb = 360e3
    for plan in plans.values():
        assert np.allclose(plan.bandwidth_hz / prb, np.round(plan.bandwidth_hz / prb))
        assert plan.bandwidth_hz.sum() <= 5e6
    assert plans["proposed"].T_s <= plans["EB"].T_s * (1 + 1e-12)
    for plan in plans.values():
        result, _ = _run(world, plan, replan=False)
        assert result.total_delay_s == pytest.approx(plan.T_s, rel=1e-9)


def test_fl_robustness_on_nr_runs_every_strategy(tmp_path, capsys):
    pytest.importorskip("sionna", reason="the NR link model needs sionna-no-rt")
    data = _data(radio=NR_RADIO, optimizer={"replan_solve_s": 0.001, "replan_interval_s": 0.05})
    code, out, err = run_cli(["run", _write(tmp_path, data), "--out", tmp_path / "out"], capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "robustness.csv").set_index("strategy")
    assert set(table.index) == set(FL_STRATEGIES) and table.loc["proposed_replan", "replan_solves"] > 0

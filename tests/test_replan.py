"""Plans that survive a moving cell (issue 25): re-planned and robust allocations against oracles
nobody here wrote (numerical integration, cvxpy's solver, the plan-once run), both engines, and
bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import simpy
from scipy import integrate

from splitsim.analysis import realise
from splitsim.analysis.allocations import world_allocations
from splitsim.analysis.replan import replan_spec
from splitsim.netsim import simulate_sfl
from splitsim.netsim.engine import KIND, EventLog, work_fractions
from splitsim.netsim.protocols.sfl import run_sfl
from splitsim.netsim.simulate import build_sfl_plan
from splitsim.optimizer.allocation import per_round_problem
from splitsim.optimizer.convex import ConvexSolver
from splitsim.optimizer.ergodic import effective_snr_coeff_hz, ergodic_rate_bps
from splitsim.scenarios import fdma_rate_bps, rng_for

from helpers import run_cli, small_scenario

STRATEGIES = ["proposed", "EB", "proposed_replan", "robust"]


def _scenario(channel=None, optimizer=None, simulation=None, users=6, **sections):
    return small_scenario(cell={"users": users}, channel=channel or {},
                          optimizer={"strategies": STRATEGIES, "replan_solve_s": 0.02, **(optimizer or {})},
                          simulation={"engine": "simpy", **(simulation or {})}, study={"kind": "simulate"}, **sections)


def _run(scenario, world, alloc, engine, stream="simulation"):
    sim = scenario.simulation.model_copy(update={"engine": engine})
    return simulate_sfl(world.inputs, alloc, sim, scenario.radio, scenario.channel, world.channel,
                        rng_for(scenario.seed, stream), cell=scenario.cell, replan=replan_spec(world, alloc))


@pytest.mark.parametrize("snr", [1e-3, 0.3, 5.0, 300.0])
def test_ergodic_rayleigh_rate_equals_the_integral_over_the_exponential_fading(snr):
    b = 1e6
    c = snr * b
    want, _ = integrate.quad(lambda h: b * np.log2(1 + snr * h) * np.exp(-h), 0, np.inf, epsabs=0, epsrel=1e-12)
    assert float(ergodic_rate_bps(np.array([b]), np.array([c]), "rayleigh")[0]) == pytest.approx(want, rel=1e-9)
    rician, _ = integrate.quad(  # K = 0 dB: the Rician pdf of |h|^2 (mean 1) against the 512-quantile rule
        lambda h: b * np.log2(1 + snr * h) * 2 * np.exp(-1 - 2 * h) * np.i0(2 * np.sqrt(2 * h)), 0, np.inf)
    assert float(ergodic_rate_bps(np.array([b]), np.array([c]), "rician", 0.0)[0]) == pytest.approx(rician, rel=5e-4)
    r = ergodic_rate_bps(np.array([b]), np.array([c]), "rayleigh")
    assert fdma_rate_bps(b, effective_snr_coeff_hz(np.array([b]), r)) == pytest.approx(r, rel=1e-12)


def test_frozen_channel_replanning_reproduces_the_plan_once_run_exactly():
    scenario = _scenario(simulation={"max_rounds": 4, "downlink": True})
    world = realise(scenario)
    allocations = world_allocations(world)
    once, again = allocations["proposed"], allocations["proposed_replan"]
    np.testing.assert_array_equal(again.b_s_hz, once.b_s_hz)
    for engine in ("simpy", "vectorised"):
        a = _run(scenario, world, once, engine)
        b = _run(scenario, world, again, engine)
        assert b.total_delay_s == a.total_delay_s
        np.testing.assert_array_equal(b.round_end_s, a.round_end_s)
        np.testing.assert_array_equal(b.busy_s, a.busy_s)
        assert b.extra["replan_solves"] == 0 and b.extra["replan_checks"] == 4


def test_robust_plan_on_a_static_channel_is_the_plan_once_answer():
    scenario = _scenario()
    allocations = world_allocations(realise(scenario))
    np.testing.assert_array_equal(allocations["robust"].b_s_hz, allocations["proposed"].b_s_hz)
    np.testing.assert_array_equal(allocations["robust"].b_c_hz, allocations["proposed"].b_c_hz)
    assert allocations["robust"].T_s == allocations["proposed"].T_s


def _per_round_case(engine):
    scenario = _scenario(channel={"redraw_each_round": True, "fading": "rayleigh"},
                         optimizer={"replan_csi": "full"}, simulation={"max_rounds": 5, "engine": engine})
    world = realise(scenario)
    alloc = world_allocations(world)["proposed_replan"]
    return scenario, world, alloc, _run(scenario, world, alloc, engine)


def test_instant_perfect_csi_every_round_makes_each_round_its_own_optimum():
    """Each round's simulated time equals the re-plan's prediction to 1e-9, and that prediction is
    problem (17)'s optimum on that round's channel as cvxpy (Clarabel) finds it."""
    scenario, world, alloc, result = _per_round_case("simpy")
    plan = build_sfl_plan(world.inputs, alloc, scenario.simulation, scenario.radio, scenario.channel, world.channel,
                          rng_for(scenario.seed, "simulation"), scenario.cell, replan_spec(world, alloc))
    starts = np.concatenate([[0.0], result.round_end_s[:-1]])
    simulated = result.round_end_s - starts
    hold = scenario.optimizer.replan_solve_s + scenario.optimizer.replan_signalling_s
    factors = plan.replan.factors
    for r in range(len(simulated)):
        changed = r > 0  # round 0's channel is the planned one: no re-plan, no hold
        inputs_r = dataclasses.replace(world.inputs, snr_coeff_main_hz=world.inputs.snr_coeff_main_hz * factors[r],
                                       snr_coeff_fed_hz=world.inputs.snr_coeff_fed_hz * factors[r])
        optimum = ConvexSolver(world.inputs.users).solve(per_round_problem(inputs_r, alloc.V)).P_s
        assert simulated[r] - (hold if changed else 0.0) == pytest.approx(optimum, rel=1e-6), r
    assert result.extra["replan_solves"] == len(simulated) - 1
    run_sfl(simpy.Environment(), plan, EventLog(enabled=False))
    np.testing.assert_allclose(plan.replan.predicted_round_s, simulated, rtol=1e-9)


def test_replanning_engines_agree():
    for channel, opt in (({"redraw_each_round": True, "fading": "rayleigh"}, {"replan_csi": "full"}),
                         ({"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 20.0},
                          {"replan_interval_s": 0.5}),
                         ({"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 20.0,
                           "csi_delay_s": 0.3, "csi_error_db": 2.0}, {})):
        scenario = _scenario(channel=channel, optimizer=opt,
                             simulation={"max_rounds": 6, "participants_per_round": 4, "dropout_probability": 0.2})
        world = realise(scenario)
        alloc = world_allocations(world)["proposed_replan"]
        a, b = _run(scenario, world, alloc, "simpy"), _run(scenario, world, alloc, "vectorised")
        assert a.extra["replan_solves"] > 0
        assert b.total_delay_s == pytest.approx(a.total_delay_s, rel=1e-9)
        np.testing.assert_allclose(b.busy_s, a.busy_s, rtol=1e-9, atol=1e-12)
        assert b.extra["replan_predicted_s"] == pytest.approx(a.extra["replan_predicted_s"], rel=1e-9)
        ea, eb = a.events_frame(), b.events_frame()
        assert (ea["kind"] == "replan").sum() == (eb["kind"] == "replan").sum() == a.extra["replan_solves"]


def test_a_longer_interval_replans_less_and_a_csi_delay_plans_on_the_old_channel():
    base = {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 20.0}
    solves = []
    for interval in (None, 1.0):
        scenario = _scenario(channel=base, optimizer={"replan_interval_s": interval}, simulation={"max_rounds": 12})
        world = realise(scenario)
        result = _run(scenario, world, world_allocations(world)["proposed_replan"], "vectorised")
        solves.append(result.extra["replan_solves"])
        rounds = np.diff(result.round_end_s, prepend=0.0)
    # every round, the first included: the shadowing's forecast is not the planned channel
    assert solves[0] == 12 and 0 < solves[1] < solves[0], (solves, rounds)


def _write(tmp_path, scenario_text):
    path = tmp_path / "s.yaml"
    path.write_text(scenario_text)
    return str(path)


BASE = """
name: t
seed: 1
cell: {users: 6}
workload: {dataset_samples: 600}
theory: {epsilon0: 0.2}
channel: {fading: rayleigh, coherence_time_s: 0.05, mobility_speed_mps: 1.5%s}
optimizer: {strategies: [proposed, EB, proposed_replan]%s}
study: {kind: %s, seeds: 2}
"""


@pytest.mark.parametrize("channel, optimizer, kind, field, words", [
    ("", ", replan_interval_s: 1e6", "robustness", "optimizer.replan_interval_s", "longer than the run"),
    ("", ", replan_interval_s: 0.001, replan_solve_s: 0.01", "robustness", "optimizer.replan_interval_s",
     "shorter than one re-plan"),
    (", csi_delay_s: 1e6", "", "robustness", "channel.csi_delay_s", "longer than the run"),
    (", csi_delay_s: -1", "", "robustness", "channel.csi_delay_s", "greater than or equal to 0"),
    ("", "", "latency_vs_power", "optimizer.strategies", "only the studies that simulate"),
    ("", ", replan_eta: rechosen, energy_weight: 0.5", "robustness", "optimizer.replan_eta", "energy-aware"),
    ("", ", replan_eta: rechosen", "robustness", "optimizer.replan_eta", "stragglers"),
])
def test_bad_replanning_input_is_one_line_and_exit_2(tmp_path, capsys, channel, optimizer, kind, field, words):
    text = BASE % (channel, optimizer, kind)
    if words == "stragglers":
        text += "simulation: {straggler_probability: 0.1}\n"
    path = _write(tmp_path, text)
    code, out, err = run_cli(["validate", path], capsys)
    assert code == 2, (out, err)
    lines = [line for line in err.splitlines() if field in line]
    assert lines and words in lines[0], err
    assert "Traceback" not in err


def test_replanning_a_static_channel_is_a_warning(tmp_path, capsys):
    text = BASE.replace("channel: {fading: rayleigh, coherence_time_s: 0.05, mobility_speed_mps: 1.5%s}",
                        "channel: {shadowing_sigma_db: 8%s}").replace("study: {kind: %s, seeds: 2}",
                                                                      "study: {kind: %s}")
    path = _write(tmp_path, text % ("", "", "simulate"))
    code, out, err = run_cli(["validate", path], capsys)
    assert code == 0, err
    assert "optimizer.strategies" in err and "static" in err


@pytest.mark.slow
def test_robustness_study_runs_every_variant(tmp_path, capsys):
    text = BASE % ("", ", strategies: [proposed, EB, proposed_replan, robust], replan_solve_s: 0.01", "robustness")
    text = text.replace("optimizer: {strategies: [proposed, EB, proposed_replan], strategies:", "optimizer: {strategies:")
    text += "  replan_intervals_s: [null, 2.0]\n  csi_delays_s: [0, 0.5]\n"
    text = text.replace("study: {kind: robustness, seeds: 2}\n  replan", "study:\n  kind: robustness\n  seeds: 2\n  replan")
    path = _write(tmp_path, text)
    code, out, err = run_cli(["run", path, "--out", str(tmp_path / "out"), "--no-progress"], capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "robustness.csv")
    assert set(table["strategy"]) == {"proposed", "EB", "robust", "replan_every_round", "replan_every_round_csi0p5s",
                                      "replan_2s", "replan_2s_csi0p5s"}
    assert np.isfinite(table["prediction_error"]).all()
    assert (table.set_index("strategy").loc[["replan_every_round"], "replan_solves"] > 0).all()


def test_energy_aware_replanning_keeps_the_plans_powers_and_clocks():
    scenario = _scenario(channel={"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 20.0},
                         optimizer={"energy_weight": 0.5, "strategies": ["proposed", "proposed_replan"]},
                         simulation={"max_rounds": 6})
    world = realise(scenario)
    allocations = world_allocations(world)
    aware, replanned = allocations["proposed"], allocations["proposed_replan"]
    assert aware.power_main_fraction is not None and np.any(aware.power_main_fraction < 1)
    np.testing.assert_array_equal(replanned.power_main_fraction, aware.power_main_fraction)
    np.testing.assert_array_equal(replanned.cpu_fraction, aware.cpu_fraction)
    assert replanned.eta == aware.eta
    a, b = _run(scenario, world, replanned, "simpy"), _run(scenario, world, replanned, "vectorised")
    assert a.extra["replan_solves"] > 0
    assert b.total_delay_s == pytest.approx(a.total_delay_s, rel=1e-9)


# ---- eta re-chosen at every re-solve (optimizer.replan_eta: rechosen) ----------------------------------------------

WALKING = {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 3.0}


def _rechosen(channel=None, optimizer=None, simulation=None, engine="simpy"):
    scenario = _scenario(channel=channel or WALKING,
                         optimizer={"replan_eta": "rechosen", "replan_interval_s": None, **(optimizer or {})},
                         simulation={"engine": engine, **(simulation or {})})
    world = realise(scenario)
    alloc = world_allocations(world)["proposed_replan"]
    plan = build_sfl_plan(world.inputs, alloc, scenario.simulation, scenario.radio, scenario.channel, world.channel,
                          rng_for(scenario.seed, "simulation"), scenario.cell, replan_spec(world, alloc))
    return scenario, world, alloc, plan


def test_rechosen_eta_on_a_channel_that_does_not_move_is_the_fixed_eta_run_exactly():
    still = {"fading": "none", "coherence_time_s": 0.05, "mobility_speed_mps": 0.0}
    runs = {}
    for eta in ("fixed", "rechosen"):
        scenario = _scenario(channel=still, optimizer={"replan_eta": eta, "replan_interval_s": None},
                             simulation={"participants_per_round": 5, "dropout_probability": 0.2})
        world = realise(scenario)
        runs[eta] = _run(scenario, world, world_allocations(world)["proposed_replan"], "vectorised")
    assert runs["rechosen"].total_delay_s == runs["fixed"].total_delay_s
    np.testing.assert_array_equal(runs["rechosen"].round_end_s, runs["fixed"].round_end_s)
    assert runs["rechosen"].extra["replan_solves"] == 0 and runs["rechosen"].extra["replan_eta_changes"] == 0


@pytest.mark.slow
def test_rechosen_eta_engines_agree_and_rounds_make_the_bounds_progress():
    """Both engines to 1e-9 with participation and drop-outs; the rounds run make exactly the
    convergence bound's progress (sum of round work / I0 in force = 1); each round's local
    iterations are V(eta) in force (the event table's forward passes)."""
    sim = {"participants_per_round": 5, "dropout_probability": 0.2}
    results = {}
    for engine in ("simpy", "vectorised"):
        scenario, world, alloc, _ = _rechosen(simulation=sim, engine=engine)
        results[engine] = _run(scenario, world, alloc, engine)
    a, b = results["simpy"], results["vectorised"]
    assert a.extra["replan_eta_changes"] > 0
    assert b.total_delay_s == pytest.approx(a.total_delay_s, rel=1e-9)
    np.testing.assert_allclose(b.round_end_s, a.round_end_s, rtol=1e-9)
    np.testing.assert_allclose(b.busy_s, a.busy_s, rtol=1e-9, atol=1e-12)
    assert b.rounds == a.rounds and a.extra["replan_eta_final"] == b.extra["replan_eta_final"]

    scenario, world, alloc, plan = _rechosen()  # everyone, no drop-outs: every iteration is in the table
    log = EventLog(enabled=True)
    run_sfl(simpy.Environment(), plan, log)
    rep = plan.replan
    changes = {r: (eta, V, I0) for r, eta, V, I0 in rep.eta_history}
    counts, progress = (alloc.eta, alloc.V, alloc.I0), 0.0
    frame = pd.DataFrame(log.rows, columns=["time_s", "duration_s", "node", "kind", "user", "bits", "round"])
    forward = frame[frame["kind"] == KIND["client_forward"]].groupby(["round", "user"]).size()
    for r, work in enumerate(plan.rounds):
        counts = changes.get(r, counts)
        progress += work / counts[2]
        want = len(work_fractions(counts[1]))  # weights are 1 without a model
        assert (forward.loc[r] == want).all(), r
    assert progress == pytest.approx(1.0, abs=1e-12)
    assert len(plan.rounds) == rep.summary()["replan_rounds"]


def test_rechosen_eta_is_the_best_eta_for_the_channel_it_knows():
    """With full CSI and no fading to average, each re-chosen eta minimises I0(eta)·P*(V(eta)) on
    the channel the base station knew; P* by cvxpy (Clarabel), a solver the re-planner does not use."""
    channel = {"fading": "none", "coherence_time_s": 0.05, "mobility_speed_mps": 20.0}
    scenario, world, alloc, plan = _rechosen(channel=channel, optimizer={"replan_csi": "full"},
                                             simulation={"max_rounds": 3})
    run_sfl(simpy.Environment(), plan, EventLog(enabled=False))
    rep = plan.replan
    eta, V, I0 = rep.counts
    assert rep.eta_history and eta != alloc.eta
    known = rep.known
    inputs = dataclasses.replace(world.inputs, snr_coeff_main_hz=world.inputs.snr_coeff_main_hz * known,
                                 snr_coeff_fed_hz=world.inputs.snr_coeff_fed_hz * known)
    solver = ConvexSolver(inputs.users)

    def T(e):
        from splitsim.optimizer.delay_model import counts_for
        v, i0 = counts_for(inputs, e)
        return i0 * solver.solve(per_round_problem(inputs, v)).P_s

    best = T(eta)
    for other in (eta * 0.9, eta * 0.97, min(eta * 1.03, 0.999), min(eta * 1.1, 0.999), 0.5, 0.9):
        assert best <= T(other) * (1 + 1e-6), other
    assert rep.round_s.max() * I0 == pytest.approx(best, rel=1e-6)


def test_robustness_variants_cross_intervals_delays_and_eta():
    from splitsim.analysis.studies.robustness import replan_variants

    scenario = small_scenario(cell={"users": 6}, channel=WALKING,
                              optimizer={"strategies": STRATEGIES, "replan_solve_s": 0.02},
                              study={"kind": "robustness", "seeds": 2, "replan_intervals_s": [None, 2.0],
                                     "replan_etas": ["fixed", "rechosen"]})
    labels = [v[0] for v in replan_variants(scenario)]
    assert labels == ["replan_every_round", "replan_every_round_eta", "replan_2s", "replan_2s_eta"]
    assert [v[3] for v in replan_variants(scenario)] == ["fixed", "rechosen"] * 2


def test_rechosen_eta_in_the_study_needs_a_channel_drawn_as_it_happens(tmp_path, capsys):
    text = BASE.replace("channel: {fading: rayleigh, coherence_time_s: 0.05, mobility_speed_mps: 1.5%s}",
                        "channel: {redraw_each_round: true%s}")
    text = text % ("", "", "robustness") + "  replan_etas: [fixed, rechosen]\n"
    text = text.replace("study: {kind: robustness, seeds: 2}\n  replan_etas", "study:\n  kind: robustness\n  seeds: 2\n"
                        "  replan_etas")
    code, out, err = run_cli(["validate", _write(tmp_path, text)], capsys)
    assert code == 2 and "study.replan_etas" in err and "coherence_time_s" in err, err


# ---- the shadowing's forecast and plans for the round's participants -----------------------------------------------

def test_the_tracks_shadowing_follows_the_gudmundson_law_the_forecast_plans_on():
    """The track's shadowing t seconds on, given its value now: mean rho·S, variance sigma^2 (1 - rho^2),
    rho = exp(-v t / d_corr) (Gudmundson 1991), over 20,000 walking users; the forecast's samples
    are that law's quantiles."""
    from splitsim.netsim.channel import sample_channel
    from splitsim.netsim.dynamics import ChannelTrack
    from splitsim.netsim.replanning import ShadowingForecast
    from splitsim.scenarios import CellConfig, ChannelConfig, RadioConfig

    k, sigma, v, d = 20_000, 8.0, 1.5, 50.0
    cell = CellConfig(users=k, side_m=500, shape="square")
    cfg = ChannelConfig(shadowing_sigma_db=sigma, coherence_time_s=0.05, mobility_speed_mps=v,
                        shadowing_decorrelation_m=d)
    state = sample_channel(cell, cfg, RadioConfig(), np.random.default_rng(7))
    track = ChannelTrack(state, cfg, cell, np.random.default_rng(3))
    users = np.arange(k)
    now = track.shadowing_db(np.zeros(k, dtype=np.int64), users)
    blocks = 200  # 10 s
    later = track.shadowing_db(np.full(k, blocks, dtype=np.int64), users)
    rho = np.exp(-v * blocks * 0.05 / d)
    residual = later - rho * now
    assert abs(residual.mean()) < 4 * sigma * np.sqrt(1 - rho**2) / np.sqrt(k)
    assert residual.var() == pytest.approx(sigma**2 * (1 - rho**2), rel=0.05)
    forecast = ShadowingForecast(sigma, v, d, points=1, quantiles=64)
    samples = forecast.samples(np.ones(3), np.array([-10.0, 0.0, 15.0]), 0.0, 2 * blocks * 0.05)  # one time: 10 s
    change_db = -10 * np.log10(samples)  # S_future - S_now
    np.testing.assert_allclose(change_db.mean(axis=1), (rho - 1) * np.array([-10.0, 0.0, 15.0]), atol=1e-9)
    assert change_db.std(axis=1) == pytest.approx(np.full(3, sigma * np.sqrt(1 - rho**2)), rel=0.03)


def _participants_case(scheme):
    channel = {"redraw_each_round": True, "fading": "rayleigh"}
    optimizer = {"replan_csi": "full", "replan_users": "participants", "replan_interval_s": None}
    simulation = {"max_rounds": 5, "participants_per_round": 4}
    return _scenario(channel=channel, optimizer=optimizer, simulation=simulation)


def test_plans_for_the_rounds_participants_give_the_others_nothing_and_each_round_its_optimum():
    """With perfect, instant CSI and plans for each round's participants: the others get 0 Hz, the
    participants the whole bands, and each round is its prediction (1e-9) and, less the hold,
    problem (17)'s optimum over the participants alone as cvxpy finds it (1e-6)."""
    scenario = _participants_case("sfl")
    world = realise(scenario)
    alloc = world_allocations(world)["proposed_replan"]
    plan = build_sfl_plan(world.inputs, alloc, scenario.simulation, scenario.radio, scenario.channel, world.channel,
                          rng_for(scenario.seed, "simulation"), scenario.cell, replan_spec(world, alloc))
    rep = plan.replan
    seen = {}
    original = rep.before_round

    def spy(plan_, r, now, users, work, agg):
        hold = original(plan_, r, now, users, work, agg)
        seen[r] = (users.copy(), rep.bands[0].copy(), rep.bands[1].copy(), hold)
        return hold

    rep.before_round = spy
    acc = run_sfl(simpy.Environment(), plan, EventLog(enabled=False))
    ends = np.asarray(acc.round_end_s)
    simulated = np.diff(ends, prepend=0.0)
    np.testing.assert_allclose(rep.predicted_round_s, simulated, rtol=1e-9)
    for r, (users, b_s, b_c, hold) in seen.items():
        others = np.setdiff1d(np.arange(world.inputs.users), users)
        assert np.all(b_s[others] == 0) and np.all(b_c[others] == 0)
        assert b_s[users].sum() == pytest.approx(scenario.radio.uplink_main_bandwidth_hz, rel=1e-9)
        sub = world.inputs.of_users(users)
        factor = rep.factors[r][users]
        sub = dataclasses.replace(sub, snr_coeff_main_hz=sub.snr_coeff_main_hz * factor,
                                  snr_coeff_fed_hz=sub.snr_coeff_fed_hz * factor)
        optimum = ConvexSolver(users.size).solve(per_round_problem(sub, alloc.V)).P_s
        assert simulated[r] - hold == pytest.approx(optimum, rel=1e-6), r


def test_the_monte_carlo_prediction_is_the_mean_simulated_round():
    """Users who stand still in Rayleigh block fading, planned once on large-scale CSI: every round
    draws the same law, so the mean simulated round (the engine's block-by-block transfers) must
    equal the prediction (the expected slowest user over 128 draws of the round), within the
    sampling error of both; the slowest expected time ('plan') is well below it."""
    channel = {"fading": "rayleigh", "coherence_time_s": 0.01, "mobility_speed_mps": 0.0}
    results = {}
    for prediction in ("monte_carlo", "plan"):
        scenario = _scenario(channel=channel, optimizer={"replan_prediction": prediction},
                             simulation={"engine": "vectorised"}, theory={"epsilon0": 1e-3})
        world = realise(scenario)
        alloc = world_allocations(world)["proposed_replan"]
        results[prediction] = result = _run(scenario, world, alloc, "vectorised")
        assert result.extra["replan_solves"] == 0
    mc, plan = results["monte_carlo"], results["plan"]
    rounds = np.diff(mc.round_end_s, prepend=0.0)
    assert rounds.size >= 200
    se = rounds.std() / np.sqrt(rounds.size)
    assert mc.extra["replan_predicted_s"] / rounds.size == pytest.approx(rounds.mean(), abs=4 * se + 0.02 * rounds.mean())
    assert plan.extra["replan_predicted_s"] < 0.9 * mc.extra["replan_predicted_s"]


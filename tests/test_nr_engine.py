"""The NR link model (radio.link_model: nr) in the optimiser and both engines, held against the
link curve (itself held against Sionna's tables: test_nr_link.py), a slot-by-slot transfer with
drawn block errors, exhaustive PRB search, and the delay model's closed form."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import yaml

pytest.importorskip("sionna", reason="the NR link model needs sionna-no-rt (pip install 'splitsim[nr]')")

from helpers import small_scenario  # noqa: E402

from splitsim.scenarios.nr_link import NrRate, NrUplink, UplinkSlots  # noqa: E402

PRB_HZ = 360e3  # 30 kHz spacing


@pytest.fixture(scope="module")
def tdd():
    return NrUplink(30, 0, UplinkSlots("DDDSU", 2, 10))


def _nr(**radio):
    return {"link_model": "nr", "subcarrier_spacing_khz": 30, "uplink_main_bandwidth_hz": 10e6,
            "uplink_fed_bandwidth_hz": 10e6, "prb_rule": "min_max", **radio}


def test_the_rate_is_the_best_number_of_prbs_on_the_link_curve(tdd):
    """NrRate(n PRBs, c) = max over m <= n of m PRBs' goodput at the SINR of the power on m PRBs,
    each computed here from NrUplink.curve at that exact SINR (no table). The tables interpolate
    between 0.05 dB grid points, and the goodput jumps where the MCS changes: so the rate lies within
    what the direct computation gives 0.05 dB either side."""
    rate = NrRate(tdd, PRB_HZ)
    from dataclasses import replace

    curves = {m: replace(tdd, n_prb=m) for m in range(1, 9)}
    for y_db in (-1.0, 3.3, 8.0, 17.5, 30.0, 4.21):  # SINR of one PRB with all the power
        c = 10 ** (y_db / 10) * PRB_HZ
        for n in (1, 3, 8):
            around = y_db + np.linspace(-0.05, 0.05, 11)
            direct = np.max([m * PRB_HZ * curves[m].curve(around - 10 * np.log10(m))["goodput_bps_per_hz"]
                             for m in range(1, n + 1)], axis=0)
            got = float(rate.rate_bps(n * PRB_HZ, c))
            assert direct.min() * (1 - 1e-9) <= got <= direct.max() * (1 + 1e-9), (y_db, n, got, direct)
            if np.ptp(direct) == 0:  # no MCS change nearby: equal
                assert got == pytest.approx(direct[5], rel=1e-3), (y_db, n)


def test_the_rate_never_falls_with_prbs_and_is_zero_out_of_coverage(tdd):
    rate = NrRate(tdd, PRB_HZ)
    c = np.geomspace(1e3, 1e11, 400)
    rates = np.stack([rate.rate_bps(n * PRB_HZ, c) for n in range(1, 40)])
    assert np.all(np.diff(rates, axis=0) >= 0)
    edge = rate.least_sinr_db()
    assert -6 < edge < 0  # MCS 0 of the 64QAM table (R = 120/1024, QPSK) at 10 % BLER
    below = 10 ** ((edge - 0.5) / 10) * PRB_HZ
    assert np.all(rate.rate_bps(np.arange(1, 20) * PRB_HZ, below) == 0)
    assert rate.rate_bps(0.5 * PRB_HZ, 1e12) == 0  # less than one PRB carries nothing


@pytest.mark.parametrize("adaptation", ["outer_loop", "inner_loop"])
def test_the_expected_goodput_is_the_mean_of_a_slot_by_slot_transfer(tdd, adaptation):
    """A transfer simulated slot by slot, block errors drawn and, with the outer loop, OLLA's offset
    moved by every ACK and NACK (netsim.nr_slots), takes on average bits / NrRate's rate, where the
    rate uses all the PRBs (high enough SINR): within 1.5 % (the outer loop's stationary regime is
    solved exactly in scenarios.nr_link.olla_stationary; the slots here only draw)."""
    from dataclasses import replace

    from splitsim.netsim.nr_slots import transfer_seconds

    link = replace(tdd, link_adaptation=adaptation)
    rate = NrRate(link, PRB_HZ)
    rng = np.random.default_rng(7)
    n, bits = 10, 2e6
    for sinr_db in (5.0, 12.0, 20.0):
        c = 10 ** (sinr_db / 10) * n * PRB_HZ
        expected_s = bits / float(rate.rate_bps(n * PRB_HZ, c))
        measured = transfer_seconds(replace(link, n_prb=n), bits, sinr_db, rng, draws=200)
        assert measured.mean() == pytest.approx(expected_s, rel=0.015), sinr_db


def test_the_shannon_fit_is_close_where_the_link_delivers(tdd):
    rate = NrRate(tdd, PRB_HZ)
    alpha, gamma = rate.shannon_fit(4)
    assert 0.05 < alpha < 0.4 and 0.5 < gamma < 10
    from splitsim.scenarios.nr_link import CURVE_GRID_DB

    sinr_db = np.arange(0.0, 15.0, 0.5)
    fit = alpha * np.log2(1 + 10 ** (sinr_db / 10) / gamma)
    from dataclasses import replace

    eta = replace(tdd, n_prb=4).curve(sinr_db)["goodput_bps_per_hz"]
    assert np.median(np.abs(fit / eta - 1)) < 0.15 and CURVE_GRID_DB[0] <= sinr_db[0]


def _nr_world(users=3, engine="auto", **radio):
    from splitsim.analysis.world import realise

    scenario = small_scenario(cell={"users": users}, radio=_nr(**radio), optimizer={"fixed_eta": 0.3},
                              study={"kind": "simulate"}, simulation={"engine": engine})
    return scenario, realise(scenario)


def test_min_max_prbs_on_the_nr_link_equal_exhaustive_search():
    """The whole PRBs of both pools that minimise the slowest user's delay on the NR goodput: the
    min-plus programme of optimizer.prb against every split of 9 main and 7 fed PRBs among 3 users."""
    from splitsim.optimizer import optimise
    from splitsim.optimizer.link_plan import surrogate
    from splitsim.optimizer.prb import _PrbDelays, min_max_prbs

    scenario, world = _nr_world(users=3)
    inputs = world.inputs
    alloc = optimise(surrogate(inputs)[0], scenario.optimizer)["proposed"]
    delay = _PrbDelays(inputs, alloc, PRB_HZ)
    n_main, n_fed = min_max_prbs(inputs, alloc, 9, 7, PRB_HZ)
    ours = float(delay(n_main, n_fed).max())

    def splits(total, k):
        for cut in itertools.combinations(range(1, total), k - 1):
            yield np.diff([0, *cut, total])

    best = min(float(delay(np.asarray(m), np.asarray(f)).max()) for m in splits(9, 3) for f in splits(7, 3))
    assert n_main.sum() == 9 and n_fed.sum() == 7
    assert ours == pytest.approx(best, rel=1e-12)


def test_both_engines_give_the_delay_models_answer_on_the_nr_link():
    """Simulated SFL on the NR link (paper mode: no downlink, still channel): SimPy and the
    vectorised engine agree, and both equal the delay model's T on the NR rate (eq. (15))."""
    from splitsim.analysis.allocations import world_allocations
    from splitsim.analysis.simulation import simulate_allocation
    from splitsim.scenarios.types import fdma_rate_bps

    worlds = {engine: _nr_world(users=4, engine=engine)[1] for engine in ("simpy", "vectorised")}
    allocations = world_allocations(worlds["simpy"])
    assert {a.details["link"]["link_model"] for a in allocations.values()} == {"nr"}
    for name, alloc in allocations.items():
        results = {engine: simulate_allocation(w, alloc, progress=False) for engine, w in worlds.items()}
        assert {r.engine for r in results.values()} == {"simpy", "vectorised"}
        assert results["simpy"].total_delay_s == pytest.approx(results["vectorised"].total_delay_s, rel=1e-9), name
        assert results["simpy"].total_delay_s == pytest.approx(alloc.T_s, rel=1e-9), name
        inputs = worlds["simpy"].inputs
        nr_s = inputs.activation_bits / inputs.uplink_rate.rate_bps(alloc.b_s_hz, inputs.snr_coeff_main_hz)
        shannon_s = inputs.activation_bits / fdma_rate_bps(alloc.b_s_hz, inputs.snr_coeff_main_hz)
        assert np.allclose(alloc.t_s_s, nr_s) and np.all(nr_s > 3 * shannon_s)


def test_the_shannon_link_is_the_default_and_unchanged():
    from splitsim.analysis.world import realise
    from splitsim.scenarios.types import SHANNON

    plain = small_scenario()
    explicit = small_scenario(radio={"link_model": "shannon"})
    assert realise(plain).inputs.uplink_rate == SHANNON
    from splitsim.analysis.allocations import world_allocations

    a, b = world_allocations(realise(plain)), world_allocations(realise(explicit))
    for name in a:
        assert a[name].T_s == b[name].T_s and np.array_equal(a[name].b_s_hz, b[name].b_s_hz)


@pytest.mark.parametrize("changes, field", [
    ({"radio": {"link_model": "nr"}}, "radio.subcarrier_spacing_khz"),
    ({"radio": {"prb_rule": "largest_remainder"}}, "radio.prb_rule"),
    ({"study": {"kind": "async_vs_sync"}}, "radio.link_model"),
    ({"study": {"kind": "delay_energy"}, "radio": {"nr": {"power_control": "open_loop"}}}, "radio.nr.power_control"),
    ({"optimizer": {"energy_weight": 0.5}, "radio": {"nr": {"power_control": "open_loop"}}}, "radio.nr.power_control"),
    ({"radio": {"nr": {"bler_target": 1.0}}}, "radio.nr.bler_target"),
    ({"radio": {"nr": {"tdd_pattern": "DDXU"}}}, "radio.nr.tdd_pattern"),
    ({"radio": {"nr": {"special_slot_symbols": [10, 2, 1]}}}, "radio.nr"),
    ({"radio": {"nr": {"mcs_table": "qam1024"}}}, "radio.nr.mcs_table"),
    ({"radio": {"subcarrier_spacing_khz": 60, "uplink_main_bandwidth_hz": 5e6}}, "radio.uplink_main_bandwidth_hz"),
    ({"radio": {"nr": {"power_control": "open_loop", "pathloss_compensation": 0.3}}}, "radio.nr.pathloss_compensation"),
    ({"radio": {"nr": {"power_control": "open_loop", "p0_dbm": 30}}}, "radio.nr.p0_dbm"),
    ({"radio": {"nr": {"power_control": "open_loop"}}, "channel": {"fading": "rayleigh"}}, "radio.nr.power_control"),
    ({"simulation": {"downlink": True}, "radio": {"downlink_bandwidth_hz": 5e6}, "cell": {"users": 30}},
     "radio.downlink_bandwidth_hz"),
])
def test_what_the_nr_link_cannot_run_is_one_line_and_exit_2_at_validate(tmp_path, cli, changes, field):
    data = {"name": "nr", "cell": {"users": 4}, "radio": _nr(), "study": {"kind": "simulate"}}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            merged = {**data[key], **value}
            if key == "radio" and "nr" in value:
                merged["nr"] = value["nr"]
            if value.get("link_model") == "nr" and key == "radio":
                merged = {"link_model": "nr"}
            data[key] = merged
        else:
            data[key] = value
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and field in err and "Traceback" not in err, err


def test_latency_vs_power_on_nr_puts_shannons_answer_beside_it(tmp_path, cli):
    data = {"name": "nr_power", "seed": 3, "cell": {"users": 4}, "workload": {"dataset_samples": 600},
            "theory": {"epsilon0": 0.2}, "radio": _nr(),
            "study": {"kind": "latency_vs_power", "tx_power_dbm": [10, 20]}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, err = cli("run", path, "--out", tmp_path / "out")
    assert code == 0, err
    import json

    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    ratios = summary["link"]["mean_nr_over_shannon"]
    assert set(ratios) == {"proposed", "EB", "FE", "BA"}
    # the TDD uplink share alone (2 of 5 slots' 14 symbols less the special slot's 12) caps NR at
    # 0.23 of the time, the MCS table at 5.55 bit/s/Hz: every delay is several times Shannon's
    assert all(r > 3 for r in ratios.values()), ratios
    assert (tmp_path / "out" / "latency_vs_power_shannon.csv").exists()


@pytest.mark.slow
def test_the_docs_fig2_nr_numbers_are_what_the_study_gives(tmp_path, cli):
    import json

    from helpers import REPO

    code, _, err = cli("run", REPO / "scenarios" / "fig2_nr.yaml", "--out", tmp_path / "out", "--no-progress")
    assert code == 0, err
    link = json.loads((tmp_path / "out" / "summary.json").read_text())["link"]
    at = {(r["tx_power_dbm"], r["strategy"]): r for r in link["per_power"]}
    page = (REPO / "docs" / "nr-link.md").read_text()
    block = page.split("<!-- fig2-nr-table -->")[1].split("<!-- /fig2-nr-table -->")[0]
    rows = [line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:]]
    assert [r[0] for r in rows] == ["proposed", "EB", "FE", "BA"]
    for strategy, nr_s, shannon_s, ratio in rows:
        assert int(nr_s) == round(at[(10.0, strategy)]["T_s_nr"])
        assert int(shannon_s) == round(at[(10.0, strategy)]["T_s_shannon"])
        assert float(ratio) == round(link["mean_nr_over_shannon"][strategy], 2)
    sentence = page.split("<!-- fig2-nr-reductions -->")[1].split("<!-- /fig2-nr-reductions -->")[0]
    nr, shannon = link["nr_mean_reduction_pct"], link["shannon_mean_reduction_pct"]
    assert all(f"{nr[b]:.1f} %" in sentence for b in ("BA", "EB", "FE"))
    assert all(f"{shannon[b]:.1f} %" in sentence for b in ("BA", "EB", "FE"))


@pytest.mark.slow
def test_the_docs_power_control_table_is_what_the_two_runs_give(tmp_path, cli):
    import pandas as pd

    from helpers import REPO

    frames = {}
    for name in ("fig2_nr", "fig2_nr_power_control"):
        code, _, err = cli("run", REPO / "scenarios" / f"{name}.yaml", "--out", tmp_path / name, "--no-progress")
        assert code == 0, err
        frames[name] = pd.read_csv(tmp_path / name / "latency_vs_power.csv").set_index(["tx_power_dbm", "strategy"])
    page = (REPO / "docs" / "nr-link.md").read_text()
    block = page.split("<!-- fig2-nr-power-control-table -->")[1].split("<!-- /fig2-nr-power-control-table -->")[0]
    rows = [line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:]]
    assert len(rows) == 8
    for power, strategy, t_max, t_pc, j_max, j_pc in rows:
        at_max, under = frames["fig2_nr"].loc[(float(power), strategy)], \
            frames["fig2_nr_power_control"].loc[(float(power), strategy)]
        assert (int(t_max), int(t_pc)) == (round(at_max["T_s"]), round(under["T_s"]))
        assert (j_max, j_pc) == (f"{at_max['mean_user_j']:.1f}", f"{under['mean_user_j']:.1f}")


def test_fl_sl_and_splitllm_send_on_whole_prbs_of_the_nr_link():
    """The other schemes on the NR link: FL's users on floor(N_RB / K) PRBs of the fed band each, SL's
    active user on the whole band's N_RB, SplitLLM's edges on floor(N_RB / M) (orthogonal): every
    upload is its bits over the NR goodput of those PRBs (computed here from NrRate and TS 38.101-1's
    N_RB), and each scheme is slower than on Shannon's rate."""
    from splitsim.analysis import realise
    from splitsim.analysis.schemes import run_scheme
    from splitsim.netsim import build_fl_plan, build_sl_plan, build_splitllm_plan
    from splitsim.netsim.schemes import fl_adapter_bits
    from splitsim.scenarios import rng_for
    from splitsim.scenarios.nr_link import link_rates

    tiny = {"source": "bert-tiny", "batch_size": 8, "sequence_length": 32, "cut_layers": [1, 3]}
    common = dict(cell={"users": 6, "edge_servers": 2}, workload={"dataset_samples": 256}, model=tiny,
                  simulation={"rounds": 2}, study={"kind": "simulate"})
    nr = realise(small_scenario(scheme="fl", radio=_nr(max_tx_power_dbm=20), **common))
    sc = nr.scenario
    rate = link_rates(sc.radio)[0]
    batches = nr.batches_per_round()
    fl = build_fl_plan(nr.profile, sc.compute, sc.radio, sc.simulation, sc.channel, nr.channel, batches,
                       rng_for(1, "x"))
    n_rb = 24  # 10 MHz at 30 kHz (TS 38.101-1 Table 5.3.2-1)
    expected = fl_adapter_bits(nr.profile) / rate.rate_bps((n_rb // 6) * PRB_HZ, nr.channel.snr_coeff_hz)
    assert np.allclose(fl.adapter_up_s[0], expected, rtol=1e-12)
    sl = build_sl_plan(nr.profile, 1, sc.compute, sc.radio, sc.simulation, sc.channel, nr.channel, batches,
                       rng_for(1, "x"))
    activation = sl.bits["activation"]
    assert np.allclose(sl.uplink_s[0], activation / rate.rate_bps(n_rb * PRB_HZ, nr.channel.snr_coeff_hz), rtol=1e-12)
    llm = build_splitllm_plan(nr.profile, [1, 3], sc.compute, sc.radio, sc.simulation, sc.channel, nr.edge_link,
                              nr.association, 2, batches, rng_for(1, "x"))
    assert np.allclose(llm.uplink_s[0], activation / rate.rate_bps((n_rb // 2) * PRB_HZ, nr.edge_link.snr_coeff_hz),
                       rtol=1e-12)
    for scheme in ("fl", "sl", "splitllm", "sfl"):
        on_nr = run_scheme(nr, scheme).result.total_delay_s
        shannon_world = realise(sc.model_copy(update={"radio": sc.radio.model_copy(update={"link_model": "shannon"})}))
        assert on_nr > run_scheme(shannon_world, scheme).result.total_delay_s, scheme


def test_the_nr_rate_over_rayleigh_fading_is_its_mean_over_drawn_fades(tdd):
    """NrRate.faded (a 64-quantile midpoint rule of |h|^2, what the re-planner counts on) against the
    mean of the NR rate over 200,000 drawn Rayleigh fades: within 0.5 %."""
    from splitsim.optimizer.ergodic import ergodic_rate_bps

    rate = NrRate(tdd, PRB_HZ)
    rng = np.random.default_rng(11)
    fades = rng.exponential(size=200_000)
    for n, y_db in ((2, 3.0), (8, 12.0), (20, 25.0)):
        c = 10 ** (y_db / 10) * PRB_HZ
        drawn = float(np.mean(rate.rate_bps(n * PRB_HZ, c * fades)))
        assert float(ergodic_rate_bps(n * PRB_HZ, c, "rayleigh", link=rate)) == pytest.approx(drawn, rel=0.005)


def test_a_moving_cell_on_the_nr_link_is_the_same_in_both_engines_and_re_plans_in_whole_prbs():
    """Block fading, walking users and the base station re-planning on the NR link: SimPy and the
    vectorised engine agree to 1e-9 for every strategy, and every re-plan is whole PRBs of both pools."""
    from splitsim.analysis.allocations import world_allocations
    from splitsim.analysis.simulation import simulate_allocation
    from splitsim.analysis.world import realise

    def scenario(engine):
        return small_scenario(cell={"users": 4}, radio=_nr(), optimizer={"fixed_eta": 0.3, "strategies": [
            "proposed", "EB", "proposed_replan"]}, study={"kind": "simulate"},
            channel={"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.5},
            simulation={"engine": engine, "max_rounds": 4})

    worlds = {e: realise(scenario(e)) for e in ("simpy", "vectorised")}
    allocations = world_allocations(worlds["simpy"])
    replanned = allocations["proposed_replan"]
    assert replanned.details["link"]["link_model"] == "nr"
    for name, alloc in allocations.items():
        runs = {e: simulate_allocation(w, alloc, progress=False) for e, w in worlds.items()}
        assert runs["simpy"].total_delay_s == pytest.approx(runs["vectorised"].total_delay_s, rel=1e-9), name
        if name == "proposed_replan":
            assert runs["simpy"].extra["replan_solves"] >= 1
    prbs = replanned.details["prb"]
    assert prbs["prbs_main"].sum() == 24 and prbs["prbs_fed"].sum() == 24


# ---- TS 38.213 open-loop power control ----------------------------------------------------------

def _controlled(tdd, p0_dbm, alpha, max_dbm=23.0, noise=-174.0):
    from splitsim.scenarios.nr_link import OpenLoopPowerControl

    return NrRate(tdd, PRB_HZ, power_control=OpenLoopPowerControl(p0_dbm, alpha, max_dbm, noise, 30))


def _c(path_loss_db, max_dbm=23.0, noise=-174.0):
    return 10 ** ((max_dbm - np.asarray(path_loss_db, dtype=float) - noise) / 10)


@pytest.mark.parametrize("scs_khz", [15, 30, 60])
def test_the_pusch_power_is_ts_38_213s_as_sionna_computes_it(scs_khz):
    """Sionna's open_loop_uplink_power_control (P0 + α·PL + 10·log10 #PRB, capped at P_max) is the
    oracle. TS 38.213 §7.1.1 counts 10·log10(2^μ·M_RB): P0 is per 15 kHz PRB, so a PRB at 2^μ·15 kHz
    gets 2^μ times it; Sionna leaves 2^μ out, so it is given P0 + 10·log10(2^μ)."""
    import torch
    from sionna.sys import open_loop_uplink_power_control

    from splitsim.scenarios.nr_link import PATHLOSS_COMPENSATION_VALUES, pusch_tx_power_dbm

    rng = np.random.default_rng(7)
    path_loss = rng.uniform(70, 150, 300)
    prbs = rng.integers(1, 274, 300)
    mu = {15: 0, 30: 1, 60: 2}[scs_khz]
    for alpha in PATHLOSS_COMPENSATION_VALUES:
        for p0, max_dbm in ((-90.0, 26.0), (-75.0, 10.0), (-110.0, 23.0)):
            ours = pusch_tx_power_dbm(path_loss, prbs, p0, alpha, max_dbm, scs_khz)
            theirs = open_loop_uplink_power_control(
                torch.tensor(10 ** (path_loss / 10), dtype=torch.float64), torch.tensor(12 * prbs),
                alpha=alpha, p0_dbm=p0 + 10 * np.log10(2 ** mu), ut_max_power_dbm=max_dbm, precision="double")
            assert np.allclose(ours, 10 * np.log10(theirs.numpy() * 1e3), atol=1e-9), (alpha, p0)


def test_power_control_that_never_binds_is_the_maximum_power_link(tdd):
    """A user whose one PRB already asks for more than P_max (P0 + α·PL >= P_max) sends at P_max on
    any number of PRBs: the rate is the maximum-power link's, bit for bit, at full power."""
    plain = NrRate(tdd, PRB_HZ)
    path_loss = np.array([120.0, 130.0, 140.0])
    controlled = _controlled(tdd, p0_dbm=-80.0, alpha=1.0)  # -80 + 3 + 120 = 43 dBm > 23
    for n in (1, 5, 20):
        assert np.array_equal(controlled.rate_bps(n * PRB_HZ, _c(path_loss)), plain.rate_bps(n * PRB_HZ, _c(path_loss)))
        assert np.array_equal(controlled.tx_power_fraction(n * PRB_HZ, _c(path_loss)), np.ones(3))


def test_under_power_control_each_prb_is_received_at_p0_and_the_rate_follows_the_link_curve(tdd):
    """Full compensation (α = 1) with power to spare: every PRB is received at P0·2^μ, so the SINR
    is P0 + 10·log10(2^μ) − N0 − 10·log10(PRB) whatever the path loss, and n PRBs deliver n PRBs'
    goodput of the link curve at that SINR (NrUplink.curve, no table: the rate interpolates it
    between 0.1 dB grid points, and it rises with the SINR, so it lies within its values 0.1 dB either
    side); the power the user radiates is TS 38.213's for those PRBs."""
    from dataclasses import replace

    from splitsim.scenarios.nr_link import pusch_tx_power_dbm

    p0 = -110.0
    sinr_db = p0 + 10 * np.log10(2) + 174.0 - 10 * np.log10(PRB_HZ)  # 9.44 dB
    controlled = _controlled(tdd, p0_dbm=p0, alpha=1.0)
    path_loss = np.array([80.0, 95.0, 105.0])  # P0 + 3 + PL + 10·log10(8) <= 7 dBm < 23
    for n in (1, 3, 8):
        low, high = n * PRB_HZ * replace(tdd, n_prb=n).curve(sinr_db + np.array([-0.1, 0.1]))["goodput_bps_per_hz"]
        got = controlled.rate_bps(n * PRB_HZ, _c(path_loss))
        assert np.all((low <= got) & (got <= high)) and np.ptp(got) <= 1e-9 * high, (n, got, low, high)
        power = pusch_tx_power_dbm(path_loss, n, p0, 1.0, 23.0, 30)
        assert np.allclose(controlled.tx_power_fraction(n * PRB_HZ, _c(path_loss)), 10 ** ((power - 23.0) / 10))
    # fractional compensation (α < 1): a far user is received weaker per PRB than a near one
    partial = _controlled(tdd, p0_dbm=-90.0, alpha=0.8)
    near, far = partial.rate_bps(4 * PRB_HZ, _c([90.0, 115.0]))
    assert near > far > 0


def test_power_control_never_raises_the_rate_and_adding_prbs_never_lowers_it(tdd):
    plain = NrRate(tdd, PRB_HZ)
    controlled = _controlled(tdd, p0_dbm=-95.0, alpha=0.8)
    c = _c(np.linspace(70, 150, 300))
    rates = np.stack([controlled.rate_bps(n * PRB_HZ, c) for n in range(1, 30)])
    assert np.all(np.diff(rates, axis=0) >= 0)
    assert np.all(rates <= np.stack([plain.rate_bps(n * PRB_HZ, c) for n in range(1, 30)]) * (1 + 1e-12))


def test_power_control_on_the_nr_link_cuts_the_radiated_energy_and_both_engines_agree():
    """fig2-like cell under open-loop control: both engines give the delay model's T; each user's
    uplink energy is its radiated power (TS 38.213's on its PRBs) times its upload time, below the
    maximum-power run's."""
    from splitsim.analysis.allocations import world_allocations
    from splitsim.analysis.simulation import simulate_allocation
    from splitsim.scenarios.nr_link import pusch_tx_power_dbm

    control = {"nr": {"power_control": "open_loop", "p0_dbm": -90.0, "pathloss_compensation": 0.8}}
    worlds = {engine: _nr_world(users=4, engine=engine, max_tx_power_dbm=23.0, **control)[1]
              for engine in ("simpy", "vectorised")}
    plain = _nr_world(users=4, max_tx_power_dbm=23.0)[1]
    inputs = worlds["simpy"].inputs
    alloc = world_allocations(worlds["simpy"])["EB"]
    results = {engine: simulate_allocation(w, alloc, progress=False) for engine, w in worlds.items()}
    assert results["simpy"].total_delay_s == pytest.approx(results["vectorised"].total_delay_s, rel=1e-9)
    assert results["simpy"].total_delay_s == pytest.approx(alloc.T_s, rel=1e-9)
    channel = worlds["simpy"].channel
    path_loss = channel.path_loss_db + channel.shadowing_db
    p_s = alloc.radiated_powers_and_clock(inputs)[0]
    n = np.floor(alloc.b_s_hz / PRB_HZ + 1e-6)
    radiated_dbm = 23.0 + 10 * np.log10(p_s)
    assert np.all(radiated_dbm <= pusch_tx_power_dbm(path_loss, n, -90.0, 0.8, 23.0, 30) + 1e-9)
    assert np.any(p_s < 1.0)
    plain_alloc = world_allocations(plain)["EB"]
    assert np.all(inputs.uplink_rate.rate_bps(alloc.b_s_hz, inputs.snr_coeff_main_hz)
                  <= plain.inputs.uplink_rate.rate_bps(plain_alloc.b_s_hz, plain.inputs.snr_coeff_main_hz) + 1e-6)

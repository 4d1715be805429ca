"""A user's own allocation strategy (issue 32, item 3): found by name, checked, derived as the
built-ins are, simulated by both engines, usable from the studies and the Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml

import splitsim
from helpers import REPO, small_scenario


def equal_split(problem):
    """BA by hand: every user B / K, eta fixed."""
    k = problem.users
    return {"eta": problem.fixed_eta, "uplink_main_bandwidth_hz": np.full(k, problem.uplink_main_bandwidth_hz / k),
            "uplink_fed_bandwidth_hz": np.full(k, problem.uplink_fed_bandwidth_hz / k)}


@pytest.fixture
def strategies_module(tmp_path, monkeypatch):
    """A module of strategies, importable as `user_strategies` (as from the folder a user runs in)."""
    (tmp_path / "user_strategies.py").write_text(textwrap.dedent('''
        import numpy as np
        from splitsim.optimizer.custom import StrategyDecision

        def equal_split(problem):
            k = problem.users
            return StrategyDecision(problem.fixed_eta, np.full(k, problem.uplink_main_bandwidth_hz / k),
                                    np.full(k, problem.uplink_fed_bandwidth_hz / k))

        def lopsided(problem):   # half of each band to user 0, the rest shared equally
            k = problem.users
            def split(total):
                return np.array([total / 2] + [total / (2 * (k - 1))] * (k - 1))
            return StrategyDecision(problem.fixed_eta, split(problem.uplink_main_bandwidth_hz),
                                    split(problem.uplink_fed_bandwidth_hz))

        def greedy_pool(problem):   # asks for more than the pool
            k = problem.users
            return StrategyDecision(0.2, np.full(k, problem.uplink_main_bandwidth_hz / (k - 1)),
                                    np.full(k, problem.uplink_fed_bandwidth_hz / k))

        def short(problem):
            return StrategyDecision(0.2, np.ones(2), np.ones(2))

        def nan_eta(problem):
            return {"eta": float("nan"), "uplink_main_bandwidth_hz": np.ones(problem.users),
                    "uplink_fed_bandwidth_hz": np.ones(problem.users)}

        def zero_user(problem):
            b = np.full(problem.users, 1e3); b[3] = 0.0
            return StrategyDecision(0.2, b, np.full(problem.users, 1e3))

        def too_loud(problem):
            b = np.full(problem.users, 1e3)
            return StrategyDecision(0.2, b, b, power_main_fraction=np.full(problem.users, 1.5))

        def raises(problem):
            raise RuntimeError("my solver diverged")

        def a_list(problem):
            return [0.2]

        class Quarter:   # a class: instantiated once, then called
            def __call__(self, problem):
                k = problem.users
                return StrategyDecision(0.25, np.full(k, problem.uplink_main_bandwidth_hz / k),
                                        np.full(k, problem.uplink_fed_bandwidth_hz / k))
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "user_strategies"
    sys.modules.pop("user_strategies", None)


def test_a_custom_equal_split_is_ba_exactly_and_both_engines_simulate_it(strategies_module):
    mine = f"{strategies_module}:equal_split"
    scenario = small_scenario(optimizer={"strategies": ["BA", mine]})
    world = splitsim.realise(scenario)
    allocations = splitsim.optimise(world)
    ba, custom = allocations["BA"], allocations[mine]
    # the oracle: BA, the closed-form equal-bandwidth allocation at fixed eta
    assert custom.T_s == pytest.approx(ba.T_s, rel=1e-12)
    np.testing.assert_allclose(custom.T_k_s, ba.T_k_s, rtol=1e-12)
    assert (custom.V, custom.I0, custom.solver) == (ba.V, ba.I0, "custom")
    delays = {}
    for engine in ("simpy", "vectorised"):
        w = splitsim.realise(splitsim.with_changes(scenario, {"simulation.engine": engine}))
        delays[engine] = splitsim.simulate(w, splitsim.optimise(w)[mine]).summary()["total_delay_s"]
    assert delays["simpy"] == pytest.approx(delays["vectorised"], rel=1e-9)
    assert delays["simpy"] == pytest.approx(ba.T_s, rel=1e-9)  # a still channel: the run is the plan


def test_a_class_is_instantiated_and_its_eta_is_used(strategies_module):
    mine = f"{strategies_module}:Quarter"
    alloc = splitsim.optimise(splitsim.realise(small_scenario(optimizer={"strategies": [mine]})))[mine]
    assert alloc.eta == 0.25
    fe = splitsim.optimise(splitsim.realise(small_scenario(optimizer={"strategies": ["BA"], "fixed_eta": 0.25})))["BA"]
    assert alloc.T_s == pytest.approx(fe.T_s, rel=1e-12)


@pytest.mark.parametrize("name, message", [
    ("greedy_pool", "uplink_main_bandwidth_hz summing to"),
    ("short", "of shape (2,); expected (6,)"),
    ("nan_eta", "eta = nan; expected a number in (0, 1)"),
    ("zero_user", "uplink_main_bandwidth_hz[3] = 0.0; every user's must be finite and > 0"),
    ("too_loud", "power_main_fraction[0] = 1.5"),
    ("raises", "raised RuntimeError: my solver diverged"),
    ("a_list", "returned a list; expected a StrategyDecision"),
])
def test_a_bad_answer_is_one_line_naming_the_strategy_and_exit_2(strategies_module, tmp_path, cli, name, message):
    data = {"name": "bad", "seed": 1, "cell": {"users": 6}, "workload": {"dataset_samples": 600},
            "theory": {"epsilon0": 0.2}, "optimizer": {"strategies": ["proposed", f"{strategies_module}:{name}"]}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    code, out, err = cli("optimize", path, "--out", tmp_path / "out")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and f"strategy '{strategies_module}:{name}'" in lines[0] and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("name, message", [
    ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
    ("json:no_such_function", "module 'json' has no 'no_such_function'"),
    ("json:__doc__", "is a str, not a callable"),
    ("greedy", "unknown strategy 'greedy'"),
    ("bad name:f", "is not of the form 'package.module:function'"),
])
def test_validate_refuses_a_strategy_it_cannot_find(tmp_path, cli, name, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "optimizer": {"strategies": ["proposed", name]}}))
    code, _, err = cli("validate", path)
    assert code == 2 and "optimizer.strategies[1]" in err and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_a_registered_strategy_runs_from_python_and_in_a_study(tmp_path):
    splitsim.register_strategy("equal_split_here", equal_split)
    with pytest.raises(ValueError, match="built-in"):
        splitsim.register_strategy("proposed", equal_split)
    scenario = small_scenario(optimizer={"strategies": ["proposed", "BA", "equal_split_here"]},
                              study={"kind": "latency_vs_power", "tx_power_dbm": [0.0, 10.0]})
    result = splitsim.run_study(scenario, tmp_path / "study")
    table = result.tables["latency_vs_power"]
    rows = table[table["strategy"] == "equal_split_here"].set_index("tx_power_dbm")["T_s"]
    ba = table[table["strategy"] == "BA"].set_index("tx_power_dbm")["T_s"]
    assert len(rows) == 2
    np.testing.assert_allclose(rows.to_numpy(), ba.to_numpy(), rtol=1e-12)


def test_an_entry_point_names_a_strategy(tmp_path, monkeypatch):
    """A package registers `[project.entry-points."splitsim.strategies"] split = "mod:fn"`."""
    (tmp_path / "ep_strategies.py").write_text("from test_custom_strategy import equal_split\n")
    dist = tmp_path / "ep_strategies-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ep-strategies\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[splitsim.strategies]\nsplit_by_entry_point = ep_strategies:equal_split\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    scenario = small_scenario(optimizer={"strategies": ["BA", "split_by_entry_point"]})
    allocations = splitsim.optimise(splitsim.realise(scenario))
    assert allocations["split_by_entry_point"].T_s == pytest.approx(allocations["BA"].T_s, rel=1e-12)


def test_whole_prbs_apply_to_a_custom_strategy_as_to_the_built_ins(strategies_module):
    mine = f"{strategies_module}:equal_split"
    scenario = small_scenario(optimizer={"strategies": ["BA", mine]}, radio={"subcarrier_spacing_khz": 30})
    allocations = splitsim.optimise(splitsim.realise(scenario))
    prb_hz = 12 * 30e3
    for alloc in allocations.values():
        np.testing.assert_allclose(alloc.b_s_hz / prb_hz, np.round(alloc.b_s_hz / prb_hz), atol=1e-9)
    assert allocations[mine].T_s == pytest.approx(allocations["BA"].T_s, rel=1e-12)


@pytest.mark.slow
def test_the_shipped_example_shows_its_rows_beside_the_four(tmp_path):
    folder = REPO / "examples" / "custom_strategy"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, "-m", "splitsim.analysis.cli", "simulate", "scenario.yaml", "--out",
                           str(tmp_path / "out"), "--events", "none"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for name in ("proposed", "EB", "FE", "BA", "my_strategies:proportional_fair", "my_strategies:EqualTimeGreedy"):
        assert f"{name}: simulated training delay" in done.stdout
    runs = json.loads((tmp_path / "out" / "summary.json").read_text())["simulations"]
    delays = {name: run["total_delay_s"] for name, run in runs.items()}
    # problem (17)'s optimum is the fastest; the greedy balancer comes close; proportional fair, which
    # favours the strong users, is slower than equal shares at the same eta (BA)
    assert delays["proposed"] == min(delays.values())
    assert delays["my_strategies:EqualTimeGreedy"] < delays["EB"]
    assert delays["my_strategies:proportional_fair"] > delays["BA"]


NR_10_MHZ = {"link_model": "nr", "subcarrier_spacing_khz": 30, "uplink_main_bandwidth_hz": 10e6,
             "uplink_fed_bandwidth_hz": 10e6, "downlink_bandwidth_hz": 10e6}  # 24 PRBs a band: 4 for each of 6


def test_on_the_nr_link_a_custom_strategy_keeps_its_shares_in_whole_prbs(strategies_module):
    """On the NR link every allocation is in whole PRBs; the optimised strategies get the min-max PRBs,
    but a user's strategy keeps its own shares, rounded (largest remainder): user 0's half of 24 PRBs
    is 12, the others' 12/5 each become 3, 3, 2, 2, 2 — not the PRBs problem (17) would choose."""
    mine = f"{strategies_module}:lopsided"
    world = splitsim.realise(small_scenario(optimizer={"strategies": ["proposed", mine]}, radio=NR_10_MHZ))
    allocations = splitsim.optimise(world)
    prbs = allocations[mine].details["prb"]
    assert prbs["rule"] == "largest_remainder"
    for n in (np.asarray(prbs["prbs_main"]), np.asarray(prbs["prbs_fed"])):
        assert n[0] == 12 and sorted(n[1:].tolist()) == [2, 2, 2, 3, 3] and n.sum() == 24
    assert allocations["proposed"].details["prb"]["rule"] == "min_max"
    assert allocations[mine].T_s > allocations["proposed"].T_s


@pytest.mark.parametrize("radio, share_hz", [({}, 20e6 / 6), (NR_10_MHZ, 4 * 360e3)])
def test_a_custom_strategy_re_plans_through_the_same_hook(strategies_module, radio, share_hz):
    """optimizer.replan_strategy: the user's strategy chooses proposed_replan's bandwidths at every
    re-plan (on the NR link: on its fit, as at planning time, in whole PRBs). Oracle: equal shares
    re-planned at no cost are the plan-once equal-share allocation at the proposed plan's eta (BA's
    closed form at that eta; on NR 4 PRBs a user throughout), simulated under the same dynamics."""
    from splitsim.optimizer.baselines import equal_bandwidth_allocation

    mine = f"{strategies_module}:equal_split"
    scenario = small_scenario(channel={"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.5},
                              radio=radio,
                              optimizer={"strategies": ["proposed", "proposed_replan"], "replan_strategy": mine,
                                         "replan_interval_s": 0.5, "replan_solve_s": 0.0,
                                         "replan_signalling_s": 0.0})
    world = splitsim.realise(scenario)
    allocations = splitsim.optimise(world)
    replanned = allocations["proposed_replan"]
    assert replanned.eta == allocations["proposed"].eta
    np.testing.assert_allclose(replanned.b_s_hz, share_hz)
    fixed = equal_bandwidth_allocation(world.inputs, replanned.eta, "equal_at_proposed_eta")
    a = splitsim.simulate(world, replanned)
    b = splitsim.simulate(world, fixed)
    assert a.extra["replan_solves"] > 0  # it did re-plan, and each re-plan asked the strategy
    assert a.total_delay_s == pytest.approx(b.total_delay_s, rel=1e-9)


@pytest.mark.parametrize("changes, words", [
    ({"optimizer": {"strategies": ["proposed_replan"], "replan_strategy": "EB"}}, "not the built-in"),
    ({"optimizer": {"strategies": ["proposed_replan"], "replan_strategy": "json:dumps", "replan_eta": "rechosen"}},
     "replan_eta: fixed"),
])
def test_a_replan_strategy_that_cannot_work_is_refused(tmp_path, cli, changes, words):
    data = {"name": "r", "seed": 1, "cell": {"users": 6}, "workload": {"dataset_samples": 600},
            "theory": {"epsilon0": 0.2},
            "channel": {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.5},
            "study": {"kind": "simulate"}, **changes}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    code, _, err = cli("validate", path)
    assert code == 2 and "optimizer.replan_strategy" in err and words in err, err

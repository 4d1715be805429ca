"""The NR link's cost in the vectorised engine against Shannon's, side by side, and the NR
optimiser's whole-PRB step.

Part 1: SFL with 1,000 users (the Fig. 2 cell scaled, 23 dBm, equal bandwidth, eta = 0.1: V = 35 local
iterations a round, every activity recorded), each user on 2 PRBs of 30 kHz on a DDDSU carrier,
the same run on Shannon's rate and on the NR goodput (radio.link_model: nr). 2,000 PRBs are more
than one NR carrier holds (275): this measures the engine's cost, not a deployment. The NR link's
tables (built once per process and carrier) are timed apart. Target: NR <= 3x Shannon.

Part 2: the optimiser on the NR link for the fig2_nr cell (50 users, 2 x 133 PRBs): problem (17)
on the attenuated-Shannon fit, then the whole PRBs that minimise the slowest user on the NR goodput
(prb_rule min_max), per strategy.

    python benchmarks/bench_nr_link.py [--rounds 3 30] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
if "SPLITSIM_CACHE_DIR" not in os.environ:  # the NR tables are built cold and timed, the user's cache untouched
    import tempfile

    os.environ["SPLITSIM_CACHE_DIR"] = tempfile.mkdtemp(prefix="splitsim-bench-")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import best_of, fig2_scenario, print_table  # noqa: E402

from splitsim.analysis import realise  # noqa: E402
from splitsim.netsim import simulate_sfl  # noqa: E402
from splitsim.scenarios.nr_link import link_rates  # noqa: E402
from splitsim.optimizer.allocation import allocation_from_bandwidth  # noqa: E402
from splitsim.scenarios import SCENARIO_DIR, SimulationConfig, load_scenario  # noqa: E402
from splitsim.scenarios.schema import RadioConfig  # noqa: E402

PRB_HZ = 360e3
NR_RADIO = {"subcarrier_spacing_khz": 30, "link_model": "nr"}  # radio.nr's defaults: DDDSU, 64QAM, BLER 0.1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, nargs="+", default=[3, 30])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    users = 1000
    scenario = fig2_scenario(users)
    world = realise(scenario).at_tx_power(23.0)  # a UE's maximum: every user in coverage on one PRB
    start = time.perf_counter()
    uplink, downlink = link_rates(RadioConfig(**NR_RADIO))
    uplink.rate_bps(2 * PRB_HZ, 1e9)  # builds the tables
    tables_s = time.perf_counter() - start
    pools = {"uplink_main_bandwidth_hz": users * 2 * PRB_HZ, "uplink_fed_bandwidth_hz": users * 2 * PRB_HZ}
    shannon_inputs = replace(world.inputs, **pools)
    nr_inputs = replace(shannon_inputs, uplink_rate=uplink, downlink_rate=downlink)
    eta = scenario.optimizer.fixed_eta
    b = np.full(users, 2 * PRB_HZ)
    rows = []
    for rounds in args.rounds:
        sim = SimulationConfig(max_rounds=rounds, engine="vectorised")
        walls = {}
        for name, inputs in (("shannon", shannon_inputs), ("nr", nr_inputs)):
            alloc = allocation_from_bandwidth(inputs, eta, b, b, "EB", "two PRBs each")
            walls[name], result = best_of(lambda: simulate_sfl(inputs, alloc, sim, scenario.radio, scenario.channel,
                                                               world.channel, world.simulation_rng()), args.repeat)
            walls[name + "_delay"] = result.total_delay_s
        rows.append([rounds, walls["shannon"], walls["nr"], walls["nr"] / walls["shannon"],
                     walls["nr_delay"] / walls["shannon_delay"]])
    print_table(f"SFL, {users:,} users on 2 PRBs each, vectorised engine, every activity recorded: Shannon vs NR "
                f"(NR tables built once, cold, in {tables_s:.1f} s)",
                ["rounds", "Shannon s", "NR s", "NR / Shannon time", "NR / Shannon delay"], rows)

    from splitsim.analysis.allocations import planned_allocations

    fig2_nr = load_scenario(SCENARIO_DIR / "fig2_nr.yaml")
    nr_world = realise(fig2_nr)
    planned_allocations(nr_world.inputs, nr_world.energy, fig2_nr)  # tables built
    wall, allocations = best_of(lambda: planned_allocations(nr_world.inputs, nr_world.energy, fig2_nr), args.repeat)
    print_table("fig2_nr (50 users, 2 x 133 PRBs, 10 dBm): problem (17) on the NR fit + whole PRBs on the NR goodput",
                ["strategy", "T (s)", "rounding vs fit"],
                [[n, a.T_s, a.details["prb"]["rounding_cost_relative"]] for n, a in allocations.items()])
    print(f"all four strategies planned in {wall * 1e3:.0f} ms (best of {args.repeat})")
    gap_to_brute_force()


def gap_to_brute_force(seeds: int = 5) -> None:
    """Part 3: the proposed plan on the NR link (eta chosen on the Shannon fit, whole PRBs exact on the
    NR goodput) against brute force: for every eta of a 400-point grid the exact min-max whole PRBs
    of both pools (optimizer.prb.min_max_prbs, itself equal to exhaustive search: tests/test_nr_engine.py),
    the best over the grid. Small cells: K = 2 ... 6 users on two 5 MHz pools (25 PRBs each at 15 kHz)."""
    from splitsim.analysis.allocations import planned_allocations
    from splitsim.optimizer.allocation import allocation_with_counts
    from splitsim.optimizer.delay_model import counts_for
    from splitsim.optimizer.prb import min_max_prbs
    from splitsim.scenarios import parse_scenario

    rows = []
    for users in range(2, 7):
        gaps = []
        for seed in range(seeds):
            sc = parse_scenario({"name": "small", "seed": seed, "cell": {"users": users, "side_m": 300},
                                 "radio": {"uplink_main_bandwidth_hz": 5e6, "uplink_fed_bandwidth_hz": 5e6,
                                           "subcarrier_spacing_khz": 15, "prb_rule": "min_max", "link_model": "nr",
                                           "max_tx_power_dbm": 15},
                                 "workload": {"dataset_samples": 100 * users}, "study": {"kind": "simulate"}})
            w = realise(sc)
            ours = planned_allocations(w.inputs, w.energy, sc)["proposed"]
            best = np.inf
            for eta in np.geomspace(1e-4, 0.999, 400):
                V, I0 = counts_for(w.inputs, float(eta))
                probe = allocation_with_counts(w.inputs, V, I0, ours.b_s_hz, ours.b_c_hz, "probe", "", None, float(eta))
                n_main, n_fed = min_max_prbs(w.inputs, probe, 25, 25, 180e3)
                at = allocation_with_counts(w.inputs, V, I0, n_main * 180e3, n_fed * 180e3, "probe", "", None,
                                            float(eta))
                best = min(best, at.T_s)
            gaps.append(ours.T_s / best - 1)
        rows.append([users, seeds, float(np.mean(gaps)), float(np.max(gaps))])
    print_table("The proposed plan on the NR link against brute force (eta grid x exact whole PRBs), 15 dBm, "
                "two pools of 25 PRBs", ["users", "cells", "mean gap", "worst gap"], rows)


if __name__ == "__main__":
    main()

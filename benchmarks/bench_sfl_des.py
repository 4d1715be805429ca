"""SFL discrete-event simulation: simulated events per second and wall time at K = 50, 500, 5,000.

Target: >= 300,000 SimPy events per second on one core, cost linear in K (constant events/s and
constant wall time per user-round). Each run simulates `--rounds` full rounds of the FedsLLM
Fig. 2 cell (eta = 0.1, so V = 35 local iterations a round), equal bandwidth.

    python benchmarks/bench_sfl_des.py [--rounds 3] [--users 50 500 5000]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, fig2_scenario, print_table  # noqa: E402

from splitsim.analysis import realise  # noqa: E402
from splitsim.netsim import simulate_sfl  # noqa: E402
from splitsim.optimizer import equal_bandwidth_allocation  # noqa: E402
from splitsim.scenarios import SimulationConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, nargs="+", default=[50, 500, 5000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for users in args.users:
        scenario = fig2_scenario(users)
        world = realise(scenario)
        alloc = equal_bandwidth_allocation(world.inputs, scenario.optimizer.fixed_eta)
        for record in (True, False):
            sim = SimulationConfig(max_rounds=args.rounds, record_events=record, engine="simpy")

            def once():
                return simulate_sfl(world.inputs, alloc, sim, scenario.radio, scenario.channel, world.channel,
                                    world.simulation_rng())

            wall, result = best_of(once, args.repeat)
            events = result.simpy_events
            rows.append([users, "yes" if record else "no", args.rounds, round(alloc.V, 2), events, wall,
                         events / wall, wall / (users * args.rounds) * 1e6])
    print_table("SFL DES (FedsLLM Fig. 2 cell, equal bandwidth, eta = 0.1)",
                ["users K", "records", "rounds", "V", "SimPy events", "wall s", "events/s", "us per user-round"],
                rows)


if __name__ == "__main__":
    main()

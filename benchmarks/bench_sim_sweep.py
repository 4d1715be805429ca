"""Whole SFL simulations (every round) at 50 and 1,000 users, and a sweep on 2 local workers vs 1.

1. The FedsLLM Fig. 2 cell under BA (eta = 0.1: I0 = 153.5 rounds of V = 35 local iterations),
   simulated to the end with and without event records: wall time and SimPy events per second.
2. `splitsim sweep` over 8 seeds of that cell (study: simulate, no records), run with 1 worker and
   with 2 workers into fresh folders; the speed-up is their wall-time ratio.

    python benchmarks/bench_sim_sweep.py [--users 50 1000] [--points 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml  # noqa: E402
from _common import fig2_scenario, print_table  # noqa: E402

from splitsim.analysis import realise  # noqa: E402
from splitsim.analysis.sweep import run_sweep  # noqa: E402
from splitsim.netsim import simulate_sfl  # noqa: E402
from splitsim.optimizer import equal_bandwidth_allocation  # noqa: E402
from splitsim.scenarios import SCENARIO_DIR, SimulationConfig, load_scenario, scenario_to_dict  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[50, 1000])
    parser.add_argument("--points", type=int, default=8)
    args = parser.parse_args()
    rows = []
    for users in args.users:
        scenario = fig2_scenario(users)
        world = realise(scenario)
        alloc = equal_bandwidth_allocation(world.inputs, 0.1)
        for record in (False, True) if users <= 100 else (False,):
            start = time.perf_counter()
            sim = SimulationConfig(record_events=record, engine="simpy")
            result = simulate_sfl(world.inputs, alloc, sim, scenario.radio, scenario.channel, world.channel,
                                  world.simulation_rng())
            wall = time.perf_counter() - start
            rows.append([users, "yes" if record else "no", round(result.rounds, 2), result.simpy_events, wall,
                         result.simpy_events / wall, result.total_delay_s])
    print_table("Whole SFL simulation, Fig. 2 cell, BA allocation (every round)",
                ["users K", "records", "rounds", "SimPy events", "wall s", "events/s", "simulated delay s"], rows)

    base = scenario_to_dict(load_scenario(SCENARIO_DIR / "fedsllm_fig2.yaml"))
    with tempfile.TemporaryDirectory() as tmp:
        scenario_file = Path(tmp) / "sweep.yaml"
        scenario_file.write_text(yaml.safe_dump({**base, "study": {"kind": "simulate"},
                                                 "simulation": {**base["simulation"], "record_events": False,
                                                                "engine": "simpy"}}))
        seeds = ",".join(str(s) for s in range(1, args.points + 1))
        times = {}
        for workers in (1, 2):
            start = time.perf_counter()
            run_sweep(scenario_file, [f"seed={seeds}"], Path(tmp) / f"w{workers}", "local", workers, None, False)
            times[workers] = time.perf_counter() - start
    print_table(f"splitsim sweep, {args.points} points (seeds) of the Fig. 2 simulation, local processes",
                ["workers", "wall s", "speed-up vs 1"], [[w, t, times[1] / t] for w, t in times.items()])


if __name__ == "__main__":
    main()

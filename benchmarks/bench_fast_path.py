"""SFL at scale: the vectorised engine against SimPy, side by side, and its cost up to 10,000 users.

Part 1: the same 1,000-user run (FedsLLM Fig. 2 cell scaled, equal bandwidth, eta = 0.1 so V = 35
local iterations a round, `--rounds` rounds, every activity recorded) by both engines, on a frozen
channel and on a moving one (Rayleigh block fading every 50 ms, users walking at 1.5 m/s, 80 % of
users per round, 5 % drop-outs); the largest relative difference of the total delay and of every
user's busy time is printed beside the speed-up (best of --repeat runs each). Target: >= 20x.

Part 2: the vectorised engine alone at K = 1,000 ... 10,000 with the event table streamed to a
parquet file a round at a time (activity rows): wall time, microseconds per user-round (flat =
linear in users x rounds) and the peak RSS. Target: 10,000 users in < 30 s on one core.

    python benchmarks/bench_fast_path.py [--rounds 3] [--users 1000 3000 10000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import best_of, fig2_scenario, print_table  # noqa: E402

from splitsim.analysis import realise  # noqa: E402
from splitsim.analysis.runs import EventWriter  # noqa: E402
from splitsim.netsim import simulate_sfl  # noqa: E402
from splitsim.optimizer import equal_bandwidth_allocation  # noqa: E402
from splitsim.scenarios import SimulationConfig  # noqa: E402

MOVING = {"channel": {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.5},
          "study": {"kind": "simulate"}}
COMINGS = {"participants_share": 0.8, "dropout_probability": 0.05}


def _run(scenario, world, alloc, engine, rounds, users, moving, sink=None, repeat=1):
    """Best wall time of `repeat` runs (s) and the result."""
    extra = {"participants_per_round": int(COMINGS["participants_share"] * users),
             "dropout_probability": COMINGS["dropout_probability"]} if moving else {}
    sim = SimulationConfig(max_rounds=rounds, engine=engine, **extra)
    return best_of(lambda: simulate_sfl(world.inputs, alloc, sim, scenario.radio, scenario.channel, world.channel,
                                        world.simulation_rng(), cell=scenario.cell, events_sink=sink), repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs in part 1")
    args = parser.parse_args()

    rows = []
    for moving in (False, True):
        scenario = fig2_scenario(1000, **(MOVING if moving else {}))
        world = realise(scenario)
        alloc = equal_bandwidth_allocation(world.inputs, scenario.optimizer.fixed_eta)
        t_simpy, a = _run(scenario, world, alloc, "simpy", args.rounds, 1000, moving, repeat=args.repeat)
        t_vec, b = _run(scenario, world, alloc, "vectorised", args.rounds, 1000, moving, repeat=args.repeat)
        delay_diff = abs(a.total_delay_s - b.total_delay_s) / a.total_delay_s
        busy_diff = float(np.max(np.abs(a.busy_s - b.busy_s)) / np.max(a.busy_s))
        rows.append(["moving" if moving else "frozen", len(a.log), t_simpy, t_vec, t_simpy / t_vec, delay_diff,
                     busy_diff])
    print_table(f"SFL, 1,000 users, {args.rounds} rounds of V = 35, every activity recorded: SimPy vs vectorised",
                ["channel", "records", "SimPy s", "vectorised s", "speed-up", "delay rel. diff", "busy rel. diff"],
                rows)

    rows = []
    for users in args.users:
        scenario = fig2_scenario(users)
        world = realise(scenario)
        alloc = equal_bandwidth_allocation(world.inputs, scenario.optimizer.fixed_eta)
        with tempfile.TemporaryDirectory() as tmp:
            writer = EventWriter(Path(tmp) / "events.parquet", "parquet")
            wall, result = _run(scenario, world, alloc, "vectorised", args.rounds, users, False, writer.sink("EB"))
            writer.close()
            size = (Path(tmp) / "events.parquet").stat().st_size
        rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        rows.append([users, writer.rows["EB"], wall, wall / (users * args.rounds) * 1e6, size / 2**20, rss_gib])
    print_table(f"vectorised SFL, {args.rounds} rounds of V = 35, events streamed to parquet (one core)",
                ["users K", "event rows", "wall s", "us per user-round", "parquet MiB", "peak RSS GiB (process)"],
                rows)


if __name__ == "__main__":
    main()

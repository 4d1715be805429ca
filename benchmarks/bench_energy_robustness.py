"""The two exact energy-aware solvers over many small cells: does every feasible problem get solved?

For every combination of users (--users), seed, clock floor (energy.min_user_cpu_hz 0 or 0.5 GHz),
idle power (0 or 0.05 W), objective weight (0 or 0.3) and budget (a share 0.001 ... 0.95 of the way
from the least energy any allocation needs to what the delay-optimal one spends), the whole eta grid
(step 0.05) is solved by the barrier interior point (optimizer.energy.interior_point) and by the structured
Newton solver (optimizer.energy.structured). The allocation runs one and retries the other on what it
leaves (optimizer.energy.strategies), so a problem is lost only where both miss it.

    python benchmarks/bench_energy_robustness.py [--users 1 6] [--seeds 1 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table  # noqa: E402

import numpy as np  # noqa: E402

from splitsim.analysis.world import realise  # noqa: E402
from splitsim.optimizer import global_rounds, local_iterations, optimise  # noqa: E402
from splitsim.optimizer.energy.structured import solve_energy_kkt  # noqa: E402
from splitsim.optimizer.energy.interior_point import solve_energy_rounds  # noqa: E402
from splitsim.optimizer.energy.strategies import allocation_energy_j, minimum_energy_j, round_problem  # noqa: E402
from splitsim.optimizer.eta_search import paper_eta_grid  # noqa: E402
from splitsim.scenarios import parse_scenario  # noqa: E402

BUDGET_SHARES = (0.001, 0.05, 0.5, 0.95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, nargs="+", default=[1, 6])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    etas = paper_eta_grid(0.05)
    rows = []
    for users in args.users:
        tally = dict(cases=0, feasible=0, barrier=0, kkt=0, either=0, worst=0.0, t_barrier=0.0, t_kkt=0.0)
        for seed, cpu_hz, idle_w, weight, share in itertools.product(args.seeds, [0.0, 0.5e9], [0.0, 0.05], [0.0, 0.3],
                                                                      BUDGET_SHARES):
            scenario = parse_scenario({"name": "robustness", "seed": seed, "cell": {"users": users},
                                       "theory": {"epsilon0": 0.2}, "study": {"kind": "simulate"},
                                       "energy": {"min_user_cpu_hz": cpu_hz, "idle_power_w": idle_w}})
            world = realise(scenario)
            e_min = minimum_energy_j(world.inputs, world.energy)[0].max()
            free = optimise(world.inputs, scenario.optimizer)["proposed"]
            e_free = allocation_energy_j(world.inputs, world.energy, free)["total_j"].max()
            budget = float(e_min + share * (e_free - e_min))
            V = np.atleast_1d(local_iterations(etas, world.inputs.v))
            I0 = np.atleast_1d(global_rounds(etas, world.inputs.a))
            prob = round_problem(world.inputs, world.energy, V, budget / I0, weight)
            start = time.perf_counter()
            kkt = solve_energy_kkt(prob)
            tally["t_kkt"] += time.perf_counter() - start
            start = time.perf_counter()
            barrier = solve_energy_rounds(prob)
            tally["t_barrier"] += time.perf_counter() - start
            feasible = kkt.feasible
            both = kkt.converged & barrier.converged
            tally["cases"] += 1
            tally["feasible"] += int(feasible.sum())
            tally["barrier"] += int((barrier.converged & feasible).sum())
            tally["kkt"] += int((kkt.converged & feasible).sum())
            tally["either"] += int(((kkt.converged | barrier.converged) & feasible).sum())
            if both.any():
                tally["worst"] = max(tally["worst"], float(np.max(np.abs(kkt.objective[both] / barrier.objective[both]
                                                                         - 1))))
        rows.append([users, tally["cases"], tally["feasible"], tally["barrier"], tally["kkt"], tally["either"],
                     f"{tally['worst']:.1e}", tally["t_barrier"] / tally["feasible"], tally["t_kkt"] / tally["feasible"]])
    print_table("Feasible fixed-eta problems converged by the interior point, the structured solver, and either",
                ["users K", "cells", "feasible problems", "interior point", "structured", "either",
                 "max relative difference", "interior point s/problem", "structured s/problem"], rows)


if __name__ == "__main__":
    main()

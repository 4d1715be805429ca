"""Problem (17): the structured solver against cvxpy + Clarabel, measured side by side.

1. The whole FedsLLM Fig. 2 sweep: K = 50, 5 power points, 4 strategies, the 99-point eta grid
   plus the exact eta search, solved with each per-round solver. Target: structured >= 100x faster.
2. One fixed-eta solve at K = 1,000 and 10,000 users. Target: K = 10,000 under 1 s (structured).

    python benchmarks/bench_optimizer.py [--large 1000 10000] [--cvxpy-large]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import best_of, fig2_scenario, print_table  # noqa: E402

from splitsim.analysis import realise  # noqa: E402
from splitsim.optimizer import ConvexSolver, local_iterations, optimise, per_round_problem, solve_per_round  # noqa: E402
from splitsim.scenarios import SCENARIO_DIR, load_scenario  # noqa: E402


def sweep(world, powers, solver):
    out = {}
    for p in powers:
        allocs = optimise(world.at_tx_power(p).inputs, world.scenario.optimizer, solver)
        out.update({(p, name): a for name, a in allocs.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--large", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--cvxpy-large", action="store_true", help="also time cvxpy on the large cells (K <= 2,000)")
    args = parser.parse_args()
    scenario = load_scenario(SCENARIO_DIR / "fedsllm_fig2.yaml")
    world = realise(scenario)
    powers = scenario.study.tx_power_dbm

    t_struct, res_struct = best_of(lambda: sweep(world, powers, "structured"), 3)
    start = time.perf_counter()
    res_cvx = sweep(world, powers, "cvxpy")
    t_cvx = time.perf_counter() - start
    worst = max(abs(res_struct[k].T_s - res_cvx[k].T_s) / res_struct[k].T_s for k in res_struct)
    fallbacks = sum(1 for a in res_cvx.values() if a.solver == "structured")
    print_table(
        f"FedsLLM Fig. 2 sweep: K = 50, {len(powers)} powers x 4 strategies, 99-point eta grid + exact search",
        ["per-round solver", "wall s", "speed-up", "max |dT|/T vs other", "fallbacks to the other solver"],
        [["structured (Newton, batched grid)", t_struct, t_cvx / t_struct, worst, 0],
         ["cvxpy + Clarabel (DPP)", t_cvx, 1.0, worst, fallbacks]])

    rows = []
    for users in args.large:
        big = realise(fig2_scenario(users))
        prob = per_round_problem(big.inputs, local_iterations(0.1, big.inputs.v))
        wall, sol = best_of(lambda: solve_per_round(prob), 3)
        rows.append([users, "structured (cold start)", wall, sol.P_s, "converged" if sol.converged else "FAILED"])
        if args.cvxpy_large and users <= 2000:  # DPP compilation needs O(K^2) memory: 77 GiB at K = 10,000
            solver = ConvexSolver(users)
            start = time.perf_counter()
            res = solver.solve(prob)
            rows.append([users, "cvxpy + Clarabel", time.perf_counter() - start, res.P_s,
                         res.attempts[-1] if res.attempts else ""])
    print_table("One fixed-eta solve (eta = 0.1) on large cells", ["users K", "solver", "wall s", "P* s/round", "status"],
                rows)


if __name__ == "__main__":
    main()

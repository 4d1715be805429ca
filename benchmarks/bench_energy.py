"""The energy-aware allocation: its Pareto front, and the structured solver beside two other methods.

1. The whole delay-energy front on the FedsLLM Fig. 2 cell (K = 50): `--budgets` per-user budgets,
   each solved over bandwidth, power, clock and eta (coarse eta grid + Brent).
2. One fixed-eta solve with a binding budget on growing cells, side by side: the structured Newton
   solver (optimizer.energy.structured, best of 3), the barrier interior point (up to `--barrier-max`
   users, where its Newton steps grow faster than K) and IPOPT through CasADi, an independent
   general NLP solver with exact sparse derivatives (optimizer.energy.reference).
3. Whole energy-aware allocations (eta grid + Brent) on large cells, where the structured solver
   runs first and the interior point retries what it leaves (`--allocation-users`).

    python benchmarks/bench_energy.py [--budgets 20] [--users 10 50 200 1000] [--barrier-max 200]
                                      [--allocation-users 1000]
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

import numpy as np  # noqa: E402

from splitsim.analysis import realise  # noqa: E402
from splitsim.analysis.study_energy import budgets_for  # noqa: E402
from splitsim.optimizer import global_rounds, local_iterations  # noqa: E402
from splitsim.optimizer.energy.structured import solve_energy_kkt  # noqa: E402
from splitsim.optimizer.energy.reference import ipopt_round_objective  # noqa: E402
from splitsim.optimizer.energy.interior_point import solve_energy_rounds  # noqa: E402
from splitsim.optimizer.energy.strategies import energy_aware_allocation, round_problem  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, default=20)
    parser.add_argument("--users", type=int, nargs="+", default=[10, 50, 200, 1000])
    parser.add_argument("--barrier-max", type=int, default=200)
    parser.add_argument("--allocation-users", type=int, nargs="*", default=[1000])
    args = parser.parse_args()

    world = realise(fig2_scenario(50))
    budgets, e_min, e_opt = budgets_for(world, args.budgets)
    start = time.perf_counter()
    steps = evaluations = 0
    delays = []
    for budget in budgets:
        alloc = energy_aware_allocation(world.inputs, world.energy, float(budget))
        steps += alloc.details["newton_steps"]
        evaluations += alloc.details["eta_evaluations"]
        delays.append(alloc.T_s)
    wall = time.perf_counter() - start
    print_table(f"Delay-energy front, Fig. 2 cell, K = 50: {args.budgets} budgets from {budgets[0]:.4g} J to "
                f"{budgets[-1]:.4g} J (least possible {e_min:.4g} J, delay-optimal {e_opt:.4g} J)",
                ["budgets", "wall s", "s per budget", "eta evaluations", "Newton steps", "T range s"],
                [[len(budgets), wall, wall / len(budgets), evaluations, steps, f"{min(delays):.6g}-{max(delays):.6g}"]])

    rows = []
    for users in args.users:
        big = realise(fig2_scenario(users))
        inputs, energy = big.inputs, big.energy
        _, e_min_k, e_opt_k = budgets_for(big, 2)
        budget = float(np.sqrt(e_min_k * e_opt_k))  # binds for the neediest users
        eta = 0.9
        V = np.atleast_1d(local_iterations(eta, inputs.v))
        I0 = float(global_rounds(eta, inputs.a))
        prob = round_problem(inputs, energy, V, np.array([budget / I0]))
        t_kkt, sol = best_of(lambda: solve_energy_kkt(prob), 3)
        status = "converged" if sol.converged[0] else "NOT converged"
        row = [users, t_kkt, sol.newton_steps, status, f"{sol.gap[0]:.1e}", sol.P_s[0]]
        if users <= args.barrier_max:
            t_ip, ip = best_of(lambda: solve_energy_rounds(prob), 1)
            row += [t_ip, ip.newton_steps, f"{(ip.P_s[0] - sol.P_s[0]) / sol.P_s[0]:.1e}"]
        else:
            row += ["", "", ""]
        t_ref, (ref, ref_status) = best_of(lambda: ipopt_round_objective(prob, 0), 1)
        row += [t_ref, ref_status, f"{(ref - sol.P_s[0]) / sol.P_s[0]:.1e}", t_ref / t_kkt]
        rows.append(row)
    print_table("One fixed-eta solve (eta = 0.9) with a binding budget: structured Newton (energy_kkt) vs the "
                "barrier interior point (energy_solver) vs IPOPT (independent, CasADi)",
                ["users K", "Newton wall s", "global steps", "status", "duality gap", "P* s/round", "barrier wall s",
                 "barrier steps", "(P_barrier - P)/P", "IPOPT wall s", "IPOPT status", "(P_IPOPT - P)/P",
                 "IPOPT/Newton time"], rows)

    rows = []
    for users in args.allocation_users:
        big = realise(fig2_scenario(users))
        _, e_min_k, e_opt_k = budgets_for(big, 2)
        budget = float(np.sqrt(e_min_k * e_opt_k))
        wall, alloc = best_of(lambda: energy_aware_allocation(big.inputs, big.energy, budget), 1)
        rows.append([users, wall, alloc.solver, alloc.details["eta_evaluations"], alloc.details["newton_steps"],
                     alloc.T_s])
    if rows:
        print_table("Whole energy-aware allocation (eta grid + Brent) with a binding budget",
                    ["users K", "wall s", "solver", "eta evaluations", "global steps", "T s"], rows)


if __name__ == "__main__":
    main()

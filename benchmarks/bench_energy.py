"""The energy-aware allocation: its Pareto front, and the interior point beside an independent NLP.

1. The whole delay-energy front on the FedsLLM Fig. 2 cell (K = 50): `--budgets` per-user budgets,
   each solved over bandwidth, power, clock and eta (coarse eta grid + Brent).
2. One fixed-eta solve with a binding budget, interior point against scipy's SLSQP from several
   starts (optimizer.energy_reference), side by side, on growing cells; SLSQP is dense, so it runs
   only up to `--nlp-max` users.
3. The interior point alone at larger K, up to the size it is validated for, and one beyond it,
   to show where it stops converging.

    python benchmarks/bench_energy.py [--budgets 20] [--users 10 25 50 100 200 400] [--nlp-max 50]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import fig2_scenario, print_table  # noqa: E402

import numpy as np  # noqa: E402

from analysis import realise  # noqa: E402
from analysis.study_energy import budgets_for  # noqa: E402
from optimizer import global_rounds, local_iterations  # noqa: E402
from optimizer.energy_reference import nlp_round_objective  # noqa: E402
from optimizer.energy_solver import solve_energy_rounds  # noqa: E402
from optimizer.energy_strategies import energy_aware_allocation, round_problem  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", type=int, default=20)
    parser.add_argument("--users", type=int, nargs="+", default=[10, 25, 50, 100, 200, 400])
    parser.add_argument("--nlp-max", type=int, default=50)
    parser.add_argument("--nlp-starts", type=int, default=3)
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
    rng = np.random.default_rng(0)
    for users in args.users:
        big = realise(fig2_scenario(users))
        inputs, energy = big.inputs, big.energy
        _, e_min_k, e_opt_k = budgets_for(big, 2)
        budget = float(np.sqrt(e_min_k * e_opt_k))  # binds for the neediest users
        eta = 0.9
        V = np.atleast_1d(local_iterations(eta, inputs.v))
        I0 = float(global_rounds(eta, inputs.a))
        prob = round_problem(inputs, energy, V, np.array([budget / I0]))
        start = time.perf_counter()
        sol = solve_energy_rounds(prob)
        t_ip = time.perf_counter() - start
        status = "converged" if sol.converged[0] else "NOT converged"
        row = [users, t_ip, sol.newton_steps, status, sol.P_s[0], "", "", ""]
        if users <= args.nlp_max:
            start = time.perf_counter()
            nlp = nlp_round_objective(prob, 0, args.nlp_starts, rng)
            t_nlp = time.perf_counter() - start
            gap = (sol.P_s[0] - nlp) / nlp if np.isfinite(nlp) else "no SLSQP start converged"
            row[5:] = [t_nlp, t_nlp / t_ip, gap]
        rows.append(row)
    print_table("One fixed-eta solve (eta = 0.9) with a binding budget: interior point vs SLSQP "
                f"({args.nlp_starts} starts)",
                ["users K", "IP wall s", "IP Newton steps", "IP status", "P* s/round", "SLSQP wall s", "speed-up",
                 "(P_IP - P_SLSQP)/P_SLSQP"], rows)


if __name__ == "__main__":
    main()

"""Re-planning at scale: 1,000 users, the base station re-solving problem (17) every round, against
the same run planned once, side by side in one process (both engines; the vectorised one also with
the rounds' Monte Carlo prediction, and with the shadowing taken as it is now instead of its forecast).

The FedsLLM Fig. 2 cell scaled to 1,000 users, moving (Rayleigh block fading every 50 ms, users
walking at 1.5 m/s, 80 % of users per round, 5 % drop-outs), the proposed allocation (its own eta
and V), every activity recorded, `--rounds` rounds. Columns: wall seconds
without and with re-planning every round (large-scale CSI: the planner averages the fading, a
fixed point of ~10 structured solves per re-plan), their ratio, the re-solves and the wall time of
one re-solve. Target (issue 25): the vectorised engine with re-planning every round within 3x of
the run without.

    python benchmarks/bench_replan.py [--rounds 3] [--repeat 3]

With --solve-only: the wall time of one re-solve (continuous plan + exact whole PRBs, `min_max`) for
fig2_dynamic's 50 users and 106 PRBs a pool, with the channel known and with a forecast of 16 samples
a user: the measurement behind the modelled budget optimizer.replan_solve_s (20 ms).
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
from splitsim.analysis.allocations import world_allocations  # noqa: E402
from splitsim.analysis.replan import forecast_samples, measured_solve_s, replan_spec, solve_key  # noqa: E402
from splitsim.netsim import simulate_sfl  # noqa: E402
from splitsim.scenarios import SimulationConfig  # noqa: E402

MOVING = {"channel": {"fading": "rayleigh", "coherence_time_s": 0.05, "mobility_speed_mps": 1.5},
          "optimizer": {"strategies": ["proposed", "proposed_replan"]}, "study": {"kind": "simulate"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--solve-only", action="store_true", help="time fig2_dynamic's re-solve at K = 50 only")
    args = parser.parse_args()
    if args.solve_only:
        return solve_only()
    rows = []
    for shadowing, prediction, engines in (("forecast", "plan", ("vectorised", "simpy")),
                                           ("forecast", "monte_carlo", ("vectorised",)),
                                           ("now", "plan", ("vectorised",))):
        moving = {**MOVING, "optimizer": {**MOVING["optimizer"], "replan_shadowing": shadowing,
                                          "replan_prediction": prediction}}
        scenario = fig2_scenario(args.users, **moving)
        world = realise(scenario)
        allocations = world_allocations(world)
        once, replanned = allocations["proposed"], allocations["proposed_replan"]
        solve_s = measured_solve_s(replan_spec(world, replanned, solve_s=0.0).planner, args.users,
                                   (*solve_key(world), prediction), forecast_samples(scenario))
        sim = SimulationConfig(max_rounds=args.rounds, participants_per_round=int(0.8 * args.users),
                               dropout_probability=0.05)
        for engine in engines:
            run_sim = sim.model_copy(update={"engine": engine})

            def run(alloc, replan):
                return simulate_sfl(world.inputs, alloc, run_sim, scenario.radio, scenario.channel, world.channel,
                                    world.simulation_rng(), cell=scenario.cell, replan=replan)

            t_once, a = best_of(lambda: run(once, None), args.repeat)
            t_re, b = best_of(lambda: run(replanned, replan_spec(world, replanned, interval_s=None, solve_s=solve_s)),
                              args.repeat)
            rows.append([engine, shadowing, prediction, f"{len(a.log):,}", t_once, t_re, t_re / t_once, b.extra["replan_solves"],
                         solve_s, b.total_delay_s / a.total_delay_s])
    print_table(f"SFL, {args.users:,} users moving, {args.rounds} rounds of V = {once.V:.3g}, every activity recorded: "
                "planned once vs re-planned every round (optimizer.replan_shadowing: the shadowing's forecast over "
                "the round, or as it is now; optimizer.replan_prediction: the rounds' prediction, the slowest "
                "expected time or a Monte Carlo of the round's slowest)",
                ["engine", "shadowing", "prediction", "records", "once s", "re-planned s", "ratio", "re-solves", "one solve s",
                 "delay re-planned / once"], rows)


def solve_only(repeat: int = 20) -> None:
    """One re-solve of fig2_dynamic's proposed plan (K = 50, 106 PRBs a pool at 15 kHz, min_max)."""
    import time

    import numpy as np

    from splitsim.optimizer import optimise
    from splitsim.optimizer.replan import make_planner
    from splitsim.scenarios import SCENARIO_DIR, load_scenario

    scenario = load_scenario(SCENARIO_DIR / "fig2_dynamic.yaml")
    world = realise(scenario)
    base = optimise(world.inputs, scenario.optimizer.model_copy(update={"strategies": ["proposed"]}))["proposed"]
    rng = np.random.default_rng(0)
    rows = []
    for label, fading, shape in (("channel known", "none", (50,)), ("forecast, 16 samples a user", "rayleigh", (50, 16))):
        planner = make_planner(world.inputs, base, fading, scs_khz=scenario.radio.subcarrier_spacing_khz,
                               rule=scenario.radio.prb_rule)
        times = []
        for _ in range(repeat + 2):
            known = rng.exponential(size=shape) if fading != "none" else rng.lognormal(0.0, 0.5, size=shape)
            start = time.perf_counter()
            planner(known)
            times.append(time.perf_counter() - start)
        times = np.array(times[2:]) * 1e3  # the first two warm the planner
        rows.append([label, float(np.median(times)), float(np.percentile(times, 90))])
    print_table(f"fig2_dynamic: one re-solve at K = 50 (whole PRBs, min_max), {repeat} re-solves",
                ["CSI", "median ms", "p90 ms"], rows)


if __name__ == "__main__":
    main()

"""Resource guards: estimate what a run costs before it starts, and refuse what cannot finish.

Each estimate is a count any reader can redo — users × rounds × local iterations × SimPy events
per activity — times bytes per record or array element, against `simulation.max_events` and the
memory this machine has available. A refusal is an InputError naming the field that drives the
cost and the one to set, so the CLI prints one line and exits 2 instead of being killed for memory
or failing deep inside numpy.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass

import numpy as np

from splitsim.scenarios import Allocation, InputError, Scenario

# Measured on the Fig. 2 cell (benchmarks/bench_sim_sweep.py: K = 50, BA, 1.09 M events for
# 153.5 rounds × 35 local iterations × 50 users): 4.06 events per user-iteration.
EVENTS_PER_SFL_ITERATION = 4.1
EVENTS_PER_USER_ROUND = 3.0
# SplitLLM's mini-batch crosses 9 activities (user, uplink, edge, backhaul, cloud, back), SL's 5, FL's 1.
EVENTS_PER_BATCH = {"splitllm": 18.0, "sl": 10.0, "fl": 2.0, "sfl": 8.0}
RECORD_BYTES = 400  # one recorded activity: its tuple in the log plus its row in the events table
SIMPY_EVENTS_PER_S = 3e5  # benchmarks/bench_sfl_des.py on one core
VECTORISED_SPEEDUP = 20  # the vectorised SFL engine against SimPy: 23-53x (benchmarks/bench_fast_path.py)
# ... plus a fixed cost per round, whatever the work in it: 0.19 ms (records off) to 0.32 ms (records on)
# measured at K = 50 with V < 1 (a 20 Hz band: 627,000 rounds of almost nothing); with headroom.
VECTORISED_S_PER_ROUND = 5e-4
# The structured solver solves the whole eta grid as one batched system: about 48 float64 arrays
# of shape (grid, K) live at once (optimizer/structured.py).
SOLVER_ARRAYS = 48
CVXPY_BYTES_PER_USER2 = 830  # DPP compilation, measured: 77 GiB at K = 10,000 (bench_optimizer.py)
MEMORY_SHARE = 0.6  # of the memory available when the run starts

log = logging.getLogger("splitsim.analysis")


def available_memory_bytes() -> int:
    """MemAvailable of /proc/meminfo (Linux), else the physical memory, else 8 GiB."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * 2**30


def _gib(n: float) -> str:
    return f"{n / 2**30:.3g} GiB"


@dataclass(frozen=True)
class Cost:
    """What one simulation will take: SimPy events and recorded activities."""

    events: float
    records: float
    what: str  # how the count was made, for the message
    rounds: float = 0.0  # aggregation rounds: the vectorised engine pays a fixed cost for each

    @property
    def minutes(self) -> float:
        return self.events / SIMPY_EVENTS_PER_S / 60


def sfl_cost(allocation: Allocation, users: int, max_rounds: int | None, weights=None) -> Cost:
    rounds = math.ceil(allocation.I0 - 1e-12) if math.isfinite(allocation.I0) else math.inf
    if max_rounds is not None:
        rounds = min(rounds, max_rounds)
    mean_weight = 1.0 if weights is None else float(sum(weights) / max(len(weights), 1))
    iterations = math.ceil(allocation.V * mean_weight - 1e-12) if math.isfinite(allocation.V) else math.inf
    events = rounds * users * (iterations * EVENTS_PER_SFL_ITERATION + EVENTS_PER_USER_ROUND)
    return Cost(events, events / 2, f"{rounds:.3g} rounds (eta = {allocation.eta:.6g}) x {users} users x "
                                    f"{iterations:.3g} local iterations", rounds)


def epoch_cost(scheme: str, scenario: Scenario) -> Cost:
    """SplitLLM, SL, FL, SFL by epochs: rounds × every user's mini-batches."""
    users, rounds = scenario.cell.users, scenario.simulation.rounds
    batches = scenario.workload.dataset_samples // scenario.model.batch_size if scenario.model else 0
    events = rounds * (batches * EVENTS_PER_BATCH[scheme] + users * EVENTS_PER_USER_ROUND)
    return Cost(events, events / 2, f"{rounds} rounds x {batches} mini-batches over {users} users ({scheme})")


def check_cost(cost: Cost, scenario: Scenario, label: str, simpy: bool = True, records_in_memory: bool = True) -> None:
    """Refuse `cost` when it is over simulation.max_events or the memory its records need. The
    vectorised SFL engine (`simpy` False) does the same work about VECTORISED_SPEEDUP times faster,
    so its limit is that many times the events."""
    sim = scenario.simulation
    limit = sim.max_events * (1 if simpy else VECTORISED_SPEEDUP)
    if not cost.events <= limit:
        raise InputError(f"{label}: {cost.what} is about {cost.events:.3g} SimPy events (~{cost.minutes:.3g} min"
                         + ("" if simpy else f" in SimPy, /{VECTORISED_SPEEDUP} vectorised") + "), "
                         f"over {'' if simpy else f'{VECTORISED_SPEEDUP} x '}simulation.max_events = "
                         f"{sim.max_events:.3g}; set simulation.max_rounds (or raise "
                         "simulation.max_events knowingly)", field="simulation.max_events", value=sim.max_events)
    if not simpy:
        seconds = cost.events / (SIMPY_EVENTS_PER_S * VECTORISED_SPEEDUP) + cost.rounds * VECTORISED_S_PER_ROUND
        limit_s = sim.max_events / SIMPY_EVENTS_PER_S
        if seconds > limit_s:
            raise InputError(f"{label}: {cost.what} would take about {seconds / 60:.3g} min in the vectorised engine "
                             f"({cost.rounds:.3g} rounds at {VECTORISED_S_PER_ROUND * 1e3:g} ms each and more), over the "
                             f"{limit_s / 60:.3g} min that simulation.max_events = {sim.max_events:.3g} allows; set "
                             "simulation.max_rounds (or raise simulation.max_events knowingly)",
                             field="simulation.max_events", value=sim.max_events)
    if sim.record_events and records_in_memory:
        need, have = cost.records * RECORD_BYTES, available_memory_bytes() * MEMORY_SHARE
        if need > have:
            raise InputError(f"{label}: recording {cost.records:.3g} activities needs about {_gib(need)}, more than "
                             f"the {_gib(have)} this machine can spare; set simulation.record_events: false (`splitsim "
                             "simulate --events none` does) or simulation.max_rounds", field="simulation.record_events",
                             value=True)


def estimate_line(cost: Cost, scenario: Scenario, label: str, simpy: bool, engine: str | None = None) -> str:
    """What a run will cost, in one line: events, wall time on this engine, records' memory. `engine`
    names an engine priced at SimPy's rate (an upper bound: FedBuff's event list)."""
    if simpy:
        seconds = cost.events / SIMPY_EVENTS_PER_S
    else:
        seconds = cost.events / (SIMPY_EVENTS_PER_S * VECTORISED_SPEEDUP) + cost.rounds * VECTORISED_S_PER_ROUND
    when = f"{seconds:.2g} s" if seconds < 120 else f"{seconds / 60:.2g} min"
    records = f", {_gib(cost.records * RECORD_BYTES)} of activity records" if scenario.simulation.record_events else ""
    name = engine or f"{'SimPy' if simpy else 'vectorised'} engine"
    return f"estimate: {label}: about {cost.events:.3g} events, ~{when} in the {name}{records}"


def check_epochs(scenario: Scenario, schemes: list[str], runs: int = 1, records_in_memory: bool = True) -> None:
    """Schemes simulated by epochs (SplitLLM, SL, FL, SFL by epochs): each must fit the limits, and
    the estimate of them all (`runs` times each: seeds x variants) is logged (one line), as SFL's is."""
    costs = []
    for scheme in schemes:
        cost = epoch_cost(scheme, scenario)
        check_cost(cost, scenario, f"simulating {scheme}", records_in_memory=records_in_memory)
        costs.append(cost)
    total = Cost(runs * sum(c.events for c in costs), runs * sum(c.records for c in costs), "",
                 runs * sum(c.rounds for c in costs))
    fedbuff = scenario.training.aggregation == "fedbuff" and {"fl", "sfl"} & set(schemes) \
        and scenario.simulation.engine != "simpy"
    label = (f"{runs} x " if runs > 1 else "") + f"{' + '.join(schemes)} over {scenario.cell.users} users"
    log.info(estimate_line(total, scenario, label, simpy=True,
                           engine="event list (at most SimPy's time)" if fedbuff else None))


def check_allocations(allocations: dict[str, Allocation], scenario: Scenario, weights=None,
                      streamed: bool = False) -> None:
    """Before any SFL simulation: every strategy's run must fit the limits (`streamed`: its records
    go to a file round by round, so they need no memory); the estimate is logged (one line)."""
    from splitsim.netsim.simulate import sfl_engine

    simpy = sfl_engine(scenario.simulation) == "simpy"  # the vectorised engine schedules no SimPy event
    costs = {name: sfl_cost(allocation, scenario.cell.users, scenario.simulation.max_rounds, weights)
             for name, allocation in allocations.items()}
    for name, cost in costs.items():
        check_cost(cost, scenario, f"simulating strategy {name}", simpy, records_in_memory=not streamed)
    if len(costs) > 1:  # the run simulates them all, one after the other
        total = Cost(sum(c.events for c in costs.values()), sum(c.records for c in costs.values()),
                     " + ".join(f"{name}'s {c.rounds:.3g} rounds" for name, c in costs.items()),
                     sum(c.rounds for c in costs.values()))
        check_cost(total, scenario, f"simulating strategies {', '.join(costs)}", simpy,
                   records_in_memory=not streamed)
    if costs:
        total = Cost(sum(c.events for c in costs.values()), sum(c.records for c in costs.values()), "",
                     sum(c.rounds for c in costs.values()))
        log.info(estimate_line(total, scenario, f"{len(costs)} simulation(s) of {scenario.cell.users} users", simpy))


MAX_TRACK_ENTRIES = 2e8  # gain factors (8 bytes each) a time-varying channel may hold in one round


def check_dynamics(world, allocations: dict[str, Allocation]) -> None:
    """Before simulating a cell that moves: a round deadline some user can meet, and a channel track
    that fits (round length / coherence time x users gain factors are held per round)."""
    from splitsim.optimizer.delay_model import compute_seconds_per_round

    scenario = world.scenario
    sim, ch = scenario.simulation, scenario.channel
    for name, alloc in allocations.items():
        round_s = alloc.T_k_s / alloc.I0  # (K,) each user's round on the frozen channel
        if sim.round_deadline_s is not None:
            if ch.time_varying:  # a lucky channel may be faster than the plan; compute alone is a hard bound
                fastest = float(np.min(compute_seconds_per_round(world.inputs, alloc.V, alloc.cpu_fraction)))
                what = "computing its local iterations alone (no transfer)"
            else:
                fastest = float(np.min(round_s))
                what = "its round on this channel"
            if sim.round_deadline_s < fastest:
                raise InputError(f"no user can meet the deadline under strategy {name}: the fastest needs {fastest:.4g} s "
                                 f"for {what}", field="simulation.round_deadline_s", value=sim.round_deadline_s)
        if name == "proposed_replan":
            check_replan(scenario, alloc)
        if ch.time_varying:
            entries = float(np.max(round_s)) / ch.coherence_time_s * scenario.cell.users
            if entries > MAX_TRACK_ENTRIES:
                raise InputError(f"a round of strategy {name} lasts about {float(np.max(round_s)):.3g} s: "
                                 f"{entries:.3g} channel blocks x users to draw per round, over {MAX_TRACK_ENTRIES:.0e}; "
                                 "raise channel.coherence_time_s", field="channel.coherence_time_s",
                                 value=ch.coherence_time_s)


def check_replan(scenario: Scenario, alloc: Allocation) -> None:
    """proposed_replan's timings against its run (the optimizer's delay at t = 0) and one re-plan."""
    opt, ch, study = scenario.optimizer, scenario.channel, scenario.study
    run_s = alloc.T_s
    intervals = study.replan_intervals_s if study.replan_intervals_s is not None else [opt.replan_interval_s]
    delays = study.csi_delays_s if study.csi_delays_s is not None else [ch.csi_delay_s]
    interval_field = "study.replan_intervals_s" if study.replan_intervals_s is not None else "optimizer.replan_interval_s"
    delay_field = "study.csi_delays_s" if study.csi_delays_s is not None else "channel.csi_delay_s"
    for interval in intervals:
        if interval is not None and interval > run_s:
            raise InputError(f"longer than the run: proposed_replan's plan takes {run_s:.4g} s, so it would never "
                             "re-plan", field=interval_field, value=interval)
        if interval is not None and opt.replan_solve_s != "measured" and \
                interval < opt.replan_solve_s + opt.replan_signalling_s:
            raise InputError(f"shorter than one re-plan takes ({opt.replan_solve_s:g} s to solve + "
                             f"{opt.replan_signalling_s:g} s to signal)", field=interval_field, value=interval)
    for delay in delays:
        if delay > run_s:
            raise InputError(f"longer than the run ({run_s:.4g} s planned): the base station would only ever know "
                             "the channel at t = 0", field=delay_field, value=delay)


def check_optimizer(scenario: Scenario) -> None:
    """Problem (17) for K users: the batched eta grid (structured) or cvxpy's O(K^2) compilation."""
    k = scenario.cell.users
    have = available_memory_bytes() * MEMORY_SHARE
    grid = math.floor(0.99 / scenario.optimizer.eta_grid_step) + 1
    need = 8.0 * SOLVER_ARRAYS * grid * k
    if need > have:
        raise InputError(f"solving problem (17) for {k:,} users on a {grid}-point eta grid needs about {_gib(need)}, "
                         f"more than the {_gib(have)} this machine can spare; lower cell.users (or raise "
                         "optimizer.eta_grid_step)", field="cell.users", value=k)
    if scenario.optimizer.solver == "cvxpy":
        need = CVXPY_BYTES_PER_USER2 * k * k
        if need > have:
            raise InputError(f"cvxpy's compilation for {k:,} users needs about {_gib(need)}, more than the "
                             f"{_gib(have)} this machine can spare; use optimizer.solver: structured",
                             field="optimizer.solver", value="cvxpy")


def check_energy(scenario: Scenario, budgets: list[float | None], field: str) -> None:
    """The energy-aware allocation: the cell's size, and (without a model, where it is cheap) that
    every budget can be met at all, naming the user and the least energy it needs."""
    if scenario.scheme != "sfl":
        return
    from splitsim.optimizer.energy.strategies import check_budget, check_energy_size

    check_energy_size(scenario.cell.users)
    radio = scenario.radio
    if radio.link_model == "nr" and radio.subcarrier_spacing_khz is not None and scenario.optimizer.energy_weight is None:
        from splitsim.optimizer.energy.on_link import check_energy_on_link_size
        from splitsim.scenarios.nr import prbs_in_channel

        refused = check_energy_on_link_size(
            scenario.cell.users, prbs_in_channel(radio.uplink_main_bandwidth_hz, radio.subcarrier_spacing_khz) or 1)
        if refused:
            raise InputError(refused, field="cell.users", value=scenario.cell.users)
    budgets = [b for b in budgets if b is not None]
    if budgets and scenario.model is None:
        from .world import realise

        world = realise(scenario)  # cheap without a model: the channel and cycle draws
        check_budget(world.inputs, world.energy, min(budgets), field)


def check_energy_aware(scenario: Scenario) -> None:
    """check_energy for a run that allocates with optimizer.energy_budget_j / energy_weight."""
    opt = scenario.optimizer
    if opt.energy_budget_j is not None or opt.energy_weight is not None:
        check_energy(scenario, [opt.energy_budget_j], "optimizer.energy_budget_j")


def check_sfl_simulation(scenario: Scenario, streamed: bool) -> None:
    """Before simulating SFL without a model (cheap: the channel draw and problem (17)): every
    strategy's run fits the limits and its dynamics. With a model the profile must be measured
    first, so this runs after it (analysis.simulation)."""
    if scenario.scheme != "sfl" or scenario.model is not None:
        return
    from .allocations import world_allocations
    from .world import realise

    world = realise(scenario)
    allocations = world_allocations(world)
    check_allocations(allocations, scenario, streamed=streamed)
    check_dynamics(world, allocations)


def check_availability_trace(scenario: Scenario) -> None:
    """Parse the availability trace now: a bad line costs no run."""
    if scenario.simulation.availability_trace is not None:
        from splitsim.netsim.participation import read_availability_trace

        read_availability_trace(scenario.simulation.availability_trace, scenario.cell.users)

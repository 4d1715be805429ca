"""Run a protocol on an allocation and collect what happened.

`simulate_sfl` turns (DelayInputs, Allocation, simulation options, channel draw) into a plan of
durations, runs the SimPy processes and returns a `SimulationResult`: the total delay, its
breakdown per user (compute, uplink, downlink, waiting), the end of every round and the records.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import simpy

from splitsim.scenarios import (Allocation, CellConfig, ChannelConfig, ChannelState, DelayInputs, EnergyInputs, RadioConfig,
                       SimulationConfig)

from splitsim.scenarios.nr_link import equal_share_hz

from .channel import downlink_snr_coeff_hz, round_gain_parts
from .dynamics import ChannelTrack
from .participation import Participation, availability_for
from .energy import activity_power_w, energy_summary, user_energy_from_busy
from .engine import EventLog, gc_paused, scheduled_events, work_fractions
from .errors import NetsimError
from .protocols.rounds import LINK_ADAPTER_UP, LINK_UP, track_links
from .protocols.sfl import SflPlan, run_sfl
from .replanning import Counts, Replanning, ReplanSpec, Uplink


@dataclass
class SimulationResult:
    """What one simulated training run gives. Per-user arrays have shape (K,); times in seconds."""

    scheme: str
    strategy: str
    total_delay_s: float
    rounds: float  # rounds simulated (fractional when I0 is)
    local_iterations: float  # V
    compute_s: np.ndarray
    uplink_s: np.ndarray
    downlink_s: np.ndarray
    round_end_s: np.ndarray
    log: EventLog
    simpy_events: int
    wall_s: float
    paper_assumptions: bool
    extra: dict = field(default_factory=dict)
    busy_s: np.ndarray | None = None  # (activity kinds, K) seconds each user spent in each kind
    power_w: np.ndarray | None = None  # (activity kinds, K) the power each user draws in each kind
    idle_power_w: float = 0.0
    engine: str = "simpy"
    event_detail: str = "activity"
    wasted_s: np.ndarray | None = None  # (K,) busy seconds in rounds whose update was not aggregated
    rounds_joined: np.ndarray | None = None  # (K,)
    round_updates: np.ndarray | None = None  # (R,) adapters aggregated per round
    round_delivered: list[np.ndarray] | None = None  # per round, the users whose adapter was aggregated
    round_participants: np.ndarray | None = None  # (R,) users that started each round
    updates: pd.DataFrame | None = None  # FedBuff: each update's user, versions, staleness, arrival time (s)

    def user_energy_j(self) -> dict[str, np.ndarray] | None:
        """Each user's energy over the run by category (K,), or None without an energy model."""
        if self.busy_s is None or self.power_w is None:
            return None
        return user_energy_from_busy(self.busy_s, self.power_w, self.total_delay_s, self.idle_power_w)

    @property
    def users(self) -> int:
        return int(self.compute_s.shape[0])

    @property
    def waiting_s(self) -> np.ndarray:
        """Idle time per user: at a barrier, in a server queue, or waiting for a peer."""
        return np.maximum(self.total_delay_s - self.compute_s - self.uplink_s - self.downlink_s, 0.0)

    @property
    def critical_user(self) -> int:
        """The user with the least idle time: the one on the critical path."""
        return int(np.argmin(self.waiting_s))

    def breakdown(self) -> dict:
        """Delay breakdown of the critical user (sums to the total) and the mean over users."""
        k = self.critical_user
        parts = {"compute_s": self.compute_s, "uplink_s": self.uplink_s, "downlink_s": self.downlink_s,
                 "waiting_s": self.waiting_s}
        return {"critical_user": {"user": k, **{n: float(a[k]) for n, a in parts.items()}},
                "mean_over_users": {n: float(a.mean()) for n, a in parts.items()}}

    def events_frame(self) -> pd.DataFrame:
        """The activity records; with an energy model, `energy_j` = the user's power x duration."""
        return shape_events(self.log.to_frame(), self.power_w, self.event_detail, self.strategy)

    def participation_summary(self) -> dict:
        """Who took part and what was wasted (users who dropped out, went offline or missed the deadline)."""
        busy = self.busy_s.sum() if self.busy_s is not None else 0.0
        return {"mean_participants_per_round": float(np.mean(self.round_participants)),
                "mean_updates_per_round": float(np.mean(self.round_updates)),
                "rounds_without_update": int(np.sum(self.round_updates == 0)),
                "wasted_user_s": float(self.wasted_s.sum()),
                "wasted_share_of_busy": float(self.wasted_s.sum() / busy) if busy > 0 else 0.0}

    def summary(self) -> dict:
        return {
            "scheme": self.scheme, "strategy": self.strategy, "total_delay_s": self.total_delay_s,
            "rounds": self.rounds, "local_iterations": self.local_iterations, "users": self.users,
            "paper_assumptions": self.paper_assumptions, "breakdown": self.breakdown(),
            "round_time_s": {"mean": float(np.diff(self.round_end_s, prepend=0.0).mean()) if len(self.round_end_s)
                             else 0.0},
            **({"participation": self.participation_summary()} if self.round_updates is not None else {}),
            "engine": self.engine, "records": len(self.log), "simpy_events": self.simpy_events, "wall_s": self.wall_s,
            "simpy_events_per_s": self.simpy_events / self.wall_s if self.wall_s > 0 else None,
            **({"energy": energy_summary(e, self.rounds)} if (e := self.user_energy_j()) is not None else {}),
            **self.extra,
        }


def shape_events(frame: pd.DataFrame, power_w: np.ndarray | None, detail: str = "activity",
                 strategy: str | None = None) -> pd.DataFrame:
    """Add `energy_j` (the user's power x duration, with an energy model) and, for detail 'round',
    sum the rows per user, round, activity kind and node (time_s: the first start; end_s: the last end);
    `strategy` (the allocation strategy, or the scheme of an epoch-based run) names the run in a
    `strategy` column, as in the CLI's events file."""
    if power_w is not None and len(frame):
        kinds = frame["kind"].cat.codes.to_numpy()
        users = frame["user"].to_numpy()
        mine = users >= 0
        energy = np.zeros(len(frame))
        energy[mine] = power_w[kinds[mine], users[mine]] * frame["duration_s"].to_numpy()[mine]
        frame["energy_j"] = energy
    if detail == "round" and len(frame):
        sums = {c: (c, "sum") for c in ("duration_s", "bits", "bytes", "energy_j") if c in frame}
        frame = (frame.groupby(["round", "user", "kind", "node", "category"], observed=True, sort=True)
                 .agg(time_s=("time_s", "min"), end_s=("end_s", "max"), activities=("time_s", "size"), **sums)
                 .reset_index())
    if strategy is not None:
        frame["strategy"] = strategy
    return frame


def _round_fractions(I0: float, max_rounds: int | None) -> list[float]:
    rounds = work_fractions(I0)
    return rounds[:max_rounds] if max_rounds is not None else rounds


def build_sfl_plan(inputs: DelayInputs, allocation: Allocation, sim: SimulationConfig, radio: RadioConfig,
                   channel_cfg: ChannelConfig, channel: ChannelState, rng: np.random.Generator,
                   cell: CellConfig | None = None, replan: ReplanSpec | None = None) -> SflPlan:
    """Durations of every SFL activity under `allocation` (see netsim.protocols.sfl), and the
    time-varying channel and participation draws when the scenario has them. `rng` gives the
    per-round redraws and stragglers; its spawned children the channel track, the participation
    and the synthetic availability (netsim.dynamics, netsim.participation), and with `replan` (the
    base station re-plans during the run: netsim.replanning) the CSI errors."""
    if allocation.users != inputs.users or channel.users != inputs.users:
        raise NetsimError(f"allocation has {allocation.users} users, inputs {inputs.users}, channel {channel.users}",
                          field="allocation.users", value=allocation.users)
    for name in ("b_s_hz", "b_c_hz"):
        arr = getattr(allocation, name)
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise NetsimError("every user needs a finite bandwidth > 0", field=f"allocation.{name}",
                              value=float(arr[~(np.isfinite(arr) & (arr > 0))][0]))
    rounds = _round_fractions(allocation.I0, sim.max_rounds)
    n_rounds = len(rounds)
    factors, large_scale = round_gain_parts(channel, channel_cfg, n_rounds, rng)
    p_s, p_c, cpu = allocation.powers_and_clock()
    c_main = inputs.snr_coeff_main_hz[None, :] * factors * p_s
    c_fed = inputs.snr_coeff_fed_hz[None, :] * factors * p_c
    uplink_rate = inputs.uplink_rate.rate_bps  # Shannon's, or the NR link's (scenarios.nr_link.NrRate)
    up = _seconds(inputs.activation_bits, uplink_rate(allocation.b_s_hz[None, :], c_main))
    adapter_up = _seconds(inputs.adapter_bits, uplink_rate(allocation.b_c_hz[None, :], c_fed))
    grad_down = adapter_down = None
    if sim.downlink:
        c_down = downlink_snr_coeff_hz(channel, radio.bs_tx_power_dbm)[None, :] * factors
        rate_down = inputs.downlink_rate.rate_bps(equal_share_hz(radio, radio.downlink_bandwidth_hz, inputs.users),
                                                  c_down)
        grad_down = _seconds(inputs.gradient_bits, rate_down)
        adapter_down = _seconds(inputs.adapter_bits, rate_down)
    client = inputs.client_seconds_per_iteration / cpu
    share = inputs.client_forward_share
    weights = inputs.iteration_weights if inputs.iteration_weights is not None else np.ones(inputs.users)
    iterations = [work_fractions(allocation.V * w) for w in weights]
    track, participation = plan_dynamics(sim, channel_cfg, channel, cell, np.array([len(i) for i in iterations]), rng)
    links = None
    if track is not None:
        k = inputs.users
        down = (np.full(k, equal_share_hz(radio, radio.downlink_bandwidth_hz, k)),
                downlink_snr_coeff_hz(channel, radio.bs_tx_power_dbm))
        links = track_links((allocation.b_s_hz, inputs.snr_coeff_main_hz * p_s),
                            (allocation.b_c_hz, inputs.snr_coeff_fed_hz * p_c), down if sim.downlink else None,
                            {"activation": inputs.activation_bits, "gradient": inputs.gradient_bits,
                             "adapter": inputs.adapter_bits}, inputs.uplink_rate, inputs.downlink_rate)
    replanning = None
    if replan is not None:
        (csi_seed,) = rng.spawn(1)  # after plan_dynamics' three children: no other draw moves
        uplinks = (Uplink(LINK_UP, inputs.snr_coeff_main_hz * p_s, inputs.activation_bits, inputs.uplink_rate),
                   Uplink(LINK_ADAPTER_UP, inputs.snr_coeff_fed_hz * p_c, inputs.adapter_bits, inputs.uplink_rate))
        counts = None
        if replan.settings.eta == "rechosen":
            counts = Counts(allocation.eta, allocation.V, allocation.I0, np.asarray(weights, dtype=float),
                            sim.max_rounds)
        replanning = Replanning(replan.settings, replan.planner, uplinks,
                                (allocation.b_s_hz, allocation.b_c_hz, replan.initial_round_s),
                                int(csi_seed.integers(2**63)), factors=factors, large_scale=large_scale,
                                counts=counts)
    return SflPlan(
        rounds=rounds, iterations=iterations, track=track, links=links, participation=participation,
        replan=replanning,
        client_forward_s=share * client, client_backward_s=(1.0 - share) * client,
        server_s=inputs.server_seconds_per_iteration.copy(),
        uplink_activation_s=up, uplink_adapter_s=adapter_up, downlink_gradient_s=grad_down,
        downlink_adapter_s=adapter_down, activation_bits=inputs.activation_bits, adapter_bits=inputs.adapter_bits,
        gradient_bits=inputs.gradient_bits, server_concurrency=sim.server_concurrency,
        slowdown=straggler_slowdown(sim, n_rounds, inputs.users, rng),
    )


def _seconds(bits: float, rate_bps: np.ndarray) -> np.ndarray:
    """bits / rate; a link that delivers nothing (an NR user out of coverage) takes forever."""
    with np.errstate(divide="ignore"):
        return np.where(rate_bps > 0, bits / rate_bps, np.inf)


def plan_dynamics(sim: SimulationConfig, channel_cfg: ChannelConfig, link: ChannelState, cell: CellConfig | None,
                  iterations: np.ndarray, rng: np.random.Generator, anchors_m: np.ndarray | None = None):
    """(track, participation) of any protocol's plan, each None when off: the time-varying channel of
    `link` (netsim.dynamics; needs `cell`; `anchors_m` where each link ends, default the base
    station) and who trains each round (netsim.participation; `iterations` (K,) local steps each).
    Drawn from `rng`'s spawned children: no draw of `rng` itself moves."""
    track_rng, participation_rng, availability_rng = rng.spawn(3)
    track = participation = None
    if channel_cfg.time_varying:
        if cell is None:
            raise NetsimError("a time-varying channel needs the cell (for mobility)", field="channel.coherence_time_s",
                              value=channel_cfg.coherence_time_s)
        track = ChannelTrack(link, channel_cfg, cell, track_rng, anchors_m=anchors_m)
    if sim.users_come_and_go:
        participation = Participation(sim, np.asarray(iterations), participation_rng,
                                      availability_for(sim, link.users, availability_rng))
    return track, participation


def straggler_slowdown(sim: SimulationConfig, rounds: int, users: int, rng: np.random.Generator) -> np.ndarray | None:
    """(R, K) compute multipliers: a user straggles in a round with `straggler_probability`,
    its compute then taking `straggler_slowdown` times longer. None when stragglers are off."""
    if sim.straggler_probability <= 0:
        return None
    slow = rng.random((rounds, users)) < sim.straggler_probability
    return np.where(slow, sim.straggler_slowdown, 1.0)


def run_protocol(runner, plan, sim: SimulationConfig, on_round=None):
    """Run `runner(env, plan, log, on_round)` to completion with the GC paused.

    Returns (env, accounts, log, wall seconds): what every protocol's result is built from."""
    env = simpy.Environment()
    log = EventLog(enabled=sim.record_events)
    start = time.perf_counter()
    with gc_paused():
        acc = runner(env, plan, log, on_round)
    return env, acc, log, time.perf_counter() - start


def vectorised_applies(sim: SimulationConfig) -> bool:
    """The vectorised engine applies when users do not interact (no shared main-server queue)."""
    return sim.server_concurrency is None


def sfl_engine(sim: SimulationConfig) -> str:
    """The engine `simulate_sfl` uses: 'vectorised' or 'simpy' (see simulation.engine)."""
    if sim.engine == "vectorised" and not vectorised_applies(sim):
        raise NetsimError("the vectorised engine needs users that do not interact; set simulation.server_concurrency "
                          "to null or simulation.engine to simpy or auto", field="simulation.engine", value=sim.engine)
    if sim.engine == "simpy" or not vectorised_applies(sim):
        return "simpy"
    return "vectorised"


def simulate_sfl(inputs: DelayInputs, allocation: Allocation, sim: SimulationConfig, radio: RadioConfig,
                 channel_cfg: ChannelConfig, channel: ChannelState, rng: np.random.Generator,
                 on_round: Callable[[int, float], None] | None = None,
                 energy: EnergyInputs | None = None, cell: CellConfig | None = None,
                 events_sink: Callable[[pd.DataFrame], None] | None = None,
                 replan: ReplanSpec | None = None) -> SimulationResult:
    """Simulate SFL (FedsLLM) training under `allocation`; see `build_sfl_plan` for the inputs.

    With `energy`, the result carries each user's energy (at the allocation's powers and clocks).
    With `events_sink`, the event table goes to it one round at a time (as `events_frame` would
    give it) and is not kept: memory stays bounded for huge runs. With `replan`, the base station
    re-plans the bandwidth during the run (netsim.replanning); `extra` then says what it did."""
    plan = build_sfl_plan(inputs, allocation, sim, radio, channel_cfg, channel, rng, cell, replan)
    power_w = activity_power_w(energy, inputs.users, *allocation.radiated_powers_and_clock(inputs)) \
        if energy is not None else None
    engine = sfl_engine(sim)
    record = sim.record_events
    to_sink = (lambda frame: events_sink(shape_events(frame, power_w, sim.event_detail, allocation.strategy))) if events_sink else None
    if engine == "vectorised":
        from .fast_sfl import ColumnLog, node_names, records_frame, run_sfl_vectorised

        names = node_names(inputs.users)
        start = time.perf_counter()
        with gc_paused():
            acc, total, kept = run_sfl_vectorised(
                plan, record, on_round, sink=(lambda cols: to_sink(records_frame(cols, names))) if to_sink else None)
        wall, events, log = time.perf_counter() - start, 0, ColumnLog(kept, names, enabled=record)
    else:
        round_hook = on_round
        if to_sink is not None and record:
            def round_hook(r: int, t: float) -> None:  # flush the finished round's records
                to_sink(log.to_frame())
                log.rows.clear()
                if on_round is not None:
                    on_round(r, t)
        log = EventLog(enabled=record)
        env = simpy.Environment()
        start = time.perf_counter()
        with gc_paused():
            acc = run_sfl(env, plan, log, round_hook)
        wall, total, events = time.perf_counter() - start, float(env.now), scheduled_events(env)
    rounds_run = float(sum(plan.rounds))
    return SimulationResult(
        scheme="sfl", strategy=allocation.strategy, total_delay_s=total, rounds=rounds_run,
        local_iterations=allocation.V, compute_s=acc.compute_s, uplink_s=acc.uplink_s, downlink_s=acc.downlink_s,
        round_end_s=np.asarray(acc.round_end_s), log=log, simpy_events=events, wall_s=wall,
        paper_assumptions=sim.paper_assumptions(channel_cfg),
        extra={"eta": allocation.eta, "I0": allocation.I0, "rounds_planned": math.ceil(allocation.I0 - 1e-12),
               **(plan.replan.summary() if plan.replan is not None else {})},
        busy_s=acc.busy_s, idle_power_w=energy.idle_power_w if energy is not None else 0.0, power_w=power_w,
        engine=engine, event_detail=sim.event_detail, wasted_s=acc.wasted_s, rounds_joined=acc.rounds_joined,
        round_updates=np.asarray(acc.round_updates) if sim.users_come_and_go else None,
        round_delivered=list(acc.round_delivered) if sim.users_come_and_go else None,
        round_participants=np.asarray(acc.round_participants) if sim.users_come_and_go else None,
    )

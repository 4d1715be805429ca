"""Plans of the epoch-based schemes (SplitLLM, SL, FL) from a WorkloadProfile, and their runs.

One round is one local epoch: user k trains `batches[k]` mini-batches. Per-batch compute is a
tier's FLOPs (forward, backward) from the profile over the sustained FLOP/s of the device class
that runs it; messages are the profile's bytes at the cuts and its adapters. Wireless rates follow
the FDMA formula on the drawn channels: a user who has the channel to itself (SplitLLM and SL users
take turns) gets the whole band; users transmitting together (FL) share it equally.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from splitsim.scenarios import (CellConfig, ChannelConfig, ChannelState, ComputeConfig, EnergyInputs, RadioConfig,
                       SimulationConfig, WorkloadProfile)
from splitsim.scenarios.nr_link import equal_share_hz, link_rates
from splitsim.scenarios.types import dbm_to_watt

from .channel import downlink_snr_coeff_hz, path_loss_db, round_gain_factors, round_gain_parts
from .dynamics import ChannelTrack, fading_power
from .energy import activity_power_w
from .engine import KIND, EventLog, scheduled_events
from .errors import NetsimError
from .protocols.fedbuff import FedBuffPlan, SplitSteps, run_fedbuff, run_fedbuff_event_list
from .protocols.fl import FlPlan, run_fl
from .protocols.rounds import LINK_ADAPTER_UP, track_links
from .replanning import Replanning, ReplanSpec, Uplink
from .protocols.sl import SlPlan, run_sl
from .protocols.splitllm import SplitLlmPlan, run_splitllm
from .simulate import SimulationResult, plan_dynamics, run_protocol, straggler_slowdown


def _seconds(bits: float, rate_bps: np.ndarray | float) -> np.ndarray:
    rate = np.asarray(rate_bps, dtype=float)
    with np.errstate(divide="ignore"):
        return np.where(rate > 0, bits / rate, np.inf)


def _per_batch(profile: WorkloadProfile, compute: ComputeConfig, role: str, start: int, stop: int) -> tuple[float, float]:
    tier = profile.tier(start, stop)
    speed = compute.flops_per_s(role, profile.dtype)
    return tier.forward_flops / speed, tier.backward_flops / speed


def _check_batches(batches: np.ndarray, users: int) -> np.ndarray:
    batches = np.asarray(batches, dtype=np.int64)
    if batches.shape != (users,) or np.any(batches < 0):
        raise NetsimError(f"need one non-negative batch count per user ({users})", field="batches",
                          value=batches.tolist()[:5])
    return batches


def edge_interference_w(cross_gain: np.ndarray, association: np.ndarray, edges: int, tx_power_w: float) -> np.ndarray:
    """(M,) mean interference power (W) at each edge under full reuse: every other edge has one
    active user at a time, drawn uniformly from its users; I_m = sum_{m' != m} mean_{k in U(m')} p·G[k, m].

    `cross_gain`: (K, M) linear power gain from each user to each edge."""
    interference = np.zeros(edges)
    for other in range(edges):
        members = np.flatnonzero(association == other)
        if len(members) == 0:
            continue
        received = tx_power_w * cross_gain[members].mean(axis=0)  # (M,) at every edge
        received[other] = 0.0
        interference += received
    return interference


def downlink_interference_w(cross_gain: np.ndarray, association: np.ndarray, edge_tx_power_w: float) -> np.ndarray:
    """(K,) interference power (W) at each user under full reuse when every other edge transmits
    (to one of its users) while its own edge sends to it: sum_{m' != m(k)} p_edge·G[k, m']."""
    own = cross_gain[np.arange(len(association)), association]
    return edge_tx_power_w * (cross_gain.sum(axis=1) - own)


def edge_spectrum(radio: RadioConfig, edges: int, band_hz: float, snr_coeff_hz: np.ndarray,
                  interference_w: np.ndarray | None, noise_psd_dbm_per_hz: float) -> tuple[float, np.ndarray]:
    """(band per edge in Hz, effective c = g·p/N0 per user) under `radio.edge_spectrum`.

    orthogonal: band/M each, no interference. reuse: the whole band, each user's interference
    `interference_w` (K,) folded into c so that Shannon's rate (scenarios.types.fdma_rate_bps) gives
    B·log2(1 + p·g/(N0·B + I_k)):
    c_eff = c·N0·B/(N0·B + I_k)."""
    if radio.edge_spectrum == "orthogonal":
        return equal_share_hz(radio, band_hz, edges), snr_coeff_hz
    if interference_w is None:
        raise NetsimError("full reuse needs the users' gains to every edge", field="radio.edge_spectrum",
                          value=radio.edge_spectrum)
    noise_w = dbm_to_watt(noise_psd_dbm_per_hz) * band_hz
    return equal_share_hz(radio, band_hz), snr_coeff_hz * noise_w / (noise_w + interference_w)


def build_splitllm_plan(profile: WorkloadProfile, cuts: list[int], compute: ComputeConfig, radio: RadioConfig,
                        sim: SimulationConfig, channel_cfg: ChannelConfig, edge_link: ChannelState,
                        association: np.ndarray, edges: int, batches: np.ndarray,
                        rng: np.random.Generator, cross_gain: np.ndarray | None = None,
                        cell: CellConfig | None = None, edge_positions_m: np.ndarray | None = None) -> SplitLlmPlan:
    """`edge_link`: each user's channel to its own edge; `association[k]`: that edge's index;
    `cross_gain` (K, M): each user's linear gain to every edge (needed for `edge_spectrum: reuse`).
    A time-varying channel (needs `cell` and `edge_positions_m`) moves the users relative to their
    edge (they keep it; the interference of `reuse` stays at its planned mean).

    The uplink band B_s (and the downlink band) is shared by the edges as `radio.edge_spectrum`
    says; within an edge one user transmits at a time and has that edge's band to itself."""
    if len(cuts) != 2:
        raise NetsimError("SplitLLM needs two cut layers (user | edge | cloud)", field="model.cut_layers", value=cuts)
    k = edge_link.users
    batches = _check_batches(batches, k)
    c1, c2 = cuts
    uf, ub = _per_batch(profile, compute, "user", 0, c1)
    ef, eb = _per_batch(profile, compute, "edge", c1, c2)
    cf, cb = _per_batch(profile, compute, "cloud", c2, profile.num_blocks)
    b1, b2 = profile.boundary(c1), profile.boundary(c2)
    user_adapter = 8.0 * profile.tier(0, c1).adapter_bytes
    edge_adapter = 8.0 * profile.tier(c1, c2).adapter_bytes
    bits = {"activation": 8.0 * (b1.forward_bytes + b1.side_bytes), "gradient": 8.0 * b1.backward_bytes,
            "backhaul_activation": 8.0 * (b2.forward_bytes + b2.side_bytes), "backhaul_gradient": 8.0 * b2.backward_bytes,
            "user_adapter": user_adapter, "edge_adapter": edge_adapter}
    factors = round_gain_factors(edge_link, channel_cfg, sim.rounds, rng)
    noise = edge_link.noise_psd_dbm_per_hz
    up_interference = down_interference = None
    if cross_gain is not None:  # full reuse: the other edges' transmissions interfere (reciprocal gains)
        up_interference = edge_interference_w(cross_gain, association, edges,
                                              dbm_to_watt(edge_link.tx_power_dbm))[association]
        down_interference = downlink_interference_w(cross_gain, association, dbm_to_watt(radio.edge_tx_power_dbm))
    up_band, c_up = edge_spectrum(radio, edges, radio.uplink_main_bandwidth_hz, edge_link.snr_coeff_hz,
                                  up_interference, noise)
    uplink, downlink = link_rates(radio, edge_link)
    up_rate = uplink.rate_bps(up_band, c_up[None, :] * factors)
    down = None
    if sim.downlink:
        down_band, c_down = edge_spectrum(radio, edges, radio.downlink_bandwidth_hz,
                                          downlink_snr_coeff_hz(edge_link, radio.edge_tx_power_dbm),
                                          down_interference, noise)
        down = downlink.rate_bps(down_band, c_down[None, :] * factors)
    haul = lambda b: radio.backhaul_latency_s + b / radio.backhaul_rate_bps  # noqa: E731
    edge_users = [[int(u) for u in np.flatnonzero(association == m)] for m in range(edges)]
    return SplitLlmPlan(
        rounds=sim.rounds, edge_users=edge_users, batches=batches, user_forward_s=uf, user_backward_s=ub,
        edge_forward_s=ef, edge_backward_s=eb, cloud_s=cf + cb, uplink_s=_seconds(bits["activation"], up_rate),
        downlink_gradient_s=None if down is None else _seconds(bits["gradient"], down),
        user_adapter_up_s=_seconds(user_adapter, up_rate),
        user_adapter_down_s=None if down is None else _seconds(user_adapter, down),
        backhaul_activation_s=haul(bits["backhaul_activation"]), backhaul_gradient_s=haul(bits["backhaul_gradient"]),
        bits=bits, backhaul_rate_bps=radio.backhaul_rate_bps, backhaul_latency_s=radio.backhaul_latency_s,
        cloud_concurrency=sim.cloud_concurrency, slowdown=straggler_slowdown(sim, sim.rounds, k, rng),
        **_splitllm_dynamics(sim, channel_cfg, edge_link, cell, edge_positions_m, association, batches, rng, bits,
                             up_band, c_up, (down_band, c_down) if sim.downlink else None, (uplink, downlink)))


def _splitllm_dynamics(sim, channel_cfg, edge_link, cell, edge_positions_m, association, batches, rng, bits,
                       up_band, c_up, down, rates: tuple) -> dict:
    if channel_cfg.time_varying and edge_positions_m is None:
        raise NetsimError("a time-varying SplitLLM channel needs the edge positions", field="channel.coherence_time_s",
                          value=channel_cfg.coherence_time_s)
    anchors = None if edge_positions_m is None else np.asarray(edge_positions_m)[association]
    track, participation = plan_dynamics(sim, channel_cfg, edge_link, cell, batches, rng, anchors)
    links = None
    if track is not None:
        k = edge_link.users
        up = (np.full(k, up_band), c_up)
        links = track_links(up, up, None if down is None else (np.full(k, down[0]), down[1]),
                            {**bits, "adapter": bits["user_adapter"]}, *rates)
    return {"track": track, "links": links, "participation": participation}


def build_sl_plan(profile: WorkloadProfile, cut: int, compute: ComputeConfig, radio: RadioConfig,
                  sim: SimulationConfig, channel_cfg: ChannelConfig, link: ChannelState, batches: np.ndarray,
                  rng: np.random.Generator, cell: CellConfig | None = None) -> SlPlan:
    """`link`: each user's channel to the base station (main server); the active user has the whole
    band. With a time-varying channel (needs `cell`) or users who come and go, the plan carries
    the channel track and the participation draws."""
    k = link.users
    batches = _check_batches(batches, k)
    uf, ub = _per_batch(profile, compute, "user", 0, cut)
    sf, sb = _per_batch(profile, compute, "server", cut, profile.num_blocks)
    b = profile.boundary(cut)
    user_adapter = 8.0 * profile.tier(0, cut).adapter_bytes
    bits = {"activation": 8.0 * (b.forward_bytes + b.side_bytes), "gradient": 8.0 * b.backward_bytes,
            "user_adapter": user_adapter}
    factors = round_gain_factors(link, channel_cfg, sim.rounds, rng)
    uplink, downlink = link_rates(radio, link)  # the active user has the whole band
    up_rate = uplink.rate_bps(equal_share_hz(radio, radio.uplink_main_bandwidth_hz),
                              link.snr_coeff_hz[None, :] * factors)
    down = None
    if sim.downlink:
        down = downlink.rate_bps(equal_share_hz(radio, radio.downlink_bandwidth_hz),
                                 downlink_snr_coeff_hz(link, radio.bs_tx_power_dbm)[None, :] * factors)
    return SlPlan(rounds=sim.rounds, batches=batches, user_forward_s=uf, user_backward_s=ub, server_s=sf + sb,
                  uplink_s=_seconds(bits["activation"], up_rate),
                  downlink_gradient_s=None if down is None else _seconds(bits["gradient"], down),
                  user_adapter_up_s=_seconds(user_adapter, up_rate),
                  user_adapter_down_s=None if down is None else _seconds(user_adapter, down),
                  bits=bits, slowdown=straggler_slowdown(sim, sim.rounds, k, rng),
                  **_sl_dynamics(sim, channel_cfg, link, cell, batches, radio, bits, rng))


def _sl_dynamics(sim, channel_cfg, link, cell, batches, radio, bits, rng) -> dict:
    track, participation = plan_dynamics(sim, channel_cfg, link, cell, batches, rng)
    links = None
    if track is not None:  # the active user has the whole band
        up = (np.full(link.users, equal_share_hz(radio, radio.uplink_main_bandwidth_hz)), link.snr_coeff_hz)
        down = (np.full(link.users, equal_share_hz(radio, radio.downlink_bandwidth_hz)),
                downlink_snr_coeff_hz(link, radio.bs_tx_power_dbm))
        links = track_links(up, up, down if sim.downlink else None, {**bits, "adapter": bits["user_adapter"]},
                            *link_rates(radio, link))
    return {"track": track, "links": links, "participation": participation}


def fl_train_s(profile: WorkloadProfile, compute: ComputeConfig) -> float:
    """Seconds of one FL local step: the whole model's forward and backward on the user device."""
    return profile.whole().flops / compute.flops_per_s("user", profile.dtype)


def fl_adapter_bits(profile: WorkloadProfile) -> float:
    """Bits of the LoRA adapter FL sends up and down each round."""
    return 8.0 * profile.whole().adapter_bytes


def build_fl_plan(profile: WorkloadProfile, compute: ComputeConfig, radio: RadioConfig, sim: SimulationConfig,
                  channel_cfg: ChannelConfig, link: ChannelState, batches: np.ndarray,
                  rng: np.random.Generator, cell: CellConfig | None = None, bandwidth_hz: np.ndarray | None = None,
                  replan: ReplanSpec | None = None) -> FlPlan:
    """Adapters go up on FDMA shares of the fed band B_c (equal ones, or `bandwidth_hz` (K,), which
    must sum to at most B_c) and come down on equal shares of the downlink.

    With a time-varying channel (needs `cell`) or users who come and go, the plan carries the
    channel track and the participation draws (from `rng`'s spawned children, as SFL's); with
    `replan`, the base station re-plans the adapter uplink during the run (netsim.replanning)."""
    k = link.users
    batches = _check_batches(batches, k)
    train = fl_train_s(profile, compute)
    adapter = fl_adapter_bits(profile)
    if bandwidth_hz is None:
        bandwidth_hz = np.full(k, equal_share_hz(radio, radio.uplink_fed_bandwidth_hz, k))
    bandwidth_hz = np.asarray(bandwidth_hz, dtype=float)
    if bandwidth_hz.shape != (k,) or not np.all(np.isfinite(bandwidth_hz)) or np.any(bandwidth_hz <= 0) \
            or bandwidth_hz.sum() > radio.uplink_fed_bandwidth_hz * (1 + 1e-9):
        raise NetsimError(f"FL's shares need one finite bandwidth > 0 per user ({k}), summing to at most "
                          "radio.uplink_fed_bandwidth_hz", field="bandwidth_hz", value=float(bandwidth_hz.sum()))
    factors, large_scale = round_gain_parts(link, channel_cfg, sim.rounds, rng)
    uplink, downlink = link_rates(radio, link)
    up_rate = uplink.rate_bps(bandwidth_hz[None, :], link.snr_coeff_hz[None, :] * factors)
    down = None
    if sim.downlink:
        down = downlink.rate_bps(equal_share_hz(radio, radio.downlink_bandwidth_hz, k),
                                 downlink_snr_coeff_hz(link, radio.bs_tx_power_dbm)[None, :] * factors)
    slowdown = straggler_slowdown(sim, sim.rounds, k, rng)
    track, participation = plan_dynamics(sim, channel_cfg, link, cell, batches, rng)
    links = None
    if track is not None:
        share_up = (bandwidth_hz, link.snr_coeff_hz)
        share_down = (np.full(k, equal_share_hz(radio, radio.downlink_bandwidth_hz, k)),
                      downlink_snr_coeff_hz(link, radio.bs_tx_power_dbm))
        links = track_links(share_up, share_up, share_down if sim.downlink else None,
                            {"activation": 0.0, "gradient": 0.0, "adapter": adapter}, uplink, downlink)
    replanning = None
    if replan is not None:
        (csi_seed,) = rng.spawn(1)  # after plan_dynamics' three children: no other draw moves
        replanning = Replanning(replan.settings, replan.planner,
                                (Uplink(LINK_ADAPTER_UP, link.snr_coeff_hz, adapter, uplink),),
                                (bandwidth_hz, replan.initial_round_s), int(csi_seed.integers(2**63)),
                                factors=factors, large_scale=large_scale)
    return FlPlan(rounds=sim.rounds, batches=batches, train_s=train, adapter_up_s=_seconds(adapter, up_rate),
                  adapter_down_s=None if down is None else _seconds(adapter, down), adapter_bits=adapter,
                  slowdown=slowdown, track=track, links=links, participation=participation, replan=replanning)


def build_fedbuff_plan(profile: WorkloadProfile, compute: ComputeConfig, radio: RadioConfig, sim: SimulationConfig,
                       link: ChannelState, batches: np.ndarray, buffer_size: int, concurrency: int,
                       seed: int, channel_cfg: ChannelConfig | None = None, cell: CellConfig | None = None,
                       rng: np.random.Generator | None = None) -> FedBuffPlan:
    """FL with buffered asynchronous aggregation (netsim.protocols.fedbuff) for `sim.rounds` rounds'
    worth of updates (rounds x K, rounded up to whole buffers): each user training holds one of
    `concurrency` equal shares of the fed band (and of the downlink) on the planned channel — or, on a
    time-varying `channel_cfg` (needs `cell` and `rng`), on the channel as it is when each transfer
    starts; with `sim.dropout_probability`, trainings drop out (their draws from `rng`'s children)."""
    adapter = fl_adapter_bits(profile)
    uplink, downlink = link_rates(radio, link)
    transfers = {_ADAPTER_UP: (radio.uplink_fed_bandwidth_hz, link.snr_coeff_hz, adapter, uplink)}
    if sim.downlink:
        transfers[_ADAPTER_DOWN] = (radio.downlink_bandwidth_hz, downlink_snr_coeff_hz(link, radio.bs_tx_power_dbm),
                                    adapter, downlink)
    return _fedbuff_plan(radio, sim, link, batches, buffer_size, concurrency, seed, channel_cfg, cell, rng, transfers,
                         fl_train_s(profile, compute))


def build_fedbuff_sfl_plan(inputs, radio: RadioConfig, sim: SimulationConfig, link: ChannelState,
                           batches: np.ndarray, buffer_size: int, concurrency: int, seed: int,
                           channel_cfg: ChannelConfig | None = None, cell: CellConfig | None = None,
                           rng: np.random.Generator | None = None) -> FedBuffPlan:
    """SFL with buffered asynchronous aggregation (netsim.protocols.fedbuff: SplitFed's first variant,
    a server-side copy per training), as `build_fedbuff_plan`: user k's training is `batches[k]` local
    iterations at the per-iteration times of `inputs` (optimizer.DelayInputs, the users at their
    highest clock and power), each training on its slot's share of the main band (activations), of
    the fed band (its adapter) and of the downlink (gradients, the adapter)."""
    transfers = {_ACTIVATION_UP: (radio.uplink_main_bandwidth_hz, inputs.snr_coeff_main_hz, inputs.activation_bits,
                                  inputs.uplink_rate),
                 _ADAPTER_UP: (radio.uplink_fed_bandwidth_hz, inputs.snr_coeff_fed_hz, inputs.adapter_bits,
                               inputs.uplink_rate)}
    if sim.downlink:
        c_down = downlink_snr_coeff_hz(link, radio.bs_tx_power_dbm)
        transfers[_GRADIENT_DOWN] = (radio.downlink_bandwidth_hz, c_down, inputs.gradient_bits, inputs.downlink_rate)
        transfers[_ADAPTER_DOWN] = (radio.downlink_bandwidth_hz, c_down, inputs.adapter_bits, inputs.downlink_rate)
    client = inputs.client_seconds_per_iteration
    share = inputs.client_forward_share
    return _fedbuff_plan(radio, sim, link, batches, buffer_size, concurrency, seed, channel_cfg, cell, rng, transfers,
                         0.0, client_forward_s=share * client, client_backward_s=(1.0 - share) * client,
                         server_s=np.asarray(inputs.server_seconds_per_iteration, dtype=float))


_ADAPTER_UP, _ADAPTER_DOWN = KIND["uplink_adapter"], KIND["downlink_adapter"]
_ACTIVATION_UP, _GRADIENT_DOWN = KIND["uplink_activation"], KIND["downlink_gradient"]


def _fedbuff_plan(radio: RadioConfig, sim: SimulationConfig, link: ChannelState, batches: np.ndarray,
                  buffer_size: int, concurrency: int, seed: int, channel_cfg: ChannelConfig | None,
                  cell: CellConfig | None, rng: np.random.Generator | None, transfers: dict, train_s: float,
                  **split) -> FedBuffPlan:
    """The FedBuff plan of either scheme. `transfers`: per activity kind, (the band it shares (Hz),
    c = g·p/N0 (K,), bits, link model); each training holds 1/concurrency of each band (whole PRBs on
    NR). `split`: SFL's per-user compute (SplitSteps' seconds), absent for FL."""
    k = link.users
    batches = _check_batches(batches, k)
    if not 1 <= buffer_size <= concurrency <= k:
        raise NetsimError(f"FedBuff needs 1 <= buffer_size ({buffer_size}) <= concurrency ({concurrency}) <= users "
                          f"({k})", field="training.buffer_size", value=buffer_size)
    shares = {kind: (np.full(k, equal_share_hz(radio, band_hz, concurrency)), np.asarray(c, dtype=float), bits, model)
              for kind, (band_hz, c, bits, model) in transfers.items()}
    seconds = {kind: _seconds(bits, model.rate_bps(bandwidth, c)) for kind, (bandwidth, c, bits, model) in shares.items()}
    steps = math.ceil(sim.rounds * k / buffer_size)
    track = links = None
    dropout_seed = 0
    if rng is not None:
        track_rng, dropout_rng = rng.spawn(2)
        if channel_cfg is not None and channel_cfg.time_varying:
            if cell is None:
                raise NetsimError("a time-varying channel needs the cell (for mobility)",
                                  field="channel.coherence_time_s", value=channel_cfg.coherence_time_s)
            track = ChannelTrack(link, channel_cfg, cell, track_rng)
            links = shares
        dropout_seed = int(dropout_rng.integers(2**63))
    steps_of_split = None
    if split:
        steps_of_split = SplitSteps(**split, activation_up_s=seconds[_ACTIVATION_UP],
                                    gradient_down_s=seconds.get(_GRADIENT_DOWN),
                                    activation_bits=shares[_ACTIVATION_UP][2],
                                    gradient_bits=shares[_GRADIENT_DOWN][2] if _GRADIENT_DOWN in shares else 0.0)
    return FedBuffPlan(updates=steps * buffer_size, batches=batches, train_s=train_s,
                       adapter_up_s=seconds[_ADAPTER_UP], adapter_down_s=seconds.get(_ADAPTER_DOWN),
                       adapter_bits=shares[_ADAPTER_UP][2], buffer_size=buffer_size, concurrency=concurrency,
                       seed=seed, track=track, links=links, dropout_probability=sim.dropout_probability,
                       dropout_seed=dropout_seed, split=steps_of_split)


def run_fedbuff_plan(plan: FedBuffPlan, sim: SimulationConfig, channel_cfg: ChannelConfig,
                     on_round: Callable[[int, float], None] | None = None,
                     energy: EnergyInputs | None = None) -> SimulationResult:
    """Run a FedBuff plan (SimPy with simulation.engine simpy, else the event list: equal results);
    `extra` says what the server did: steps, updates, the staleness of every update and its spread,
    and how the band is shared."""
    import time

    from .engine import gc_paused

    if sim.engine == "simpy":
        env, run, log, wall = run_protocol(run_fedbuff, plan, sim, on_round)
        events, engine = scheduled_events(env), "simpy"
    else:
        log = EventLog(enabled=sim.record_events)
        start = time.perf_counter()
        with gc_paused():
            run = run_fedbuff_event_list(plan, log, on_round)
        wall, events, engine = time.perf_counter() - start, 0, "event_list"
    acc = run.accounts
    staleness = np.array([u[3] for u in run.updates], dtype=float)
    extra = {"aggregation": "fedbuff", "buffer_size": plan.buffer_size, "concurrency": plan.concurrency,
             "server_steps": plan.server_steps, "updates": len(run.updates),
             "staleness": {"mean": float(staleness.mean()), "max": int(staleness.max()),
                           "share_fresh": float(np.mean(staleness == 0)),
                           "counts": np.bincount(staleness.astype(int)).tolist()},
             "bandwidth": f"each of the {plan.concurrency} users training at once holds 1/{plan.concurrency} of the "
                          + ("main band and of the " if plan.split is not None else "")
                          + "fed band (and of the downlink)" + (", on the channel as it is when each transfer starts"
                                                               if plan.track is not None else ""),
             "dropped_trainings": len(run.dropped)}
    updates = pd.DataFrame(run.updates, columns=["user", "started_on", "arrived_at", "staleness", "time_s"])
    return SimulationResult(
        scheme=plan.scheme, strategy=plan.scheme,  # an epoch-based run: named by its scheme, as FL and SL are
        total_delay_s=run.end_s, rounds=float(plan.server_steps),
        local_iterations=float(np.mean(plan.batches)), compute_s=acc.compute_s, uplink_s=acc.uplink_s,
        downlink_s=acc.downlink_s, round_end_s=np.asarray(acc.round_end_s), log=log, simpy_events=events, wall_s=wall,
        paper_assumptions=sim.paper_assumptions(channel_cfg), busy_s=acc.busy_s,
        power_w=activity_power_w(energy, plan.users) if energy is not None else None,
        idle_power_w=energy.idle_power_w if energy is not None else 0.0, event_detail=sim.event_detail,
        wasted_s=acc.wasted_s, rounds_joined=acc.rounds_joined, engine=engine, extra=extra, updates=updates)


RUNNERS = {SplitLlmPlan: ("splitllm", run_splitllm), SlPlan: ("sl", run_sl), FlPlan: ("fl", run_fl)}


def check_deadline(plan, sim: SimulationConfig) -> None:
    """Before running: refuse a round deadline that no user can meet (FL: its epoch and upload; SL,
    SplitLLM: its turn, were it first). On a time-varying channel a lucky draw may beat the planned rates, so
    the bound is then the compute alone."""
    if sim.round_deadline_s is None:
        return
    if isinstance(plan, FlPlan):
        compute = plan.batches * plan.train_s
        comms = plan.adapter_up_s[0]
    elif isinstance(plan, SplitLlmPlan):
        compute = plan.backhaul_s(plan.bits["user_adapter"] + plan.bits["edge_adapter"]) + plan.batches * (
            plan.user_forward_s + plan.user_backward_s + plan.edge_forward_s + plan.edge_backward_s + plan.cloud_s
            + plan.backhaul_activation_s + plan.backhaul_gradient_s)
        comms = plan.batches * plan.uplink_s[0] + plan.user_adapter_up_s[0]
    else:
        compute = plan.batches * (plan.user_forward_s + plan.user_backward_s + plan.server_s)
        comms = plan.batches * plan.uplink_s[0] + plan.user_adapter_up_s[0]
    fastest = float(np.min(compute if plan.track is not None else compute + comms))
    if sim.round_deadline_s < fastest:
        what = "computing its epoch alone" if plan.track is not None else "its round on this channel"
        raise NetsimError(f"no user can meet the deadline: the fastest needs {fastest:.4g} s for {what}",
                          field="simulation.round_deadline_s", value=sim.round_deadline_s)


def run_plan(plan, sim: SimulationConfig, channel_cfg: ChannelConfig,
             on_round: Callable[[int, float], None] | None = None,
             energy: EnergyInputs | None = None) -> SimulationResult:
    """Run a SplitLLM, SL or FL plan to completion; with `energy`, the result carries each user's
    energy (users compute and transmit at full clock and power)."""
    scheme, runner = RUNNERS[type(plan)]
    check_deadline(plan, sim)
    env, acc, log, wall = run_protocol(runner, plan, sim, on_round)
    return SimulationResult(
        scheme=scheme, strategy=scheme, total_delay_s=float(env.now), rounds=float(plan.rounds),
        local_iterations=float(np.mean(plan.batches)), compute_s=acc.compute_s, uplink_s=acc.uplink_s,
        downlink_s=acc.downlink_s, round_end_s=np.asarray(acc.round_end_s), log=log,
        simpy_events=scheduled_events(env), wall_s=wall, paper_assumptions=sim.paper_assumptions(channel_cfg),
        busy_s=acc.busy_s, power_w=activity_power_w(energy, plan.users) if energy is not None else None,
        idle_power_w=energy.idle_power_w if energy is not None else 0.0, event_detail=sim.event_detail,
        wasted_s=acc.wasted_s,
        rounds_joined=acc.rounds_joined,
        round_updates=np.asarray(acc.round_updates) if getattr(plan, "participation", None) is not None else None,
        round_delivered=list(acc.round_delivered) if getattr(plan, "participation", None) is not None else None,
        round_participants=(np.asarray(acc.round_participants) if getattr(plan, "participation", None) is not None
                            else None),
        extra=plan.replan.summary() if getattr(plan, "replan", None) is not None else {})


def cross_link_gains(user_positions_m: np.ndarray, edge_positions_m: np.ndarray, association: np.ndarray,
                     own_link: ChannelState, channel_cfg: ChannelConfig, rng: np.random.Generator) -> np.ndarray:
    """(K, M) linear power gain from each user to each edge: the own edge's from `own_link`, the
    others from path loss over the distance and a fresh shadowing draw (no fading: a mean)."""
    distance = np.linalg.norm(user_positions_m[:, None, :] - edge_positions_m[None, :, :], axis=2)
    loss = path_loss_db(np.maximum(distance, channel_cfg.min_distance_m), channel_cfg.path_loss_db_at_1km,
                        channel_cfg.path_loss_db_per_decade, channel_cfg.min_distance_m)
    if channel_cfg.shadowing_sigma_db > 0:
        loss = loss + rng.normal(0.0, channel_cfg.shadowing_sigma_db, size=loss.shape)
    gain = 10.0 ** (-loss / 10.0)
    gain[np.arange(len(association)), association] = own_link.gain_linear
    return gain


def edge_link_state(user_positions_m: np.ndarray, edge_positions_m: np.ndarray, association: np.ndarray,
                    channel_cfg: ChannelConfig, tx_power_dbm: float, rng: np.random.Generator) -> ChannelState:
    """Each user's channel to its own edge server: path loss over that distance, fresh shadowing."""
    anchors = edge_positions_m[association]
    distance = np.maximum(np.linalg.norm(user_positions_m - anchors, axis=1), channel_cfg.min_distance_m)
    k = len(distance)
    shadow = rng.normal(0.0, channel_cfg.shadowing_sigma_db, size=k) if channel_cfg.shadowing_sigma_db > 0 \
        else np.zeros(k)
    fading = fading_power(channel_cfg.fading, channel_cfg.rician_k_factor_db, (k,), rng)
    return ChannelState(positions_m=user_positions_m, bs_position_m=np.zeros(2), distance_m=distance,
                         path_loss_db=path_loss_db(distance, channel_cfg.path_loss_db_at_1km,
                                                   channel_cfg.path_loss_db_per_decade, channel_cfg.min_distance_m),
                         shadowing_db=shadow, fading_power=fading, tx_power_dbm=tx_power_dbm,
                         noise_psd_dbm_per_hz=channel_cfg.noise_psd_dbm_per_hz)

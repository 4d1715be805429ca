"""The strategies for a cell that moves, made from a realised scenario: proposed_replan and robust,
for SFL (problem (17)) and for FL (its adapter uplink: optimizer.fl_bandwidth, `fl_allocations`).

`dynamic_allocations` turns the proposed plan (planned at t = 0) into
- proposed_replan's first plan (the way its re-plans are made: on the ergodic rate over the
  scenario's fading, unless the base station knows the fading: optimizer.replan_csi 'full'), and
- the robust plan: made once for the expected seconds per bit over sampled walks of every user
  over the plan's duration (netsim.dynamics.large_scale_samples, stream "robust") and the fading.

`replan_spec` gives simulate_sfl what the re-planning base station needs for proposed_replan
(None for a plan-once strategy). The seconds one re-solve takes are optimizer.replan_solve_s: the
base station's modelled budget by default (the same numbers on any host); with 'measured', timed
here, on this machine, once per process and kind of problem (so runs in one process agree exactly).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from splitsim.netsim.channel import downlink_snr_coeff_hz
from splitsim.netsim.dynamics import large_scale_samples
from splitsim.netsim.replanning import ReplanSettings, ReplanSpec, ShadowingForecast
from splitsim.netsim.schemes import fl_adapter_bits, fl_train_s
from splitsim.optimizer.ergodic import planning_rate_bps
from splitsim.optimizer.fl_bandwidth import FlBandwidthPlan, fl_plan, make_fl_planner
from splitsim.optimizer.replan import make_planner, replan_initial_allocation, robust_allocation
from splitsim.scenarios import Allocation, InputError, Scenario, rng_for
from splitsim.scenarios.nr_link import equal_share_hz

from .world import World

_TIMED_SOLVES = 5
_ROBUST_HORIZON_PASSES = 2  # the horizon is the robust plan's own delay: resample once on it


def _planner_fading(scenario: Scenario) -> str:
    """What the re-planner averages over: the scenario's fading, or nothing when it knows it."""
    return "none" if scenario.optimizer.replan_csi == "full" else scenario.channel.fading


def _prb(scenario: Scenario) -> tuple[int | None, str]:
    return scenario.radio.subcarrier_spacing_khz, scenario.radio.prb_rule


def _bandwidth(scenario: Scenario):
    """What chooses proposed_replan's bandwidths: None (problem (17)) or a user's strategy
    (optimizer.replan_strategy)."""
    opt = scenario.optimizer
    if opt.replan_strategy == "proposed":
        return None
    from splitsim.optimizer.replan import custom_bandwidth

    return custom_bandwidth(opt.replan_strategy, opt)


def dynamic_allocations(world: World, allocations: dict[str, Allocation]) -> dict[str, Allocation]:
    """`allocations` with proposed_replan and robust (when present) planned for the cell's dynamics."""
    scenario = world.scenario
    ch = scenario.channel
    scs, rule = _prb(scenario)
    out = dict(allocations)
    if "proposed_replan" in out:
        alloc, round_s = replan_initial_allocation(world.inputs, out["proposed_replan"], _planner_fading(scenario),
                                                   ch.rician_k_factor_db, scs, rule, _bandwidth(scenario))
        alloc.details["first_plan_round_s"] = round_s
        out["proposed_replan"] = alloc
    if "robust" in out:
        base = out["robust"]
        fading = ch.fading if ch.time_varying else "none"  # a frozen channel's fading is the planned state's
        horizon, robust = base.T_s, base
        for step in range(_ROBUST_HORIZON_PASSES):
            horizon = robust.T_s  # the first plan's delay, then the robust plan's own
            samples = large_scale_samples(world.channel, ch, scenario.cell, horizon, scenario.optimizer.robust_walks,
                                          rng_for(scenario.seed, "robust"))
            robust = robust_allocation(world.inputs, base, samples, fading, ch.rician_k_factor_db, scs, rule)
            if samples.shape[1] == 1:  # a static channel: nothing to resample
                break
        robust.details["robust_horizon_s"] = horizon  # the horizon its samples span
        out["robust"] = robust
    return out


_MEASURED: dict[tuple, float] = {}  # one measurement per kind of problem and process: both doors agree


def measured_solve_s(planner, users: int, key: tuple | None = None, samples: int = 1) -> float:
    """The median wall time (s) of a re-solve on this machine: the planner on a perturbed channel
    (`samples` per user: a forecast's), one after the other as a run's re-plans are. With `key`,
    measured once per process and reused (runs in one process then agree exactly)."""
    if key is not None and key in _MEASURED:
        return _MEASURED[key]
    rng = np.random.default_rng(0)
    times = []
    for _ in range(_TIMED_SOLVES):
        known = 10.0 ** (rng.normal(0.0, 1.0, size=(users, samples) if samples > 1 else users) / 10.0)
        start = time.perf_counter()
        planner(known)
        times.append(time.perf_counter() - start)
    seconds = float(np.median(times))
    if key is not None:
        _MEASURED[key] = seconds
    return seconds


def solve_key(world: World) -> tuple:
    """What a re-solve's time depends on: the users, what the planner averages over, the PRB rule,
    the samples of a forecast (and whether it re-chooses eta, which callers append)."""
    scenario = world.scenario
    return (world.inputs.users, _planner_fading(scenario), *_prb(scenario), forecast_samples(scenario))


def forecast_samples(scenario: Scenario) -> int:
    """Samples per user the planner gets from the shadowing's forecast (1: the channel as it is)."""
    forecast = _forecast(scenario)
    return 1 if forecast is None else forecast.points * forecast.quantiles


def replan_spec(world: World, alloc: Allocation, interval_s: float | None | str = "scenario",
                csi_delay_s: float | None = None, solve_s: float | None = None,
                eta: str | None = None) -> ReplanSpec | None:
    """What simulate_sfl needs to re-plan `alloc` during the run (None unless proposed_replan).

    `interval_s`, `csi_delay_s`, `eta` ('fixed' or 'rechosen') override the scenario's (the
    robustness study's variants); `solve_s` a measured solve time already in hand."""
    if alloc.strategy != "proposed_replan":
        return None
    scenario = world.scenario
    scs, rule = _prb(scenario)
    opt = scenario.optimizer
    eta = opt.replan_eta if eta is None else eta
    planner = make_planner(world.inputs, alloc, _planner_fading(scenario), scenario.channel.rician_k_factor_db, scs,
                           rule, eta_search=opt.eta_search if eta == "rechosen" else None,
                           eta_grid_step=opt.eta_grid_step, bandwidth=_bandwidth(scenario))
    if solve_s is None:
        solve_s = opt.replan_solve_s if opt.replan_solve_s != "measured" else \
            measured_solve_s(planner, world.inputs.users, (*solve_key(world), eta), forecast_samples(scenario))
    first = alloc.details.get("first_plan_round_s")
    if first is None:
        raise InputError("proposed_replan's first plan is missing: make the allocations with "
                         "analysis.allocations.world_allocations", field="optimizer.strategies", value=alloc.strategy)
    return _spec(world, planner, first, interval_s, csi_delay_s, solve_s, eta)


def _forecast(scenario: Scenario) -> ShadowingForecast | None:
    """The shadowing forecast of optimizer.replan_shadowing 'forecast' (None: the shadowing as it is
    now, or nothing to forecast: full CSI, users who stand still, no shadowing)."""
    opt, ch = scenario.optimizer, scenario.channel
    if opt.replan_shadowing != "forecast" or opt.replan_csi != "large_scale" or not ch.time_varying \
            or ch.mobility_speed_mps == 0 or ch.shadowing_sigma_db == 0:
        return None
    return ShadowingForecast(ch.shadowing_sigma_db, ch.mobility_speed_mps, ch.shadowing_decorrelation_m)


def _spec(world: World, planner, first_round_s, interval_s: float | None | str, csi_delay_s: float | None,
          solve_s: float, eta: str = "fixed") -> ReplanSpec:
    """The re-planning settings of the scenario (or the study's variant) around `planner`."""
    opt, ch = world.scenario.optimizer, world.scenario.channel
    interval = opt.replan_interval_s if interval_s == "scenario" else interval_s
    settings = ReplanSettings(interval_s=interval, csi=opt.replan_csi,
                              csi_delay_s=ch.csi_delay_s if csi_delay_s is None else csi_delay_s,
                              csi_error_db=ch.csi_error_db, solve_s=solve_s, signalling_s=opt.replan_signalling_s,
                              eta=eta, users=opt.replan_users, forecast=_forecast(world.scenario),
                              prediction=opt.replan_prediction)
    if interval is not None and interval < solve_s + settings.signalling_s:
        raise InputError(f"shorter than one re-plan takes ({solve_s:.3g} s to solve + {settings.signalling_s:g} s "
                         "to signal)", field="optimizer.replan_interval_s", value=interval)
    return ReplanSpec(settings=settings, planner=planner, initial_round_s=np.asarray(first_round_s, dtype=float))


# ---- FL: the adapter uplink, planned once, robustly, or re-planned (optimizer.fl_bandwidth) ----------------------

def _fl_busy(world: World, fading: str):
    """busy(multiplier) -> each user's seconds before its upload (K,): the adapter coming down on an
    equal share of the downlink (when simulated; at the planning rate over `fading` and the gain
    multipliers (K,) or samples (K, S)) and its local epoch at full speed (stragglers unknown)."""
    scenario, profile = world.scenario, world.profile
    epoch = world.batches_per_round() * fl_train_s(profile, scenario.compute)
    if not scenario.simulation.downlink:
        return lambda multiplier: epoch
    radio, k = scenario.radio, world.channel.users
    c_down = downlink_snr_coeff_hz(world.channel, radio.bs_tx_power_dbm)
    bits = fl_adapter_bits(profile)
    share = np.full(k, equal_share_hz(radio, radio.downlink_bandwidth_hz, k))
    link = world.inputs.downlink_rate

    def busy(multiplier: np.ndarray) -> np.ndarray:
        m = np.asarray(multiplier, dtype=float)
        c = c_down[:, None] * m if m.ndim == 2 else c_down * m
        return epoch + bits / planning_rate_bps(share, c, fading, scenario.channel.rician_k_factor_db, link)

    return busy


def fl_allocations(world: World) -> dict[str, FlBandwidthPlan]:
    """FL's allocations of the fed band for optimizer.strategies (EB, proposed, robust,
    proposed_replan's first plan), each with its predicted round seconds per user."""
    scenario = world.scenario
    if world.profile is None:
        raise InputError("FL is simulated from a model profile: add a model section", field="model", value=None)
    ch, rounds = scenario.channel, scenario.simulation.rounds
    c = world.channel.snr_coeff_hz
    adapter, band, k_db = fl_adapter_bits(world.profile), scenario.radio.uplink_fed_bandwidth_hz, ch.rician_k_factor_db
    link = world.inputs.uplink_rate  # Shannon's, or the NR link's whole PRBs
    frozen_busy = _fl_busy(world, "none")(np.ones(c.size))
    once = fl_plan("proposed", frozen_busy, adapter, c, band, rounds, link=link)  # on the frozen channel, as SFL's
    out: dict[str, FlBandwidthPlan] = {}
    for name in scenario.optimizer.strategies:
        if name == "proposed":
            out[name] = once
        elif name == "proposed_replan":
            fading = _planner_fading(scenario)
            out[name] = fl_plan(name, _fl_busy(world, fading)(np.ones(c.size)), adapter, c, band, rounds, fading,
                                k_db, {"first_plan": "on the planned channel" if fading == "none"
                                       else f"on the ergodic rate over {fading} fading"}, link)
        elif name == "robust":
            out[name] = _fl_robust(world, once, adapter, band, k_db)
        else:  # EB; fl_plan refuses what FL does not have (FE, BA)
            out[name] = fl_plan(name, frozen_busy, adapter, c, band, rounds, link=link)
    return out


def _fl_robust(world: World, once: FlBandwidthPlan, adapter: float, band: float, k_db: float) -> FlBandwidthPlan:
    """FL's robust plan: the min-max shares on each user's expected seconds per bit over sampled walks
    of the plan's duration (resampled once on its own delay), as SFL's (dynamic_allocations)."""
    scenario, c = world.scenario, world.channel.snr_coeff_hz
    ch = scenario.channel
    fading = ch.fading if ch.time_varying else "none"
    horizon, robust = once.T_s, once
    for _ in range(_ROBUST_HORIZON_PASSES):
        horizon = robust.T_s  # the plan-once delay, then the robust plan's own
        samples = large_scale_samples(world.channel, ch, scenario.cell, horizon, scenario.optimizer.robust_walks,
                                      rng_for(scenario.seed, "robust"))
        if fading == "none" and samples.shape[1] == 1:  # a static channel: the plan-once allocation
            return dataclasses.replace(once, strategy="robust", details={"robust": "static channel: the plan-once "
                                                                                   "allocation"})
        robust = fl_plan("robust", _fl_busy(world, fading)(samples), adapter, c[:, None] * samples, band, once.rounds,
                         fading, k_db, {"robust_horizon_s": horizon, "samples_per_user": int(samples.shape[1])},
                         world.inputs.uplink_rate)
        if samples.shape[1] == 1:
            break
    return robust


def fl_planner(world: World):
    """FL's re-planner (optimizer.fl_bandwidth.make_fl_planner) for this world."""
    scenario = world.scenario
    fading = _planner_fading(scenario)
    return make_fl_planner(_fl_busy(world, fading), fl_adapter_bits(world.profile), world.channel.snr_coeff_hz,
                           scenario.radio.uplink_fed_bandwidth_hz, fading, scenario.channel.rician_k_factor_db,
                           world.inputs.uplink_rate)


def fl_solve_key(world: World) -> tuple:
    return ("fl", world.channel.users, _planner_fading(world.scenario), forecast_samples(world.scenario))


def fl_replan_spec(world: World, plan: FlBandwidthPlan, interval_s: float | None | str = "scenario",
                   csi_delay_s: float | None = None, solve_s: float | None = None,
                   eta: str | None = None) -> ReplanSpec | None:
    """What build_fl_plan needs to re-plan FL's adapter uplink during the run (None unless
    proposed_replan); the arguments as replan_spec's (`eta`: FL has none, its epoch is fixed)."""
    if plan.strategy != "proposed_replan":
        return None
    planner = fl_planner(world)
    if solve_s is None:
        opt = world.scenario.optimizer
        solve_s = opt.replan_solve_s if opt.replan_solve_s != "measured" else \
            measured_solve_s(planner, world.channel.users, fl_solve_key(world), forecast_samples(world.scenario))
    return _spec(world, planner, plan.round_s, interval_s, csi_delay_s, solve_s)

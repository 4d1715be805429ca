"""A base station that re-plans the uplink bandwidth during the run, from the channel it knows then.

At the start of a round (every round, or the first one `interval_s` or more after the last
re-plan) the base station reads the channel state information (CSI) it has: each user's gain
relative to the planned state (netsim.dynamics.ChannelTrack, or the per-round table of a frozen
or per-round-redrawn channel) as it was `csi_delay_s` ago, times a log-normal estimation error of
`csi_error_db` (one draw per user and re-plan). 'large_scale' CSI is the path loss and shadowing
at the users' positions (the planner then averages the fading: optimizer.ergodic), with the
shadowing's forecast over the plan's horizon when it has one (ShadowingForecast); 'full' CSI
adds the fading of that moment.

When what it knows differs from what its current plan was made on (or, planning for the round's
participants, when they change), it re-solves (the injected `planner`) and signals the new
grants: the round then starts `solve_s + signalling_s` later (an activity 'replan' at the fed
server, which sits at the base station). It allocates the uplinks it is given: SFL's activation
and adapter uplinks (problem (17), optimizer.replan, with eta kept or re-chosen: Counts), or FL's
adapter uplink (optimizer.fl_bandwidth). When nothing changed (a frozen channel), it keeps its
plan and costs nothing, so the run is the plan-once run exactly. Each round's prediction is the
slowest participant's expected time, or a Monte Carlo of the round (`_round_samples`).

Both engines (SimPy and netsim.fast_sfl) call `before_round` at the same point with the same
arguments, so they see the same plans, delays and draws. The object keeps per-run state: `start`
resets it at the beginning of every run of a plan.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtri

from splitsim.scenarios.types import SHANNON

from .dynamics import fading_power
from .engine import work_fractions

MC_DRAWS = 128  # draws of the round for its Monte Carlo prediction, up to 100 users; above, its cost stays
MC_USER_DRAWS, MC_MIN_DRAWS = 12_800, 16  # bounded: draws x users at most 12,800, and at least 16 draws
MAX_BLOCKS = 64  # fading blocks drawn per transfer in it (beyond: their mean rate)

__all__ = ["Counts", "ReplanSettings", "ReplanSpec", "Replanning", "Planner", "ShadowingForecast", "Uplink"]

# planner(known gain factor (K,) relative to the planned channel) ->
#   (one bandwidth_hz (K,) per uplink it allocates, in the order of the Replanning's `uplinks`, ...,
#    each user's predicted round seconds (K,) at one unit of round work[, (eta, V, I0) re-chosen])
Planner = Callable[[np.ndarray], tuple]


@dataclass(frozen=True)
class Counts:
    """What a base station that re-chooses eta changes (SFL): the rounds and local iterations.

    `eta`, `V`, `I0` of the first plan; `weights` (K,) each user's iterations per unit of V;
    `max_rounds` the cap on simulated rounds (simulation.max_rounds)."""

    eta: float
    V: float
    I0: float
    weights: np.ndarray
    max_rounds: int | None = None


@dataclass(frozen=True)
class Uplink:
    """An uplink the base station allocates: its link index (netsim.protocols.rounds.LINK_*), the
    planned c = g·p/N0 (K,) of its users at their powers, and the bits of one transfer."""

    link: int
    snr_coeff_hz: np.ndarray
    bits: float
    rate: Any = SHANNON  # the link model (Shannon's, or the NR link: scenarios.nr_link.NrRate)


@dataclass(frozen=True)
class ShadowingForecast:
    """How a base station that knows the large-scale channel now forecasts it over a plan's horizon.

    Gudmundson's shadowing (netsim.dynamics) is a Gauss-Markov process in the distance walked: given
    its value S now, S after t seconds at speed v is normal with mean rho·S and variance
    sigma^2·(1 - rho^2), rho = exp(-v·t / d_corr) (Gudmundson 1991; the track's own model). The
    path loss is taken as it is now (the direction of the walk is not known). `samples` gives the
    gain factors at `points` times over the horizon x `quantiles` normal mid-quantiles of that law
    (scaled to its variance): the planner then plans on each user's expected seconds per bit over
    them (optimizer.ergodic's harmonic mean), as the robust plan does over sampled walks."""

    sigma_db: float
    speed_mps: float
    decorrelation_m: float
    points: int = 4
    quantiles: int = 4

    def samples(self, known: np.ndarray, shadow_db: np.ndarray, age_s: float, horizon_s: float) -> np.ndarray:
        """(K, points·quantiles) gain factors over [age_s, age_s + horizon_s] from `known` (K,) whose
        shadowing is `shadow_db` (K,) (dB of loss), read `age_s` seconds ago."""
        tau = age_s + (np.arange(self.points) + 0.5) * horizon_s / self.points
        rho = np.exp(-self.speed_mps * tau / self.decorrelation_m)[:, None, None]
        z = ndtri((np.arange(self.quantiles) + 0.5) / self.quantiles)
        z = (z / np.sqrt(np.mean(z**2)))[None, :, None]  # mid-quantiles scaled to the law's variance
        shadow = np.asarray(shadow_db, dtype=float)[None, None, :]
        change_db = (rho - 1.0) * shadow + np.sqrt(1.0 - rho**2) * self.sigma_db * z
        factors = np.asarray(known, dtype=float)[None, None, :] * 10.0 ** (-change_db / 10.0)
        return factors.reshape(-1, factors.shape[-1]).T


@dataclass(frozen=True)
class ReplanSettings:
    """When the base station re-plans and what it knows (seconds)."""

    interval_s: float | None  # None: every round
    csi: str  # 'large_scale' | 'full'
    csi_delay_s: float
    csi_error_db: float
    solve_s: float  # one re-solve, counted in the simulated time
    signalling_s: float  # the new grants reaching the users
    eta: str = "fixed"  # 'fixed': the first plan's eta (V) throughout; 'rechosen' at every re-solve (SFL)
    users: str = "all"  # plan for 'all' users, or the round's 'participants' (re-solved when they change)
    prediction: str = "monte_carlo"  # a round's prediction: 'plan' (slowest expected time) or 'monte_carlo'
    forecast: ShadowingForecast | None = None  # large-scale CSI: plan on the shadowing's law over the horizon


@dataclass(frozen=True)
class ReplanSpec:
    """What a plan needs to re-plan: the settings, the planner and the first plan's predicted round
    seconds per user (K,) (its bandwidths are the allocation's, or FL's plan's)."""

    settings: ReplanSettings
    planner: Planner
    initial_round_s: np.ndarray


class Replanning:
    """The re-planning base station of one SFL or FL plan (see the module docstring).

    `uplinks` are the links it allocates (SFL: the activation and adapter uplinks; FL: the adapter
    uplink); `initial` the first plan (one bandwidth (K,) per uplink, then the predicted round
    seconds per user), made before the run on the planned channel (gain factor 1). Table mode (no
    track): `factors` and `large_scale` (R, K) are the per-round gain factors of the run and their
    path-loss-and-shadowing part."""

    def __init__(self, settings: ReplanSettings, planner: Planner, uplinks: tuple[Uplink, ...],
                 initial: tuple[np.ndarray, ...], seed: int, factors: np.ndarray | None = None,
                 large_scale: np.ndarray | None = None, counts: Counts | None = None):
        if len(initial) != len(uplinks) + 1:
            raise ValueError(f"the first plan needs one bandwidth per uplink ({len(uplinks)}) and the round seconds")
        self.settings, self.planner, self.uplinks = settings, planner, uplinks
        self.initial = tuple(np.asarray(a, dtype=float).copy() for a in initial)
        self.first_counts = counts  # None: eta (V) stays the first plan's
        self._seed = seed
        self.factors, self.large_scale = factors, large_scale
        self._saved: dict = {}
        self.start(None)

    # ---- per run ----------------------------------------------------------------------------------
    def start(self, plan) -> None:
        """Reset to the first plan (and restore `plan`'s links or tables to it)."""
        *bands, round_s = (a.copy() for a in self.initial)
        self.bands, self.round_s = bands, round_s
        self.known = np.ones_like(self.round_s)  # the CSI the plan in force was made on
        self.latest = self.known  # the freshest CSI read
        self.planned_for = None  # the users the plan in force serves (None: everyone)
        self.last_check_s = 0.0
        self.round_start_s: list[float] = []
        self.rng = np.random.default_rng(self._seed)
        self.mc_rng = np.random.default_rng([self._seed, 1])  # the prediction's own draws: the run's do not move
        self.samples_s: np.ndarray | None = None
        self.solves = 0
        self.checks = 0
        self.hold_s: list[float] = []
        self.predicted_round_s: list[float] = []
        c = self.first_counts
        self.counts = None if c is None else (c.eta, c.V, c.I0)
        self.progress = 0.0  # the share of the convergence bound's rounds done (re-chosen eta)
        self.eta_history: list[tuple[int, float, float, float]] = []  # (round, eta, V, I0) at each change
        self.iterations_changed = False
        if plan is None:
            return
        if c is not None:
            if "rounds" not in self._saved:
                self._saved.update(rounds=list(plan.rounds), iterations=[list(w) for w in plan.iterations])
            plan.rounds[:] = self._saved["rounds"]
            plan.iterations[:] = [list(w) for w in self._saved["iterations"]]
            if plan.participation is not None:
                plan.participation.set_iterations(np.array([len(w) for w in plan.iterations]))
        if plan.track is not None:
            if "links" not in self._saved:
                self._saved["links"] = dict(plan.links)
            plan.links.clear()
            plan.links.update(self._saved["links"])
            plan.track.keep_s = self.settings.csi_delay_s
        else:
            if "tables" not in self._saved:
                self._saved["tables"] = {u.link: plan.table(u.link).copy() for u in self.uplinks}
            for u in self.uplinks:
                plan.table(u.link)[:] = self._saved["tables"][u.link]

    def _csi(self, plan, at_s: float) -> np.ndarray:
        """The gain factors (K,) the base station knows at `at_s` (before the estimation error)."""
        full = self.settings.csi == "full"
        users = np.arange(self.round_s.size)
        if plan.track is not None:
            block = np.full(users.size, int(max(at_s, 0.0) // plan.track.block_s), dtype=np.int64)
            return plan.track.factor(block, users) if full else plan.track.large_scale_factor(block, users)
        j = int(np.searchsorted(np.asarray(self.round_start_s), at_s, side="right")) - 1
        table = self.factors if full else self.large_scale
        return table[max(j, 0)].copy()

    def before_round(self, plan, r: int, now_s: float, users: np.ndarray, round_work: float,
                     aggregation_s: float) -> float:
        """Re-plan if due and the CSI changed; return the seconds the round start waits for it."""
        s = self.settings
        self.round_start_s.append(now_s)
        hold = 0.0
        due = r == 0 or s.interval_s is None or now_s - self.last_check_s >= s.interval_s * (1 - 1e-12)
        if due:
            self.checks += 1
            self.last_check_s = now_s
            known = self._csi(plan, now_s - s.csi_delay_s)
            if s.csi_error_db > 0:
                known = known * 10.0 ** (self.rng.normal(0.0, s.csi_error_db, size=known.size) / 10.0)
            if s.forecast is not None and plan.track is not None:  # the channel over the plan's horizon
                block = int(max(now_s - s.csi_delay_s, 0.0) // plan.track.block_s)
                everyone = np.arange(known.size)
                shadow = plan.track.shadowing_db(np.full(known.size, block, dtype=np.int64), everyone)
                known = s.forecast.samples(known, shadow, s.csi_delay_s, self._horizon_s(now_s))
            self.latest = known
        target = None if s.users == "all" or users.size == self.round_s.size else np.asarray(users)
        new_csi = due and not np.array_equal(self.latest, self.known)
        same_users = (target is None and self.planned_for is None) or (
            target is not None and self.planned_for is not None and np.array_equal(target, self.planned_for))
        new_users = not same_users
        if new_csi or new_users:
            answer = self.planner(self.latest) if target is None else self.planner(self.latest, target)
            n = len(self.uplinks)
            self.bands = [np.asarray(a, dtype=float) for a in answer[:n]]
            self.round_s, self.known, self.planned_for = np.asarray(answer[n], dtype=float), self.latest, target
            if self.counts is not None and answer[n + 1] != self.counts:
                self._new_counts(plan, r, answer[n + 1])
            self.solves += 1
            hold = s.solve_s + s.signalling_s
            if plan.track is not None:
                for u, band in zip(self.uplinks, self.bands):
                    _, c, bits, model = plan.links[u.link]
                    plan.links[u.link] = (band, c, bits, model)
        if plan.track is None and self.solves:  # this round's transfer times on the current bandwidths
            factor = self.factors[r]
            for u, band in zip(self.uplinks, self.bands):
                with np.errstate(divide="ignore", invalid="ignore"):  # 0 Hz: a user left out of this plan
                    rate = u.rate.rate_bps(band, u.snr_coeff_hz * factor)
                    plan.table(u.link)[r] = np.where(band > 0, u.bits / rate, np.inf)
        self.hold_s.append(hold)
        if self.counts is not None:  # this round's work, and its share of the convergence bound
            round_work = plan.rounds[r]
            self.progress += round_work / self.counts[2]
        if new_csi or new_users or self.samples_s is None:  # a new plan (or the first): draw its rounds
            self.samples_s = self._round_samples(plan) if self._monte_carlo(plan) else None
        if not users.size:
            slowest = 0.0
        elif self.samples_s is not None:  # the expected slowest participant of the round
            slowest = float(self.samples_s[:, users].max(axis=1).mean())
        else:  # the slowest participant's expected time
            slowest = float(self.round_s[users].max())
        self.predicted_round_s.append(hold + (slowest + aggregation_s) * round_work)
        return hold

    def _monte_carlo(self, plan) -> bool:
        """The Monte Carlo prediction applies where the planner averaged what the round will draw:
        large-scale CSI on a channel that fades block by block."""
        return (self.settings.prediction == "monte_carlo" and self.settings.csi == "large_scale"
                and plan.track is not None and plan.track.fading != "none")

    def _round_samples(self, plan) -> np.ndarray:
        """(draws, K) draws of each user's round seconds (unit work) under the plan in force, on
        the channel the base station expects: the large-scale gain one of what it knows (a sample of
        its forecast, per draw and user), the fading drawn per block. Each transfer starts at a
        uniform point of a block and goes on block by block at each block's rate, as the track's
        transfers do, up to MAX_BLOCKS blocks (then at their mean rate). Stragglers and drop-outs
        are not known."""
        rng, track = self.mc_rng, plan.track
        compute, transfers = plan.round_shape()
        known = np.asarray(self.known, dtype=float)
        k, block_s = compute.size, track.block_s
        draws = max(MC_MIN_DRAWS, min(MC_DRAWS, MC_USER_DRAWS // k))  # fewer draws of a big cell's round
        if known.ndim == 2:
            large = known[np.arange(k)[None, :], rng.integers(known.shape[1], size=(draws, k))]
        else:
            large = np.broadcast_to(known, (draws, k))
        total = np.broadcast_to(compute, (draws, k)).copy()
        for link, work in transfers:
            band, c, bits, model = plan.links[link]
            c_draw = (c[None, :] * large)[..., None]
            for column in work.T:
                sent = (bits * column)[None, :, None]  # (1, K, 1)
                if not np.any(sent > 0):
                    continue
                h = fading_power(track.fading, track.k_factor_db, (draws, k, MAX_BLOCKS), rng)
                rate = model.rate_bps(band[None, :, None], c_draw * h)
                span = np.full((draws, k, MAX_BLOCKS), block_s)
                span[..., 0] = rng.random((draws, k)) * block_s  # what is left of the first block
                carried = np.cumsum(rate * span, axis=2)
                done = carried >= sent
                j = np.argmax(done, axis=2)[..., None]
                before = np.where(j > 0, np.take_along_axis(carried, np.maximum(j - 1, 0), axis=2), 0.0)
                elapsed = np.where(j > 0, np.take_along_axis(np.cumsum(span, axis=2), np.maximum(j - 1, 0), axis=2),
                                   0.0)
                with np.errstate(divide="ignore", invalid="ignore"):
                    seconds = elapsed + (sent - before) / np.take_along_axis(rate, j, axis=2)
                    beyond = span.sum(axis=2, keepdims=True) + (sent - carried[..., -1:]) / rate.mean(axis=2,
                                                                                                       keepdims=True)
                seconds = np.where(done.any(axis=2, keepdims=True), seconds, beyond)[..., 0]
                total += np.where(sent[..., 0] > 0, seconds, 0.0)
        return total

    def _horizon_s(self, now_s: float) -> float:
        """How long the plan made now is expected to serve: the interval to the next re-plan, or the
        last round if that was longer (the first plan's slowest predicted round before any)."""
        last = now_s - self.round_start_s[-2] if len(self.round_start_s) > 1 else float(np.max(self.initial[-1]))
        return max(self.settings.interval_s or 0.0, last)

    def _new_counts(self, plan, r: int, counts: tuple[float, float, float]) -> None:
        """Re-chosen eta from round r on: each user's local iterations, and the rounds left, the
        share of the bound's progress not yet made at I0(eta) rounds for the whole of it."""
        eta, V, I0 = counts
        self.counts = (eta, V, I0)
        self.eta_history.append((r, eta, V, I0))
        plan.iterations[:] = [work_fractions(V * w) for w in self.first_counts.weights]
        if plan.participation is not None:
            plan.participation.set_iterations(np.array([len(w) for w in plan.iterations]))
        left = max(1.0 - self.progress, 0.0) * I0
        rounds = work_fractions(left) or [left]
        cap = self.first_counts.max_rounds
        if cap is not None:
            rounds = rounds[:max(cap - r, 1)]
        plan.rounds[r:] = rounds
        self.iterations_changed = True

    def take_iterations_changed(self) -> bool:
        """Whether the local iterations changed since the last call (the vectorised engine rebuilds its table)."""
        changed, self.iterations_changed = self.iterations_changed, False
        return changed

    def summary(self) -> dict:
        """What the base station did over the run: checks, re-solves, overhead, predictions."""
        out = {"replan_checks": self.checks, "replan_solves": self.solves,
               "replan_overhead_s": float(np.sum(self.hold_s)),
               "replan_predicted_s": float(np.sum(self.predicted_round_s)),
               "replan_solve_s": self.settings.solve_s, "replan_signalling_s": self.settings.signalling_s}
        if self.first_counts is not None:
            out.update(replan_eta_changes=len(self.eta_history), replan_eta_final=self.counts[0],
                       replan_V_final=self.counts[1], replan_rounds=len(self.predicted_round_s))
        return out

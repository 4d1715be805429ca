"""The least energy a user can need, and where a budget can be met at all (both link models).

A user's energy per round is at least its floor: the slowest clock, the cheapest uploads, idling only
while the server computes (`round_problem(...).round_energy_floor_j`). On Shannon's link the cheapest
upload is the wideband limit S·ln2·p_max/c; on the NR link it is the best power on the widest band a
user can hold (`upload_energy_floor_j`): NR delivers nothing below its lowest MCS, and a user's energy
per bit p/rate(p) is least where the link's goodput per unit of SINR is highest. Over the training the
floor times the rounds (`minimum_energy_j`) bounds every budget (`check_budget`), and the etas where a
budget can be met form one interval (`feasible_eta_interval`).
"""

from __future__ import annotations

import math

import numpy as np

from splitsim.scenarios import DelayInputs, EnergyInputs

from ..delay_model import global_rounds, local_iterations
from ..errors import OptimizerError
from ..eta_search import ETA_MAX, ETA_MIN, paper_eta_grid
from ..link_plan import on_shannon
from .problem import EnergyRoundProblem

FLOOR_POWER_POINTS = 2001
"""Powers searched for the least energy per bit: log-spaced over FLOOR_POWER_SPAN_DB below p_max
(0.03 dB apart, finer than the link tables' 0.05 dB SINR grid), then refined by golden section."""
FLOOR_POWER_SPAN_DB = 60.0

def upload_energy_floor_j(rate, bits: float, snr_coeff_hz: np.ndarray, bandwidth_hz: float,
                          max_power_w: float) -> np.ndarray:
    """(K,) the least energy (J) to send `bits` on the link `rate` within `bandwidth_hz` (at most),
    over every transmit power p <= p_max: min_p p·bits / rate(bandwidth, c·p/p_max). The rate never
    falls with more PRBs (NrRate), so the widest band is the cheapest at every power; inf for a user
    the link cannot serve at any power (out of coverage)."""
    c = np.asarray(snr_coeff_hz, dtype=float)
    fractions = 10.0 ** (-np.linspace(0.0, FLOOR_POWER_SPAN_DB, FLOOR_POWER_POINTS) / 10.0)  # (P,) descending

    def energy(p: np.ndarray) -> np.ndarray:  # p (..., K) -> J (..., K)
        r = rate.rate_bps(bandwidth_hz, c * p)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(r > 0, max_power_w * p * bits / r, np.inf)

    values = energy(fractions[:, None])  # (P, K)
    best = np.argmin(values, axis=0)
    floor = values[best, np.arange(c.size)]
    # golden section between the best point's neighbours (each user at once); never above the grid's
    lo = fractions[np.minimum(best + 1, fractions.size - 1)]
    hi = fractions[np.maximum(best - 1, 0)]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    for _ in range(40):
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        fa, fb = energy(a), energy(b)
        hi, lo = np.where(fa < fb, b, hi), np.where(fa < fb, lo, a)
    refined = energy(0.5 * (lo + hi))
    return np.where(np.isfinite(floor), np.minimum(floor, refined), np.inf)


def upload_floors_j(inputs: DelayInputs, energy: EnergyInputs) -> tuple[np.ndarray, np.ndarray]:
    """(activation upload, adapter upload) floors (K,) on the inputs' link: each user alone holding all
    but one PRB per other user of its pool (the most it can get)."""
    from splitsim.scenarios.nr import prbs_in_channel

    from ..link_plan import subcarrier_spacing_khz

    rate = inputs.uplink_rate
    scs = subcarrier_spacing_khz(inputs)
    widest = []
    for channel_hz in (inputs.uplink_main_bandwidth_hz, inputs.uplink_fed_bandwidth_hz):
        prbs = prbs_in_channel(channel_hz, scs) or 1
        widest.append(max(prbs - (inputs.users - 1), 1) * rate.prb_hz)
    return (upload_energy_floor_j(rate, inputs.activation_bits, inputs.snr_coeff_main_hz, widest[0],
                                  energy.max_tx_power_w),
            upload_energy_floor_j(rate, inputs.adapter_bits, inputs.snr_coeff_fed_hz, widest[1],
                                  energy.max_tx_power_w))


def round_problem(inputs: DelayInputs, energy: EnergyInputs, V: np.ndarray, budget_round_j: np.ndarray,
                  weight: float = 0.0) -> EnergyRoundProblem:
    """The per-round problems at local-iteration counts V (n,) with per-round budgets (n,)."""
    k = inputs.users
    tau0 = inputs.client_seconds_per_iteration
    with np.errstate(divide="ignore"):
        tau_max = np.where(energy.min_cpu_fraction > 0, tau0 / energy.min_cpu_fraction, np.inf)
    return EnergyRoundProblem(
        W=np.asarray(V, dtype=float)[:, None] * inputs.weights[None, :], sigma_s=inputs.server_seconds_per_iteration,
        tau0_s=tau0, tau_max_s=np.broadcast_to(tau_max, (k,)).astype(float), power_full_w=energy.client_power_w,
        c_s_hz=inputs.snr_coeff_main_hz, c_c_hz=inputs.snr_coeff_fed_hz, s_bits=inputs.activation_bits,
        s_c_bits=inputs.adapter_bits, B_s_hz=inputs.uplink_main_bandwidth_hz, B_c_hz=inputs.uplink_fed_bandwidth_hz,
        max_power_w=energy.max_tx_power_w, idle_power_w=energy.idle_power_w,
        budget_j=np.asarray(budget_round_j, dtype=float), weight=weight)


def energy_floor_parts_j(inputs: DelayInputs, energy: EnergyInputs) -> tuple[np.ndarray, np.ndarray]:
    """(J per round, J per local iteration) (K,): a user's least energy per round is V·(the second) +
    (the first), at the slowest clock and the cheapest uploads on the inputs' link."""
    uploads = None if on_shannon(inputs) else upload_floors_j(inputs, energy)
    parts = round_problem(inputs, energy, np.array([0.0, 1.0]), np.full(2, np.inf)).round_energy_floor_j(uploads)
    return parts[0], parts[1] - parts[0]


def minimum_energy_j(inputs: DelayInputs, energy: EnergyInputs) -> tuple[np.ndarray, np.ndarray]:
    """(E_min (K,), its eta (K,)): the least energy each user needs over the whole training.

    It is the infimum over eta of I0·(the round's energy floor: slowest clock, wideband uploads),
    approached only as the delay grows without bound, so a budget must exceed it. The floor is
    V·alpha_k + beta_k (per-iteration and per-round parts), so all users are searched at once:
    the paper's grid, then golden-section between each user's grid neighbours."""
    per_round, per_iteration = energy_floor_parts_j(inputs, energy)

    def total(eta: np.ndarray) -> np.ndarray:  # eta (n, K) or (n, 1) -> (n, K)
        V, I0 = local_iterations(eta, inputs.v, inputs.counts), global_rounds(eta, inputs.a, inputs.counts)
        return I0 * (V * per_iteration + per_round)

    grid = paper_eta_grid(0.01)
    values = total(grid[:, None])
    best = np.argmin(values, axis=0)
    e_min, eta_min = values[best, np.arange(inputs.users)], grid[best]
    if inputs.counts == "continuous":
        lo = np.where(best > 0, grid[np.maximum(best - 1, 0)], ETA_MIN)
        hi = np.where(best < len(grid) - 1, grid[np.minimum(best + 1, len(grid) - 1)], ETA_MAX)
        ratio = (math.sqrt(5.0) - 1.0) / 2.0
        for _ in range(80):  # the bracket shrinks by 0.618 a step: 80 steps reach float precision
            a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
            fa, fb = total(a[None, :])[0], total(b[None, :])[0]
            hi, lo = np.where(fa < fb, b, hi), np.where(fa < fb, lo, a)
        mid = 0.5 * (lo + hi)
        refined = total(mid[None, :])[0]
        better = refined < e_min
        e_min, eta_min = np.where(better, refined, e_min), np.where(better, mid, eta_min)
    return e_min, eta_min


def feasible_eta_interval(inputs: DelayInputs, energy: EnergyInputs, budget_j: float) -> tuple[float, float]:
    """(lo, hi): the etas at which every user's least energy over the training is below `budget_j`
    (continuous counts). Outside it no allocation meets the budget; inside, the round problem is
    feasible (at the slowest clock and a low enough power, whatever the delay).

    It is one interval: user k's least energy is I0(eta)·(V(eta)·alpha_k + beta_k) with I0 = a/(1 - eta)
    and V = v·log2(1/eta), so E_k(eta) <= B  <=>  psi_k(eta) = a·(v·alpha_k·log2(1/eta) + beta_k) - B·(1 - eta)
    <= 0, and psi_k is convex (a multiple of -log plus a line): its sublevel set is an interval, and so
    is the intersection over users. Each end is found by bisection on psi_k, all users at once.
    Raises OptimizerError when the interval is empty (check_budget names the user)."""
    if not math.isfinite(budget_j):
        return ETA_MIN, ETA_MAX
    beta, alpha = energy_floor_parts_j(inputs, energy)  # (K,) J per round, J per local iteration
    a, v = inputs.a, inputs.v

    def psi(eta: np.ndarray) -> np.ndarray:
        return a * (v * alpha * np.log2(1.0 / eta) + beta) - budget_j * (1.0 - eta)

    # psi_k's minimum: d/d eta = -a·v·alpha_k/(eta·ln 2) + B = 0
    centre = np.clip(a * v * alpha / (budget_j * math.log(2.0)), ETA_MIN, ETA_MAX)
    if np.any(psi(centre) >= 0):
        check_budget(inputs, energy, budget_j)  # names the user and the energy it needs
        raise OptimizerError("no eta admits an allocation within the energy budget", field="optimizer.energy_budget_j",
                             value=budget_j)

    def edge(inside: np.ndarray, outside: np.ndarray) -> np.ndarray:
        """Bisection between a point with psi < 0 and one with psi >= 0 (or the search bound)."""
        for _ in range(100):
            mid = 0.5 * (inside + outside)
            ok = psi(mid) < 0
            inside, outside = np.where(ok, mid, inside), np.where(ok, outside, mid)
        return inside  # on the feasible side

    lo_bound, hi_bound = np.full_like(centre, ETA_MIN), np.full_like(centre, ETA_MAX)
    lo = np.where(psi(lo_bound) < 0, lo_bound, edge(centre, lo_bound))
    hi = np.where(psi(hi_bound) < 0, hi_bound, edge(centre, hi_bound))
    lo_all, hi_all = float(lo.max()), float(hi.min())
    if not lo_all < hi_all:
        worst_lo, worst_hi = int(np.argmax(lo)), int(np.argmin(hi))
        raise OptimizerError(f"no eta meets every user's budget at once: user {worst_lo} needs eta >= {lo_all:.6g}, "
                             f"user {worst_hi} eta <= {hi_all:.6g}", field="optimizer.energy_budget_j", value=budget_j)
    return lo_all, hi_all


def check_budget(inputs: DelayInputs, energy: EnergyInputs, budget_j: float,
                 field: str = "optimizer.energy_budget_j") -> None:
    """Raise `OptimizerError` (on `field`) naming the user whose least possible energy exceeds the budget."""
    if not (math.isfinite(budget_j) and budget_j > 0):
        raise OptimizerError("the energy budget must be finite and > 0 (J per user over the training)",
                             field=field, value=budget_j)
    e_min, eta_min = minimum_energy_j(inputs, energy)
    worst = int(np.argmax(e_min))
    if e_min[worst] >= budget_j:
        short = int(np.sum(e_min >= budget_j))
        raise OptimizerError(
            f"no allocation can meet it: user {worst} needs more than {e_min[worst]:.6g} J at any delay (at eta = "
            f"{eta_min[worst]:.3g}, slowest clock, unlimited bandwidth and time); {short} of {inputs.users} users "
            "cannot meet it", field=field, value=budget_j)



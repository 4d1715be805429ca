"""The energy-aware allocation on a link model other than Shannon's (radio.link_model: nr).

The energy-aware solvers (structured Newton, interior point) stand on Shannon's rate. On the NR link a
budget (optimizer.energy_budget_j: the least delay with no user over E_max J) is solved on the link
itself: for a given eta and round length the users decouple once their PRBs are fixed, and a user's
energy only falls as it gets more PRBs of either pool. So, per eta (searched as the Shannon solver
searches it), the least round is bisected; whether a round can be met is decided exactly over whole
PRBs (each user's fewest fed PRBs for each count of main PRBs, then optimizer.prb.fit_needs' dynamic
programme), with each user's two transmit powers searched on a grid (0.375 dB apart, and the power
of least energy per bit at each PRB count) and its clock the slowest that fits (`_LinkTables`,
`_AtEta`). The best plan's powers and clocks are then chosen again on the exact times, 0.125 dB apart
(`refine_on_link`). Against an exhaustive search of a two-user cell it is as fast to within 0.3 %
(tests/test_nr_energy.py). The cost grows as users x PRBs x powers: `check_energy_on_link_size`.

The weighted objective (optimizer.energy_weight) is planned on the link's attenuated-Shannon fit
(optimizer.energy.strategies.weighted_on_fit). The least energy a user can need on NR:
optimizer.energy.budget.upload_energy_floor_j.
"""

from __future__ import annotations

import math

import numpy as np

from splitsim.scenarios import Allocation, DelayInputs, EnergyInputs

from ..errors import OptimizerError

MAX_TIGHTENINGS = 8
"""Plans made on the fit before giving up on bringing every user within the budget on the NR link."""
TIGHTENING_AIM = 1e-3
"""A tightened plan aims this share below the budget, so that it lands inside in a step or two."""
REFINE_POWER_POINTS = 385
REFINE_POWER_SPAN_DB = 48.0
"""The refinement's powers: 385 log-spaced over the 48 dB below p_max (0.125 dB apart), and the plan's own."""
REFINE_BISECTIONS = 40
SEARCH_POWER_POINTS = 129
SEARCH_POWER_SPAN_DB = 48.0
"""Each user's powers in the search per eta: 129 log-spaced over the 48 dB below p_max (0.375 dB apart);
refine_on_link then searches 0.125 dB apart at the PRBs found. The adapter's (a tenth of the bits or
less, once a round) on a grid 0.75 dB apart."""
FED_POWER_POINTS = 65
TABLE_POINTS = 512
TABLE_SPAN = 2.0 ** 8
"""Each user's grid of the time one local iteration may take: 512 log-spaced points (1.09 % apart) from
its fastest to 256 times that; a time is rounded down to it (beyond its end, down to the end)."""
TABLE_CHUNK_ELEMENTS = 2_000_000  # the table is built this many (PRB count, time, power) at a time
ROUND_TOLERANCE = 3e-4  # the round is bisected to this share; refine_on_link then works on the exact times
GUESS_BRACKET = 1.03  # a neighbouring eta's round brackets this one within this factor either side
ETA_COARSE_STEP = 0.1  # the eta grid searched first (the paper's, coarser), then bounded Brent
ROUND_SEARCH_SPAN = 2.0 ** 20
ETA_TOLERANCE = 1e-4
ETA_MAX_EVALUATIONS = 20


MAX_SEARCH_SIZE = 4_000_000
"""users x (most main PRBs a user can hold) x (its search powers): about 40 s a plan at 0.9e6 (50 users,
50 MHz at 30 kHz) on 2 cores; above this (some 3 minutes a plan) the energy-aware plan on NR is refused
before any work."""


def energy_search_size(users: int, prbs_main: int) -> int:
    """What the energy-aware plan on NR searches, users x PRB counts x powers (`MAX_SEARCH_SIZE`)."""
    most = max(prbs_main - users + 1, 1)
    return users * most * (SEARCH_POWER_POINTS + most)


def check_energy_on_link_size(users: int, prbs_main: int) -> str | None:
    """Why the energy-aware plan on NR is refused for this cell (None: it is not)."""
    size = energy_search_size(users, prbs_main)
    if size <= MAX_SEARCH_SIZE:
        return None
    return (f"the energy-aware plan on the NR link searches users x PRBs x powers, here {size:,.0f} (more than "
            f"{MAX_SEARCH_SIZE:,}, minutes a plan): use fewer users or a narrower main pool, or link_model: shannon")


def energy_aware_on_link(inputs: DelayInputs, energy: EnergyInputs, budget_j: float) -> Allocation:
    """The least delay with every user within `budget_j` on the inputs' NR link (module docstring)."""
    from splitsim.scenarios.nr import prbs_in_channel

    from ..link_plan import check_coverage, subcarrier_spacing_khz

    check_coverage(inputs)
    refused = check_energy_on_link_size(inputs.users, prbs_in_channel(inputs.uplink_main_bandwidth_hz,
                                                                      subcarrier_spacing_khz(inputs)) or 1)
    if refused:
        raise OptimizerError(refused, field="cell.users", value=inputs.users)
    return _budget_on_link(inputs, energy, budget_j)


def _budget_on_link(inputs: DelayInputs, energy: EnergyInputs, budget_j: float) -> Allocation:
    """The least delay within `budget_j` per user, on the link itself: for each eta the least round
    (`_AtEta`), eta searched as the Shannon solver searches it (the paper's grid inside the interval
    where the budget can be met, evenly spaced points across it, then bounded Brent; every V with
    integer counts), the best then refined at its PRBs (`refine_on_link`)."""
    from scipy.optimize import minimize_scalar

    from ..delay_model import counts_for
    from ..eta_search import ETA_MAX, ETA_MIN, paper_eta_grid
    from .budget import feasible_eta_interval
    from .model import allocation_energy_j

    lo, hi = feasible_eta_interval(inputs, energy, budget_j)
    if inputs.counts == "integer":
        v_max = math.ceil(inputs.v * math.log2(1.0 / ETA_MIN))
        grid = np.array([2.0 ** (-V / inputs.v) for V in range(1, v_max + 1)])
        grid = grid[(grid >= max(ETA_MIN, lo)) & (grid <= min(ETA_MAX, hi))]
    else:
        paper = paper_eta_grid(ETA_COARSE_STEP)
        grid = np.unique(np.concatenate([paper[(paper > lo) & (paper < hi)], np.linspace(lo, hi, 9)[1:-1]]))
    solved: dict[float, tuple[float, Allocation | None]] = {}
    tables = _LinkTables(inputs, energy)

    def delay(eta: float) -> float:
        eta = float(eta)
        if eta not in solved:
            V, I0 = counts_for(inputs, eta)
            near = [(abs(e - eta), a) for e, (_, a) in solved.items() if a is not None]
            nearest = min(near, key=lambda x: x[0])[1] if near else None  # its round brackets this one's
            guess = nearest.T_s / nearest.I0 if nearest is not None else None
            alloc = _AtEta(tables, budget_j, eta, V, I0).solve(guess)
            solved[eta] = (alloc.T_s if alloc is not None else math.inf, alloc)
        return solved[eta][0]

    values = np.array([delay(eta) for eta in grid])
    if grid.size == 0 or not np.any(np.isfinite(values)):
        raise OptimizerError(f"on the NR link no eta admits an allocation within the energy budget (feasible etas on "
                             f"the link's least energy: {lo:.6g} ... {hi:.6g})", field="optimizer.energy_budget_j",
                             value=budget_j)
    best = int(np.argmin(values))
    eta = float(grid[best])
    if inputs.counts == "continuous":
        low = float(grid[best - 1]) if best > 0 else lo
        high = float(grid[best + 1]) if best < grid.size - 1 else hi
        res = minimize_scalar(delay, bounds=(low, high), method="bounded",
                              options={"xatol": ETA_TOLERANCE * high, "maxiter": ETA_MAX_EVALUATIONS})
        if delay(float(res.x)) < values[best]:
            eta = float(res.x)
    alloc = refine_on_link(inputs, energy, solved[eta][1], budget_j)
    spent = allocation_energy_j(inputs, energy, alloc)["total_j"]
    alloc.details["energy_on_link"] = {"method": "least round per eta on the link's whole PRBs, powers and clocks",
                                       "eta_evaluations": len(solved), "worst_user_j": float(spent.max())}
    return alloc


def search_powers(rate, snr_coeff_hz: np.ndarray, most: int, points: int = SEARCH_POWER_POINTS) -> np.ndarray:
    """(K, points + most) each user's powers (fractions of p_max) searched: a log grid of `points`
    over SEARCH_POWER_SPAN_DB, and for each n of 1..most PRBs the power that puts every PRB at the SINR
    where n PRBs spend the least energy per bit (`_cheapest_sinr`), where it is at most p_max — so a
    budget near a user's least energy is met without the grid's resolution standing in the way."""
    c = np.asarray(snr_coeff_hz, dtype=float)
    grid = 10.0 ** (-np.linspace(0.0, SEARCH_POWER_SPAN_DB, points) / 10.0)
    n = np.arange(1, most + 1)
    anchors = np.minimum(_cheapest_sinr(rate, most)[None, :] * n[None, :] * rate.prb_hz / c[:, None], 1.0)
    return np.concatenate([np.broadcast_to(grid, (c.size, grid.size)), anchors], axis=1)


def _cheapest_sinr(rate, most: int) -> np.ndarray:
    """(most,) for n = 1..most PRBs: the SINR per PRB (linear) at which sending on all n costs the least
    energy per bit, x / rate(n PRBs at x each), on a 0.01 dB grid from -10 to 40 dB."""
    x = 10.0 ** (np.arange(-10.0, 40.0, 0.01) / 10.0)
    n = np.arange(1, most + 1)[:, None]
    r = rate.rate_bps(n * rate.prb_hz, x[None, :] * n * rate.prb_hz)
    with np.errstate(divide="ignore"):
        per_bit = np.where(r > 0, x[None, :] * n / r, np.inf)
    return x[np.argmin(per_bit, axis=1)]


class _LinkTables:
    """What the least round at any eta is searched on: each user's search powers, its upload times on
    every PRB count at each, and m_k(n, u) — the least energy of one local iteration (its activation
    upload at the best power, the slowest clock that fits, idling while the server computes) when
    the iteration may take u seconds, with n main PRBs — on a log grid of u (TABLE_POINTS over a span of
    TABLE_SPAN from the fastest iteration), rounded down (so no energy is under-counted). With V·w_k
    iterations in y seconds a user's energy is V·w_k·m_k(n, y / (V·w_k)): one table serves every eta."""

    def __init__(self, inputs: DelayInputs, energy: EnergyInputs):
        from splitsim.scenarios.nr import prbs_in_channel

        from ..link_plan import subcarrier_spacing_khz

        self.inputs, self.energy = inputs, energy
        rate, K = inputs.uplink_rate, inputs.users
        scs = subcarrier_spacing_khz(inputs)
        self.prbs_main = prbs_in_channel(inputs.uplink_main_bandwidth_hz, scs)
        self.prbs_fed = prbs_in_channel(inputs.uplink_fed_bandwidth_hz, scs)
        self.most_main, self.most_fed = self.prbs_main - K + 1, self.prbs_fed - K + 1
        self.prb_hz = rate.prb_hz
        self.p_s = search_powers(rate, inputs.snr_coeff_main_hz, self.most_main)  # (K, G + N)
        self.p_c = search_powers(rate, inputs.snr_coeff_fed_hz, self.most_fed, FED_POWER_POINTS)  # (K, G + M)
        self.t_s = self._upload_s(inputs.activation_bits, inputs.snr_coeff_main_hz, self.most_main, self.p_s)
        self.t_c = self._upload_s(inputs.adapter_bits, inputs.snr_coeff_fed_hz, self.most_fed, self.p_c)
        self.e_c = self.p_c[:, None, :] * energy.max_tx_power_w * self.t_c  # (K, M, G)
        client, server = inputs.client_seconds_per_iteration, inputs.server_seconds_per_iteration
        self.u_lo = client + server + self.t_s[:, -1, 0]  # (K,) the fastest iteration: every PRB, full power and clock
        self.u_log_step = math.log(TABLE_SPAN) / (TABLE_POINTS - 1)
        self._table()

    def _upload_s(self, bits: float, c: np.ndarray, most: int, powers: np.ndarray) -> np.ndarray:
        """(K, n, P) seconds to send `bits` on 1..most PRBs at each user's search powers."""
        n = np.arange(1, most + 1) * self.prb_hz
        r = self.inputs.uplink_rate.rate_bps(n[None, :, None], c[:, None, None] * powers[:, None, :])
        with np.errstate(divide="ignore"):
            return np.where(r > 0, bits / r, np.inf)

    def _table(self) -> None:
        inputs, energy = self.inputs, self.energy
        K, N = self.t_s.shape[:2]
        client, server = inputs.client_seconds_per_iteration, inputs.server_seconds_per_iteration
        f_min = max(energy.min_cpu_fraction, 1e-12)
        self.m = np.empty((K, N, TABLE_POINTS))
        self.m_power = np.empty((K, N, TABLE_POINTS), dtype=np.int64)
        rows = max(1, TABLE_CHUNK_ELEMENTS // (TABLE_POINTS * self.p_s.shape[1]))  # PRB counts per chunk
        for k in range(K):
            u = self.u_lo[k] * np.exp(self.u_log_step * np.arange(TABLE_POINTS))
            cl = client[k]
            for n0 in range(0, N, rows):
                part = slice(n0, min(n0 + rows, N))
                slack = u[None, :, None] - (server[k] + self.t_s[k, part])[:, None, :]  # (n, Y, G): the client's time
                with np.errstate(divide="ignore", invalid="ignore"):
                    f = np.maximum(cl / slack, f_min)
                    joules = (self.p_s[k] * energy.max_tx_power_w * self.t_s[k, part])[:, None, :] \
                        + energy.client_power_w[k] * f ** 2 * cl \
                        + energy.idle_power_w * (server[k] + np.maximum(slack - cl / f, 0.0))
                joules = np.where((slack > 0) & (f <= 1.0 + 1e-12), joules, np.inf)
                self.m_power[k, part] = np.argmin(joules, axis=2)
                self.m[k, part] = np.take_along_axis(joules, self.m_power[k, part][:, :, None], axis=2)[:, :, 0]

    def round_energy(self, work: np.ndarray, round_s: float, fed: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(J a round, adapter power index, u index) (K, N) of each user doing work[k] iterations a round
        with j + 1 main and fed[k, j] fed PRBs."""
        K, N = fed.shape
        users = np.arange(K)[:, None]
        which = np.clip(fed, 1, self.most_fed) - 1
        t_c, e_c = self.t_c[users, which], self.e_c[users, which]  # (K, N, G)
        with np.errstate(divide="ignore", invalid="ignore"):
            index = np.floor(np.log((round_s - t_c) / (work[:, None, None] * self.u_lo[:, None, None]))
                             / self.u_log_step + 1e-9)
        below = ~(index >= 0)
        index = np.clip(np.nan_to_num(index, nan=0.0, posinf=0.0, neginf=0.0), 0, TABLE_POINTS - 1).astype(np.int64)
        main = np.take_along_axis(self.m, index, axis=2)  # (K, N, G): m[k, j, index[k, j, g]]
        total = np.where(below, np.inf, work[:, None, None] * main + e_c)
        g = np.argmin(total, axis=2)
        pick = lambda a: np.take_along_axis(a, g[:, :, None], axis=2)[:, :, 0]  # noqa: E731
        return pick(total), g, pick(index)


class _AtEta:
    """The least round at one eta on the link within the budget (`_LinkTables`): a user's energy falls
    as it gets more PRBs of either pool, so the fewest fed PRBs it needs with n main ones is a binary
    search, and whether the users fit both pools optimizer.prb.fit_needs' dynamic programme decides;
    the round is bisected."""

    def __init__(self, tables: _LinkTables, budget_j: float, eta: float, V: float, I0: float):
        self.tables, self.eta, self.V, self.I0 = tables, eta, V, I0
        inputs = tables.inputs
        self.round_budget_j = budget_j / I0
        self.work = V * inputs.weights  # (K,) local iterations a round
        self.round_lo = float(np.max(self.work * tables.u_lo + tables.t_c[:, -1, 0]))  # alone, full power and clock

    def _needs(self, round_s: float) -> np.ndarray:
        """(K, N) the fewest fed PRBs user k needs with j + 1 main PRBs in a round of round_s (most_fed + 1: none)."""
        t = self.tables
        K, N = t.t_s.shape[:2]
        lo, hi = np.zeros((K, N), dtype=np.int64), np.full((K, N), t.most_fed + 1, dtype=np.int64)
        ok = t.round_energy(self.work, round_s, np.full((K, N), t.most_fed))[0] <= self.round_budget_j
        hi = np.where(ok, t.most_fed, hi)
        lo = np.where(ok, lo, hi)  # nothing to search where even every fed PRB is too few
        while np.any(hi - lo > 1):
            mid = np.where(hi - lo > 1, (lo + hi) // 2, hi)
            fits = t.round_energy(self.work, round_s, np.maximum(mid, 1))[0] <= self.round_budget_j
            hi, lo = np.where(fits, mid, hi), np.where(fits, lo, mid)
        return hi

    def _fits(self, round_s: float):
        from ..prb import fit_needs

        t = self.tables
        return fit_needs(self._needs(round_s), t.most_fed, t.prbs_main, t.prbs_fed)

    def solve(self, guess_s: float | None = None) -> Allocation | None:
        """The allocation of the least round found (None: no round up to ROUND_SEARCH_SPAN x the fastest
        fits). `guess_s`: a round near the answer (a neighbouring eta's) to bracket it from."""
        from ..allocation import allocation_with_counts

        t, inputs = self.tables, self.tables.inputs
        lo, hi = self.round_lo, None
        if guess_s is not None and guess_s > lo:
            near = (max(lo, guess_s / GUESS_BRACKET), guess_s * GUESS_BRACKET)
            if self._fits(near[1]) is not None:
                hi = near[1]
                if near[0] > lo and self._fits(near[0]) is None:
                    lo = near[0]
            else:
                lo = near[1]
        if hi is None:
            hi = 2.0 * lo
            while self._fits(hi) is None:
                lo, hi = hi, 2.0 * hi
                if hi > ROUND_SEARCH_SPAN * self.round_lo:
                    return None
        while hi - lo > ROUND_TOLERANCE * hi:
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if self._fits(mid) is not None else (mid, hi)
        n_main, n_fed = self._fits(hi)
        K = inputs.users
        users = np.arange(K)
        # each user's powers and clock at its PRBs: the adapter power and u of its least energy, the
        # activation power of m there, the slowest clock that fits what is left
        _, g_c, u_index = t.round_energy(self.work, hi, np.broadcast_to(n_fed[:, None], (K, t.t_s.shape[1])).copy())
        g_c, u_index = g_c[users, n_main - 1], u_index[users, n_main - 1]
        g_s = t.m_power[users, n_main - 1, u_index]
        p_s, p_c = t.p_s[users, g_s], t.p_c[users, g_c]
        u = t.u_lo * np.exp(t.u_log_step * u_index)
        t_s, t_c = t.t_s[users, n_main - 1, g_s], t.t_c[users, n_fed - 1, g_c]
        slack = u - inputs.server_seconds_per_iteration - t_s
        f = np.clip(inputs.client_seconds_per_iteration / slack, max(t.energy.min_cpu_fraction, 1e-12), 1.0)
        # PRBs left in a pool go to its user with the longest upload there (never slower, never more energy)
        n_main[np.argmax(self.work * t_s)] += t.prbs_main - int(n_main.sum())
        n_fed[np.argmax(t_c)] += t.prbs_fed - int(n_fed.sum())
        return allocation_with_counts(inputs, self.V, self.I0, n_main * t.prb_hz, n_fed * t.prb_hz, "proposed",
                                      "energy on the link (whole PRBs, powers, clocks)",
                                      {"eta_exact": self.eta, "round_bracket_s": [lo, hi]}, self.eta, p_s, p_c, f)


def refine_on_link(inputs: DelayInputs, energy: EnergyInputs, alloc: Allocation, budget_j: float) -> Allocation:
    """`alloc` (whole PRBs) with each user's transmit powers and clock chosen again on the link itself:
    the least delay T at the allocation's eta and PRBs such that every user can finish a round in T/I0
    within the budget. Given the PRBs and the round time the users decouple: user k's least energy is
    a search over its two powers (REFINE_POWER_POINTS log-spaced, and its current ones), the clock the
    slowest that still meets the round (f ∝ 1/slack, the compute energy ∝ f²) — and T is bisected.
    Never slower than `alloc`, never over the budget."""
    from ..allocation import allocation_with_counts
    from .model import allocation_energy_j

    rate, K = inputs.uplink_rate, inputs.users
    V, I0 = alloc.V, alloc.I0
    p_s0, p_c0, f0 = alloc.powers_and_clock()
    grid = 10.0 ** (-np.linspace(0.0, REFINE_POWER_SPAN_DB, REFINE_POWER_POINTS) / 10.0)

    def upload_s(bits, b, c, own):  # (K, G): seconds at each power of the grid and the user's own
        p = np.concatenate([np.broadcast_to(grid, (K, grid.size)), own[:, None]], axis=1)
        r = rate.rate_bps(b[:, None], c[:, None] * p)
        with np.errstate(divide="ignore"):
            return p, np.where(r > 0, bits / r, np.inf)

    ps, ts = upload_s(inputs.activation_bits, alloc.b_s_hz, inputs.snr_coeff_main_hz, np.asarray(p_s0, float))
    pc, tc = upload_s(inputs.adapter_bits, alloc.b_c_hz, inputs.snr_coeff_fed_hz, np.asarray(p_c0, float))
    work = V * inputs.weights  # (K,) iterations a round
    client, server = inputs.client_seconds_per_iteration, inputs.server_seconds_per_iteration
    power_full, p_max, idle_w = energy.client_power_w, energy.max_tx_power_w, energy.idle_power_w
    f_min = max(energy.min_cpu_fraction, 1e-9)

    def least(round_s: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per user: (least J over the run with a round of round_s, its p_s, p_c, f); inf where none."""
        out = np.full(K, np.inf), np.ones(K), np.ones(K), np.ones(K)
        for k in range(K):
            slack = round_s - tc[k][None, :] - work[k] * (server[k] + ts[k][:, None])  # (Gs, Gc): compute time
            with np.errstate(divide="ignore", invalid="ignore"):
                f = np.maximum(work[k] * client[k] / slack, f_min)
            ok = (slack > 0) & (f <= 1.0 + 1e-12)
            if not ok.any():
                continue
            f = np.minimum(f, 1.0)
            busy = work[k] * (client[k] / f + ts[k][:, None]) + tc[k][None, :]
            joules = (work[k] * (power_full[k] * f ** 2 * client[k] + ps[k][:, None] * p_max * ts[k][:, None])
                      + pc[k][None, :] * p_max * tc[k][None, :] + idle_w * np.maximum(round_s - busy, 0.0))
            joules = np.where(ok, joules, np.inf)
            i, j = np.unravel_index(int(np.argmin(joules)), joules.shape)
            out[0][k], out[1][k], out[2][k], out[3][k] = I0 * joules[i, j], ps[k][i], pc[k][j], f[i, j]
        return out

    def feasible(round_s: float) -> bool:
        return bool(np.all(least(round_s)[0] <= budget_j))

    hi = alloc.T_s / I0
    if not feasible(hi):  # the grid holds the allocation's own powers; only the clock's rounding can miss
        return alloc
    fastest = work * (client + server + ts[:, 0]) + tc[:, 0]  # full power and clock: no round is shorter
    lo = float(fastest.max())
    if feasible(lo):
        hi = lo
    for _ in range(REFINE_BISECTIONS):
        if hi - lo <= 1e-9 * hi:
            break
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if feasible(mid) else (mid, hi)
    _, p_s, p_c, f = least(hi)
    details = {**alloc.details, "refined_on_link": {"planned_T_s": alloc.T_s}}
    refined = allocation_with_counts(inputs, V, I0, alloc.b_s_hz, alloc.b_c_hz, alloc.strategy,
                                     f"{alloc.solver} + powers and clocks on the link", details, alloc.eta, p_s, p_c, f)
    spent = allocation_energy_j(inputs, energy, refined)["total_j"]
    if refined.T_s >= alloc.T_s or np.any(spent > budget_j * (1 + 1e-9)):
        return alloc
    return refined

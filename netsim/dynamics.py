"""A cell that moves: block fading, random-waypoint mobility and spatially correlated shadowing.

The optimizer plans on one frozen `ChannelState` (positions, path loss, shadowing at t = 0, mean
fading). The simulator's channel is piecewise constant over blocks of `coherence_time_s`: block j
covers [j·Tc, (j+1)·Tc). At the start of every block

* the small-scale fading |h|^2 is redrawn (Rayleigh: exponential with mean 1; Rician with K-factor
  K: |sqrt(K/(K+1)) + sqrt(1/(K+1))·CN(0, 1)|^2, mean 1), independently per user and block;
* users move Tc·v metres along random-waypoint legs (destinations uniform over the cell, no pause);
* the path loss follows the new distance (netsim.geometry.path_loss_db) and the shadowing is updated
  with the Gudmundson (1991) correlation rho = exp(-d / d_corr) over the d metres moved:
  S <- rho·S + sqrt(1 - rho^2)·sigma·N(0, 1), which keeps its variance sigma^2.

`ChannelTrack.factor` is each user's power gain relative to the planned state, so every rate is
`fdma_rate_bps(b, c·factor)` with the planned c = g·p/N0. Rows are drawn lazily, in block order,
from one Generator with fixed-size draws per block, so the table does not depend on who asks
first: the SimPy engine and the vectorised engine see the same channel.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.signal import lfilter

from splitsim.scenarios import CellConfig, ChannelConfig, ChannelState, fdma_rate_bps

from .geometry import path_loss_db, uniform_in_cell

__all__ = ["ChannelTrack", "fading_power"]

_CHUNK_BLOCKS = 64
_WINDOW = 8  # blocks a transfer looks ahead at once


def fading_power(kind: str, k_factor_db: float, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    """|h|^2 with mean 1: 'rayleigh' exponential(1); 'rician' with K-factor `k_factor_db`; 'none' ones."""
    if kind == "rayleigh":
        return rng.exponential(1.0, size=shape)
    if kind == "rician":
        k = 10.0 ** (k_factor_db / 10.0)
        scatter = rng.normal(0.0, math.sqrt(0.5), size=(2, *shape))
        los = math.sqrt(k / (k + 1.0))
        s = math.sqrt(1.0 / (k + 1.0))
        return (los + s * scatter[0]) ** 2 + (s * scatter[1]) ** 2
    return np.ones(shape)


class ChannelTrack:
    """Per-block gain factors (relative to the planned `state`) of every user, drawn on demand."""

    def __init__(self, state: ChannelState, channel: ChannelConfig, cell: CellConfig, rng: np.random.Generator,
                 anchors_m: np.ndarray | None = None):
        """`anchors_m` (K, 2): where each user's link ends (SplitLLM: its edge server, kept as users
        move); None: the base station of `state`."""
        if channel.coherence_time_s is None:
            raise ValueError("a ChannelTrack needs channel.coherence_time_s")
        self.block_s = float(channel.coherence_time_s)
        self.users = state.users
        self._cfg, self._cell, self._rng = channel, cell, rng
        self.fading, self.k_factor_db = channel.fading, channel.rician_k_factor_db
        self._planned_gain_db = state.gain_db
        self._anchor_m = np.asarray(state.bs_position_m if anchors_m is None else anchors_m, dtype=float)
        self._xy = state.positions_m.astype(float).copy()
        self._shadow_db = state.shadowing_db.astype(float).copy()
        self._speed = channel.mobility_speed_mps
        self._target = uniform_in_cell(cell, self.users, rng) if self._speed > 0 else None
        self._buf = np.empty((4 * _CHUNK_BLOCKS, self.users))  # rows _start ... _start + _count - 1 in use
        self._large = np.empty_like(self._buf)  # the same rows without the fading: path loss and shadowing
        self._shadow = np.empty_like(self._buf)  # the shadowing alone (dB), for a forecast of the rows to come
        self.keep_s = 0.0  # discard_before keeps this many seconds more (a re-planner's CSI delay)
        self._start = 0
        self._count = 0
        self._first = 0  # block index of the first row in use

    @property
    def blocks_drawn(self) -> int:
        return self._first + self._count

    def _walk_one(self, k: int, blocks: int) -> np.ndarray:
        """Positions (blocks, 2) of user k at the next `blocks` block starts, crossing waypoints: the
        distance walked by block j is speed·Tc·(j + 1), laid along the legs (new waypoints drawn, one
        uniform point each, as the walk reaches them)."""
        walked = self._speed * self.block_s * np.arange(1, blocks + 1)
        starts, ends = [self._xy[k].copy()], [self._target[k].copy()]
        lengths = [float(np.linalg.norm(ends[0] - starts[0]))]
        while sum(lengths) <= walked[-1]:
            starts.append(ends[-1])
            ends.append(uniform_in_cell(self._cell, 1, self._rng)[0])
            lengths.append(float(np.linalg.norm(ends[-1] - starts[-1])))
        begin = np.concatenate([[0.0], np.cumsum(lengths)[:-1]])
        leg = np.searchsorted(begin, walked, side="right") - 1
        a, b, length = np.asarray(starts)[leg], np.asarray(ends)[leg], np.asarray(lengths)[leg]
        frac = np.where(length > 0, (walked - begin[leg]) / np.where(length > 0, length, 1.0), 0.0)
        self._target[k] = ends[-1]
        return a + (b - a) * frac[:, None]

    def _walk(self, blocks: int) -> np.ndarray:
        """Positions (blocks, K, 2) at the next `blocks` block starts; each user moves speed·Tc per block
        along its legs (vectorised for everyone who reaches no waypoint within the chunk)."""
        step = self._speed * self.block_s
        leg = self._target - self._xy
        dist = np.linalg.norm(leg, axis=1)
        unit = leg / np.where(dist > 0, dist, 1.0)[:, None]
        out = self._xy[None, :, :] + (step * np.arange(1, blocks + 1))[:, None, None] * unit[None, :, :]
        for k in np.flatnonzero(dist <= step * blocks):  # reaches a waypoint in this chunk: in user order
            out[:, k] = self._walk_one(int(k), blocks)
        return out

    def _draw_chunk(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The next _CHUNK_BLOCKS rows of gain factors, of their path-loss-and-shadowing part, and of
        the shadowing (dB). Chunk boundaries are fixed, so the draws do not depend on who asks for
        which block when."""
        cfg, n, k = self._cfg, _CHUNK_BLOCKS, self.users
        first = self.blocks_drawn == 0
        if self._speed > 0:
            moving = self._walk(n - 1 if first else n)
            xy = np.concatenate([self._xy[None], moving]) if first else moving
            self._xy = xy[-1].copy()
            if cfg.shadowing_sigma_db > 0:  # S_j = rho·S_(j-1) + sqrt(1 - rho^2)·sigma·N_j, as a linear filter
                rho = math.exp(-self._speed * self.block_s / cfg.shadowing_decorrelation_m)
                fresh = math.sqrt(1.0 - rho**2) * self._rng.normal(0.0, cfg.shadowing_sigma_db, size=(n, k))
                carry = self._shadow_db if first else rho * self._shadow_db
                if first:
                    fresh[0] = 0.0  # block 0 is the planned shadowing
                shadow, _ = lfilter([1.0], [1.0, -rho], fresh, axis=0, zi=carry[None, :])
                self._shadow_db = shadow[-1].copy()
            else:
                shadow = np.broadcast_to(self._shadow_db, (n, k))
            distance = np.maximum(np.linalg.norm(xy - self._anchor_m, axis=2), cfg.min_distance_m)
            loss = path_loss_db(distance, cfg.path_loss_db_at_1km, cfg.path_loss_db_per_decade, cfg.min_distance_m)
            large_scale_db = loss + shadow
        fade = fading_power(cfg.fading, cfg.rician_k_factor_db, (n, k), self._rng)
        if self._speed == 0:  # the planned large-scale gain, times the fading
            return fade, np.ones((n, k)), np.broadcast_to(self._shadow_db, (n, k))
        large = 10.0 ** ((-large_scale_db - self._planned_gain_db) / 10.0)
        gains = fade * large
        if first:
            large[0] = 1.0  # block 0 is the planned state by construction (not 1 +- 1e-16 from the dB round trip)
        return gains, large, shadow

    def _ensure(self, block: int) -> None:
        names = ("_buf", "_large", "_shadow")
        while block >= self.blocks_drawn:
            chunks = self._draw_chunk()
            if self._start + self._count + _CHUNK_BLOCKS > self._buf.shape[0]:  # compact, or grow x2
                cap = self._buf.shape[0] * (2 if self._count + _CHUNK_BLOCKS > self._buf.shape[0] // 2 else 1)
                for name in names:
                    rows = getattr(self, name)[self._start:self._start + self._count]
                    fresh = np.empty((cap, self.users))
                    fresh[:self._count] = rows
                    setattr(self, name, fresh)
                self._start = 0
            end = self._start + self._count
            for name, chunk in zip(names, chunks):
                getattr(self, name)[end:end + _CHUNK_BLOCKS] = chunk
            self._count += _CHUNK_BLOCKS

    def discard_before(self, time_s: float) -> None:
        """Forget blocks that end before `time_s` (no one will ask for them again)."""
        drop = min(int(max(time_s - self.keep_s, 0.0) // self.block_s) - self._first, self._count)
        if drop > 0:
            self._start += drop
            self._count -= drop
            self._first += drop

    def _rows(self, table: str, block: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Rows of buffer `table` ('_buf', '_large' or '_shadow', read after drawing: drawing may reallocate it)."""
        block = np.asarray(block, dtype=np.int64)
        self._ensure(int(block.max()))
        if block.min() < self._first:
            raise ValueError(f"block {int(block.min())} was discarded (kept from {self._first})")
        return getattr(self, table)[block - self._first + self._start, users]

    def factor(self, block: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Gain factors of `users` in `block` (same shapes)."""
        return self._rows("_buf", block, users)

    def large_scale_factor(self, block: np.ndarray, users: np.ndarray) -> np.ndarray:
        """The path-loss-and-shadowing part of `factor` (same shapes): what the users' positions give."""
        return self._rows("_large", block, users)

    def shadowing_db(self, block: np.ndarray, users: np.ndarray) -> np.ndarray:
        """The shadowing (dB, a loss) of `users` in `block` (same shapes), part of large_scale_factor."""
        return self._rows("_shadow", block, users)

    def transfer_s(self, bits: np.ndarray, bandwidth_hz: np.ndarray, snr_coeff_hz: np.ndarray,
                   start_s: np.ndarray, users: np.ndarray, link=None) -> np.ndarray:
        """Seconds to send `bits` starting at `start_s`, the rate changing at every block edge (n,).

        Within a block the rate is fdma_rate_bps(b, c·factor) (or `link`'s rate: a link model such as
        scenarios.nr_link.NrRate); a transfer that outlasts its block
        continues at the next block's rate (exact integration over the piecewise-constant channel).
        Blocks are looked at _WINDOW at a time, the same for every row (results do not depend on n)."""
        remaining = np.asarray(bits, dtype=float).copy()
        start = np.asarray(start_s, dtype=float)
        t = start.copy()
        block = np.floor(t / self.block_s).astype(np.int64)
        out = np.zeros_like(t)
        todo = np.flatnonzero(remaining > 0)
        ahead = np.arange(_WINDOW)
        rate_bps = fdma_rate_bps if link is None else link.rate_bps
        while todo.size:
            blocks = block[todo][:, None] + ahead[None, :]
            rate = rate_bps(bandwidth_hz[todo][:, None],
                            snr_coeff_hz[todo][:, None] * self.factor(blocks, users[todo][:, None]))
            begin = blocks * self.block_s
            begin[:, 0] = t[todo]
            capacity = np.cumsum(rate * ((blocks + 1) * self.block_s - begin), axis=1)
            reached = capacity >= remaining[todo][:, None]
            done = reached[:, -1]
            if done.any():
                rows = np.flatnonzero(done)
                j = np.argmax(reached[rows], axis=1)
                before = np.where(j > 0, capacity[rows, np.maximum(j - 1, 0)], 0.0)
                fin = todo[rows]
                out[fin] = begin[rows, j] + (remaining[fin] - before) / rate[rows, j] - start[fin]
            go, rest = todo[~done], ~done
            remaining[go] -= capacity[rest, -1]
            block[go] += _WINDOW
            t[go] = block[go] * self.block_s
            todo = go
        return out


def large_scale_samples(state: ChannelState, channel: ChannelConfig, cell: CellConfig, horizon_s: float,
                        walks: int, rng: np.random.Generator, points: int = 64) -> np.ndarray:
    """Samples (K, walks·points) of each user's path-loss-and-shadowing gain factor (relative to
    `state`) at `points` evenly spaced times over [0, horizon_s), along `walks` independent
    random-waypoint walks from the planned positions (the track's own mobility and shadowing model;
    ones for a static channel). What a plan made once at t = 0 can know of the channel the users
    will have."""
    if not channel.time_varying or channel.mobility_speed_mps == 0:
        return np.ones((state.users, 1))
    out = np.empty((state.users, walks * points))
    users = np.arange(state.users)
    no_fading = channel.model_copy(update={"fading": "none"})
    for w, child in enumerate(rng.spawn(walks)):
        track = ChannelTrack(state, no_fading, cell, child)
        blocks = np.floor(np.arange(points) * (horizon_s / points) / track.block_s).astype(np.int64)
        for j, block in enumerate(blocks):
            out[:, w * points + j] = track.large_scale_factor(np.full(state.users, block), users)
            track.discard_before(block * track.block_s)
    return out

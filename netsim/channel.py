"""The wireless cell: geometry, path loss, shadowing, fading and the FDMA rate.

Sampling is separate from use: `sample_channel` draws one `ChannelState` (seeded by the
Generator passed in); the optimizer and the simulator both read that same object. Draw order
within one Generator is fixed: user positions, shadowing, then fading (only when enabled and the
channel is frozen; a time-varying channel draws its fading per block, netsim.dynamics).
"""

from __future__ import annotations

import numpy as np

from splitsim.scenarios import CellConfig, ChannelConfig, ChannelState, RadioConfig, fdma_rate_bps

from .dynamics import fading_power
from .geometry import path_loss_db, uniform_in_cell

__all__ = [
    "path_loss_db", "fdma_rate_bps", "sample_user_positions", "sample_edge_positions", "sample_channel",
    "round_gain_factors", "round_gain_parts", "downlink_snr_coeff_hz", "snr_coeff_hz",
]


def snr_coeff_hz(gain_db: np.ndarray | float, tx_power_dbm: float, noise_psd_dbm_per_hz: float) -> np.ndarray:
    """c = g·p/N0 in Hz from a gain in dB, a power in dBm and a noise PSD in dBm/Hz."""
    return 10.0 ** ((np.asarray(gain_db, dtype=float) + tx_power_dbm - noise_psd_dbm_per_hz) / 10.0)


def sample_user_positions(cell: CellConfig, rng: np.random.Generator) -> np.ndarray:
    """User positions (K, 2) in metres, uniform over the cell area (or the fixed list)."""
    if cell.user_placement == "fixed":
        return np.asarray(cell.user_positions_m, dtype=float).reshape(cell.users, 2)
    return uniform_in_cell(cell, cell.users, rng)


def sample_edge_positions(cell: CellConfig, rng: np.random.Generator) -> np.ndarray:
    """Edge-server positions (M, 2): evenly on a ring at half the half-width, or uniform."""
    m = cell.edge_servers
    if m == 0:
        return np.zeros((0, 2))
    if cell.edge_placement == "uniform":
        return uniform_in_cell(cell, m, rng)
    angle = 2 * np.pi * np.arange(m) / m
    radius = cell.half_width_m / 2
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])


def _fading(channel: ChannelConfig, shape: tuple, rng: np.random.Generator) -> np.ndarray:
    return fading_power(channel.fading, channel.rician_k_factor_db, shape, rng)


def sample_channel(cell: CellConfig, channel: ChannelConfig, radio: RadioConfig,
                   rng: np.random.Generator) -> ChannelState:
    """Draw one channel realisation: positions, path loss to the base station, shadowing, fading."""
    positions = sample_user_positions(cell, rng)
    bs = np.asarray(cell.base_station_xy_m, dtype=float)
    distance = np.maximum(np.linalg.norm(positions - bs, axis=1), channel.min_distance_m)
    loss = path_loss_db(distance, channel.path_loss_db_at_1km, channel.path_loss_db_per_decade,
                        channel.min_distance_m)
    shadowing = rng.normal(0.0, channel.shadowing_sigma_db, size=cell.users) if channel.shadowing_sigma_db > 0 \
        else np.zeros(cell.users)
    # A time-varying channel draws its fading per block (netsim.dynamics); the plan sees the mean, 1.
    fading = np.ones(cell.users) if channel.time_varying else _fading(channel, (cell.users,), rng)
    return ChannelState(positions_m=positions, bs_position_m=bs, distance_m=distance, path_loss_db=loss,
                        shadowing_db=shadowing, fading_power=fading, tx_power_dbm=radio.max_tx_power_dbm,
                        noise_psd_dbm_per_hz=channel.noise_psd_dbm_per_hz)


def round_gain_factors(state: ChannelState, channel: ChannelConfig, rounds: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Per-round channel power gain relative to `state`, shape (rounds, K); row 0 is all ones.

    With `redraw_each_round`, rounds 1.. redraw shadowing (and fading) around the same path loss;
    otherwise every row is one. Multiply any c = g·p/N0 of `state` by a row to get that round's c.
    """
    return round_gain_parts(state, channel, rounds, rng)[0]


def round_gain_parts(state: ChannelState, channel: ChannelConfig, rounds: int,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`round_gain_factors` (same draws), and their path-loss-and-shadowing part without the
    fading (rounds, K): what a base station that knows only the large-scale channel sees."""
    factors = np.ones((rounds, state.users))
    if not channel.redraw_each_round:  # frozen: what the plan was made on holds throughout
        return factors, factors.copy()
    large = np.tile(1.0 / state.fading_power, (rounds, 1))  # the planned state's own fading taken out
    if rounds > 1:
        k = state.users
        shadow = rng.normal(0.0, channel.shadowing_sigma_db, size=(rounds - 1, k)) \
            if channel.shadowing_sigma_db > 0 else np.zeros((rounds - 1, k))
        fading = _fading(channel, (rounds - 1, k), rng)
        gain_db = -(state.path_loss_db + shadow) + 10 * np.log10(fading)
        factors[1:] = 10.0 ** ((gain_db - state.gain_db) / 10.0)
        large[1:] = 10.0 ** ((-(state.path_loss_db + shadow) - state.gain_db) / 10.0)
    return factors, large


def downlink_snr_coeff_hz(state: ChannelState, bs_tx_power_dbm: float) -> np.ndarray:
    """c on the downlink (K,): the same gains (reciprocity) at the base station's power."""
    return snr_coeff_hz(state.gain_db, bs_tx_power_dbm, state.noise_psd_dbm_per_hz)

"""The cell against hand-computed values and independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from splitsim.netsim import associate_users, build_topology, path_loss_db, sample_channel, sample_edge_positions
from splitsim.scenarios import CellConfig, ChannelConfig, RadioConfig, fdma_rate_bps, rng_for


def test_path_loss_at_250_m_matches_hand_value():
    # 128.1 + 37.6 * log10(0.25) = 128.1 - 22.6375 = 105.4625 dB
    assert path_loss_db(250.0) == pytest.approx(105.4625, abs=1e-4)
    assert path_loss_db(1000.0) == pytest.approx(128.1)


def test_path_loss_clamps_to_min_distance():
    assert path_loss_db(0.0, min_distance_m=1.0) == pytest.approx(128.1 - 3 * 37.6)
    assert path_loss_db(0.2, min_distance_m=1.0) == path_loss_db(1.0)


def test_rate_of_user_at_250_m_10_dbm_400_khz():
    """Hand computation: PL 105.4625 dB, p = 10 dBm, N0 = -174 dBm/Hz, no shadowing.

    c = g p / N0 = 10^((-105.4625 + 10 + 174)/10) Hz = 7.1408e7 Hz; over b = 400 kHz the SNR is
    178.52 (22.517 dB) and r = b log2(1 + SNR) = 2.9952 Mbit/s.
    """
    cell = CellConfig(users=1, user_placement="fixed", user_positions_m=[[250.0, 0.0]])
    state = sample_channel(cell, ChannelConfig(shadowing_sigma_db=0.0), RadioConfig(max_tx_power_dbm=10.0),
                           rng_for(0, "channel"))
    assert state.distance_m[0] == pytest.approx(250.0)
    assert state.snr_coeff_hz[0] == pytest.approx(7.1408e7, rel=1e-4)
    snr = state.snr_coeff_hz[0] / 400e3
    assert 10 * math.log10(snr) == pytest.approx(22.517, abs=1e-3)
    assert state.rate_bps(400e3)[0] == pytest.approx(2.9952e6, rel=1e-4)
    assert state.rate_bps(400e3)[0] == pytest.approx(400e3 * math.log2(1 + snr), rel=1e-12)


@pytest.mark.parametrize("c_hz", [1e3, 7.1e7, 1e11])
def test_rate_tends_to_wideband_limit(c_hz):
    limit = c_hz / math.log(2)
    bandwidths = np.logspace(0, 18, 50)
    rates = fdma_rate_bps(bandwidths, c_hz)
    assert np.all(np.diff(rates) > 0), "the rate grows with bandwidth"
    assert np.all(rates < limit * (1 + 1e-12))
    assert rates[-1] == pytest.approx(limit, rel=1e-6)
    assert fdma_rate_bps(np.inf, c_hz) == pytest.approx(limit)
    assert fdma_rate_bps(0.0, c_hz) == 0.0


def test_shadowing_statistics_and_positions_in_square():
    cell = CellConfig(users=20000)
    state = sample_channel(cell, ChannelConfig(), RadioConfig(), rng_for(3, "channel"))
    assert np.all(np.abs(state.positions_m) <= 250.0)
    assert state.shadowing_db.std() == pytest.approx(8.0, rel=0.03)
    assert abs(state.shadowing_db.mean()) < 0.2
    assert np.all(state.distance_m >= 1.0)
    # the gain decomposes as -(PL + shadowing): an independent recomputation
    expected = -(128.1 + 37.6 * np.log10(np.maximum(np.hypot(*state.positions_m.T), 1.0) / 1000) + state.shadowing_db)
    np.testing.assert_allclose(state.gain_db, expected, rtol=0, atol=1e-9)


def test_disc_positions_are_uniform_over_area():
    cell = CellConfig(shape="disc", radius_m=300.0, users=40000)
    state = sample_channel(cell, ChannelConfig(shadowing_sigma_db=0.0), RadioConfig(), rng_for(5, "channel"))
    r = np.hypot(*state.positions_m.T)
    assert r.max() <= 300.0
    # uniform over a disc: P(r <= R/2) = 1/4
    assert np.mean(r <= 150.0) == pytest.approx(0.25, abs=0.01)


def test_rayleigh_fading_has_unit_mean_power():
    state = sample_channel(CellConfig(users=20000), ChannelConfig(fading="rayleigh"), RadioConfig(),
                           rng_for(1, "channel"))
    assert state.fading_power.mean() == pytest.approx(1.0, rel=0.03)


def test_same_seed_same_channel_other_seed_other_channel():
    args = (CellConfig(users=30), ChannelConfig(), RadioConfig())
    a = sample_channel(*args, rng_for(11, "channel"))
    b = sample_channel(*args, rng_for(11, "channel"))
    c = sample_channel(*args, rng_for(12, "channel"))
    for name in ("positions_m", "shadowing_db", "path_loss_db"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.positions_m, c.positions_m)


def test_tx_power_changes_snr_by_the_same_db():
    state = sample_channel(CellConfig(users=5), ChannelConfig(), RadioConfig(max_tx_power_dbm=10), rng_for(0, "c"))
    np.testing.assert_allclose(state.with_tx_power(20).snr_coeff_hz / state.snr_coeff_hz, 10.0)


def test_users_associate_to_nearest_edge_and_topology_has_every_node():
    cell = CellConfig(users=200, edge_servers=4)
    state = sample_channel(cell, ChannelConfig(), RadioConfig(), rng_for(2, "channel"))
    edges = sample_edge_positions(cell, rng_for(2, "edges"))
    assoc = associate_users(state.positions_m, edges)
    brute = [min(range(4), key=lambda m: np.linalg.norm(p - edges[m])) for p in state.positions_m]
    np.testing.assert_array_equal(assoc, brute)
    g = build_topology(cell, state, edges)
    kinds = [d["kind"] for _, d in g.nodes(data=True)]
    assert kinds.count("user") == 200 and kinds.count("edge") == 4
    assert kinds.count("server") == 2 and kinds.count("cloud") == 1
    assert g.nodes["user0"]["edge"] == assoc[0]
    assert g.has_edge("user0", f"edge{assoc[0]}") and g.has_edge("edge0", "cloud")

"""The NR uplink's link curve (`splitsim link`, scenarios.nr_link) against Sionna's PHY abstraction
and TBS procedure, TS 38.306's peak rate, and the share of Shannon computed from Sionna's PUSCH
BLER tables (issue 33: 0.58-0.75 of Shannon in FDD, 0.12-0.16 with DDDSU)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

pytest.importorskip("sionna.sys", reason="sionna-no-rt (the nr extra) is not installed")

from splitsim.scenarios.nr_link import NrUplink, UplinkSlots, bler, code_block_bits  # noqa: E402
from splitsim.scenarios.nr_tbs import MCS_TABLES, mcs, transport_block_bits  # noqa: E402


def test_code_block_sizes_equal_sionnas():
    import torch
    from sionna.phy.nr.utils import calculate_tb_size

    for table in ("qam64", "qam256"):
        for i in range(len(MCS_TABLES[table])):
            q_m, rate = mcs(i, table)
            for prbs, symbols in [(1, 4), (5, 14), (51, 14), (106, 12), (273, 14), (24, 2)]:
                out = calculate_tb_size(torch.tensor(q_m), torch.tensor(rate), num_prbs=torch.tensor(prbs),
                                        num_ofdm_symbols=torch.tensor(symbols), num_dmrs_per_prb=torch.tensor(12),
                                        return_cw_length=False)
                tbs, cb_size = int(out[0]), int(out[1])
                assert transport_block_bits(i, prbs, symbols, table) == tbs
                assert code_block_bits(np.array([tbs]), np.array([rate]))[0] == cb_size, (table, i, prbs, symbols)


@pytest.fixture(scope="module")
def fdd_and_tdd():
    sinr_db = np.arange(-10.0, 30.01, 0.5)
    fdd = NrUplink(30, 51, UplinkSlots("FDD", 0))
    tdd = NrUplink(30, 51, UplinkSlots("DDDSU", 2))
    return sinr_db, fdd, fdd.curve(sinr_db), tdd, tdd.curve(sinr_db)


def test_the_inner_loop_takes_the_highest_mcs_within_the_bler_target(fdd_and_tdd):
    import torch
    from sionna.phy.nr.utils import calculate_tb_size
    from sionna.sys import PHYAbstraction

    sinr_db, fdd, _, _, _ = fdd_and_tdd
    curve = NrUplink(30, 51, UplinkSlots("FDD", 0), link_adaptation="inner_loop").curve(sinr_db)
    phy = PHYAbstraction()
    count = len(MCS_TABLES["qam64"])
    q_m = torch.tensor([mcs(i, "qam64")[0] for i in range(count)])
    rate = torch.tensor([mcs(i, "qam64")[1] for i in range(count)], dtype=torch.float32)
    out = calculate_tb_size(q_m, rate, num_prbs=torch.full((count,), 51), num_ofdm_symbols=torch.full((count,), 14),
                            num_dmrs_per_prb=torch.full((count,), 12), return_cw_length=False)
    tbs, cb_size, blocks = out[0].numpy(), out[1], out[2].numpy()
    for s, chosen in zip(sinr_db, curve["mcs_index"]):
        snr = torch.full((count,), 10 ** (s / 10), dtype=torch.float32)
        cb_bler = phy.get_bler(torch.arange(count, dtype=torch.int32), torch.ones(count, dtype=torch.int32),
                               torch.zeros(count, dtype=torch.int32), cb_size.int(), snr).double().numpy()
        cb_bler = np.where(np.isfinite(cb_bler), np.clip(cb_bler, 0, 1), 1.0)
        tb_bler = 1 - (1 - cb_bler) ** blocks
        fine = np.flatnonzero(tb_bler <= 0.1)
        expected = fine.max() if len(fine) else -1
        assert chosen == expected, (s, chosen, expected)
        if chosen >= 0:
            goodput = tbs[chosen] * (1 - tb_bler[chosen]) / (51 * 180)
            assert curve["goodput_fdd_bps_per_hz"][list(sinr_db).index(s)] == pytest.approx(goodput, rel=1e-5)


def test_the_share_of_shannon_is_what_sionnas_tables_give(fdd_and_tdd):
    sinr_db, _, fdd, tdd_link, tdd = fdd_and_tdd
    band = (sinr_db >= 0) & (sinr_db <= 20)
    fdd_share = fdd["goodput_fdd_bps_per_hz"][band] / fdd["shannon_bps_per_hz"][band]
    tdd_share = tdd["goodput_bps_per_hz"][band] / tdd["shannon_bps_per_hz"][band]
    assert 0.58 <= np.median(fdd_share) <= 0.75 and fdd_share.min() > 0.55 and fdd_share.max() < 0.8
    assert 0.12 <= np.median(tdd_share) <= 0.16
    # DDDSU: 1 uplink slot of 14 symbols and 2 symbols of the special slot in 5 x 14
    assert tdd_link.slots.uplink_symbol_share == pytest.approx(16 / 70)
    # never above Shannon, and flat once the top MCS is reached
    assert np.all(fdd["goodput_fdd_bps_per_hz"] <= fdd["shannon_bps_per_hz"])
    assert fdd["goodput_fdd_bps_per_hz"][-1] == fdd["goodput_fdd_bps_per_hz"][-5]


@pytest.mark.parametrize("n_prb", [10, 51])
def test_the_outer_loop_goodput_is_sionnas_olla_over_many_slots(n_prb):
    """Issue 33's check: Sionna's own outer-loop link adaptation (sionna.sys.OuterLoopLinkAdaptation)
    driving its PHY abstraction (block errors drawn) for 3,000 slots at fixed SINRs from -5 to 25 dB
    delivers what the curve's stationary OLLA regime says, within 2 %."""
    import torch
    from sionna.sys import OuterLoopLinkAdaptation, PHYAbstraction

    torch.manual_seed(5)
    sinr_db = np.arange(-5.0, 25.1, 2.5)
    phy = PHYAbstraction()
    olla = OuterLoopLinkAdaptation(phy, num_ut=sinr_db.size, bler_target=0.1)
    allocated = torch.full((sinr_db.size,), n_prb * (12 * 14 - 12), dtype=torch.int32)
    sinr = torch.tensor(10 ** (sinr_db / 10), dtype=torch.float32)
    feedback = torch.full((sinr_db.size,), -1, dtype=torch.int32)
    delivered, warm_up, slots = np.zeros(sinr_db.size), 300, 3000
    for slot in range(warm_up + slots):
        chosen = olla(allocated, harq_feedback=feedback, sinr_eff=sinr, mcs_table_index=1, mcs_category=0)
        bits, feedback, *_ = phy(chosen, sinr_eff=sinr, num_allocated_re=allocated, mcs_table_index=1,
                                 mcs_category=0, check_mcs_index_validity=False)
        if slot >= warm_up:
            delivered += bits.numpy()
    sionna = delivered / slots / (n_prb * 180)
    ours = NrUplink(30, n_prb, UplinkSlots("FDD", 0)).curve(sinr_db)["goodput_fdd_bps_per_hz"]
    covered = sinr_db >= -2.5
    assert np.all(ours[~covered] == 0) and np.all(sionna[~covered] < 0.02 * sionna.max())
    assert np.allclose(ours[covered], sionna[covered], rtol=0.02), np.round(ours / np.maximum(sionna, 1e-9), 4)


def test_bler_is_one_where_the_tables_hold_no_mcs():
    assert bler(np.array([0, 1, 2]), "qam64", np.array([2000.0]), np.array([10.0])).tolist() == [1.0, 1.0, 1.0]


def test_the_link_command_writes_its_curve_and_ts_38_306s_peak_rate(tmp_path, cli):
    path = tmp_path / "nr.yaml"
    path.write_text(yaml.safe_dump({"name": "n78", "radio": {"uplink_main_bandwidth_hz": 100e6,
                                                              "subcarrier_spacing_khz": 30,
                                                              "nr": {"tdd_pattern": "DDDDDDDSUU"}}}))
    code, out, err = cli("link", path, "--out", tmp_path / "out")
    assert code == 0, err
    table = pd.read_csv(tmp_path / "out" / "link.csv")
    assert {"sinr_db", "goodput_bps_per_hz", "shannon_bps_per_hz", "mcs_index", "bler"} <= set(table.columns)
    assert table["sinr_db"].min() == -10 and table["sinr_db"].max() == 30
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["n_prb"] == 273
    # TS 38.306 §4.1.2: 1 layer x 6 bits x 948/1024 x 12 x 273 / (1 ms / 28) x (1 - 0.08)
    assert summary["peak_rate_bps"] == pytest.approx(6 * 948 / 1024 * 12 * 273 * 28e3 * 0.92)
    assert summary["uplink_symbol_share"] == pytest.approx((2 * 14 + 2) / 140)
    for name in ("link.png", "report.md", "scenario.resolved.yaml"):
        assert (tmp_path / "out" / name).exists()


@pytest.mark.parametrize("radio, field", [
    ({"subcarrier_spacing_khz": None}, "radio.subcarrier_spacing_khz"),
    ({"subcarrier_spacing_khz": 15, "uplink_main_bandwidth_hz": 100e6}, "radio.uplink_main_bandwidth_hz"),
    ({"subcarrier_spacing_khz": 30, "nr": {"special_slot_symbols": [10, 2, 3]}}, "radio.nr"),
    ({"subcarrier_spacing_khz": 30, "nr": {"tdd_pattern": "DDDD"}}, "radio.nr"),
])
def test_what_the_link_cannot_compute_is_one_line_and_exit_2(tmp_path, cli, radio, field):
    path = tmp_path / "nr.yaml"
    path.write_text(yaml.safe_dump({"name": "bad", "radio": radio}))
    code, _, err = cli("link", path, "--out", tmp_path / "out")
    assert code == 2 and field in err and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()


def test_an_nr_field_is_flagged_where_nothing_reads_it(tmp_path, cli):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"name": "s", "radio": {"nr": {"tdd_pattern": "DDDSU", "mcs_table": "qam256"}}}))
    code, _, err = cli("validate", path)
    assert code == 0 and "radio.nr.mcs_table" in err and "only `splitsim link` reads it" in err


def test_the_docs_table_is_what_the_example_gives(tmp_path, cli):
    from helpers import REPO

    code, _, err = cli("link", REPO / "examples" / "nr_uplink" / "n78.yaml", "--out", tmp_path / "out")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    page = (REPO / "docs" / "nr-link.md").read_text()
    block = page.split("<!-- nr-link-table -->")[1].split("<!-- /nr-link-table -->")[0]
    rows = [line.strip("| ").split(" | ") for line in block.strip().splitlines()[2:]]
    for sinr, mcs_index, fdd, tdd in rows:
        at = summary["at_sinr_db"][sinr]
        assert int(mcs_index) == at["mcs_index"]
        assert float(fdd) == round(at["goodput_fdd_over_shannon"], 3)
        assert float(tdd) == round(at["goodput_over_shannon"], 3)
    assert f"{summary['peak_rate_bps'] / 1e6:.1f} Mbit/s" in page
    assert f"{summary['peak_rate_with_tdd_share_bps'] / 1e6:.1f} Mbit/s" in page
    assert f"{100 * summary['uplink_symbol_share']:.1f} %" in page


def test_python_and_the_command_give_the_same_curve(tmp_path, cli):
    """One door: splitsim.link_curve is what `splitsim link` writes to link.csv."""
    import splitsim
    from helpers import REPO

    example = REPO / "examples" / "nr_uplink" / "n78.yaml"
    code, _, err = cli("link", example, "--out", tmp_path / "out")
    assert code == 0, err
    written = pd.read_csv(tmp_path / "out" / "link.csv")
    pd.testing.assert_frame_equal(splitsim.link_curve(example).reset_index(drop=True), written, check_dtype=False,
                                  rtol=1e-12)
    with pytest.raises(splitsim.ScenarioError, match="radio.subcarrier_spacing_khz"):
        splitsim.link_curve(splitsim.parse_scenario({"name": "x"}))

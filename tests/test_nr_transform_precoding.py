"""Transform precoding on the NR uplink (radio.nr.transform_precoding: DFT-s-OFDM): TS 38.214 §6.1.4.1's
MCS tables against Sionna's, the TBS against Sionna's procedure, the BLER of a code word against
Sionna's table row of the same (Q_m, R), TS 38.211 §6.3.1.4's PRB counts against the published list of
5-smooth numbers, and the rate a user gets on PRBs no DFT-s-OFDM PUSCH can fill."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

pytest.importorskip("sionna.sys", reason="sionna-no-rt (the nr extra) is not installed")

from splitsim.scenarios.nr_link import NrRate, NrUplink, UplinkSlots, bler  # noqa: E402
from splitsim.scenarios.nr_tbs import (MCS_TABLES, dft_sizes_up_to, mcs, pusch_mcs_table,  # noqa: E402
                                       transport_block_bits)

# The 5-smooth ("Hamming") numbers up to 100: OEIS A051037.
HAMMING_TO_100 = [1, 2, 3, 4, 5, 6, 8, 9, 10, 12, 15, 16, 18, 20, 24, 25, 27, 30, 32, 36, 40, 45, 48, 50, 54, 60, 64,
                  72, 75, 80, 81, 90, 96, 100]


def test_the_transform_precoding_tables_equal_sionnas():
    """§6.1.4.1: Table 6.1.4.1-1 for qam64 (tp-pi2BPSK off), Table 5.1.3.1-2 for qam256."""
    import torch
    from sionna.phy.nr.utils import decode_mcs_index

    assert pusch_mcs_table("qam64", True) == "qam64_tp" and pusch_mcs_table("qam256", True) == "qam256"
    assert pusch_mcs_table("qam64", False) == "qam64"
    for name, table_index, tp in (("qam64_tp", 1, True), ("qam256", 2, False)):
        count = len(MCS_TABLES[name])
        q_m, rate = decode_mcs_index(torch.arange(count), table_index=table_index, is_pusch=True,
                                     transform_precoding=tp, pi2bpsk=False)
        mine = np.array([mcs(i, name) for i in range(count)])
        np.testing.assert_array_equal(q_m.numpy(), mine[:, 0])
        np.testing.assert_allclose(rate.numpy(), mine[:, 1], atol=1e-6)


def test_the_tbs_with_transform_precoding_equals_sionnas():
    import itertools

    import torch
    from sionna.phy.nr.utils import calculate_tb_size, decode_mcs_index

    count = len(MCS_TABLES["qam64_tp"])
    index, prbs, symbols = torch.meshgrid(torch.arange(count), torch.tensor(HAMMING_TO_100), torch.arange(4, 15),
                                          indexing="ij")
    q_m, rate = decode_mcs_index(index, table_index=1, is_pusch=True, transform_precoding=True, pi2bpsk=False)
    theirs = calculate_tb_size(q_m, rate, num_prbs=prbs, num_ofdm_symbols=symbols, num_dmrs_per_prb=12,
                               return_cw_length=False)[0].numpy()
    mine = np.array([transport_block_bits(i, p, s, "qam64_tp") for i, p, s in
                     itertools.product(range(count), HAMMING_TO_100, range(4, 15))]).reshape(theirs.shape)
    np.testing.assert_array_equal(mine, theirs)


def test_a_code_words_bler_is_sionnas_row_of_the_same_modulation_and_rate():
    """Sionna holds BLER tables for Tables 5.1.3.1-1/-2 only; a Table 6.1.4.1-1 code word is read from
    the Table 5.1.3.1-1 row with the same (Q_m, R), found here by searching that table."""
    import torch
    from sionna.sys import PHYAbstraction

    phy = PHYAbstraction()
    qam64 = MCS_TABLES["qam64"]
    sinr_db = np.array([-2.0, 5.0, 11.0, 17.0])
    for i, row in enumerate(MCS_TABLES["qam64_tp"]):
        j = qam64.index(row)
        theirs = phy.get_bler(torch.full((4,), j, dtype=torch.int32), torch.ones(4, dtype=torch.int32),
                              torch.zeros(4, dtype=torch.int32), torch.full((4,), 4000, dtype=torch.int32),
                              torch.as_tensor(10 ** (sinr_db / 10), dtype=torch.float32)).double().numpy()
        mine = bler(np.full(4, i), "qam64_tp", np.full(4, 4000), sinr_db)
        np.testing.assert_allclose(mine, np.clip(np.nan_to_num(theirs, nan=1.0), 0, 1), rtol=1e-6, atol=1e-12)


def test_the_prb_counts_a_dft_s_ofdm_pusch_may_use_are_the_5_smooth_numbers():
    assert np.flatnonzero(dft_sizes_up_to(100)).tolist() == HAMMING_TO_100


@pytest.mark.parametrize("adaptation", ["inner_loop", "outer_loop"])
def test_a_user_sends_on_the_most_prbs_a_dft_may_use(adaptation):
    """With transform precoding a user on n PRBs gets the rate of the largest 5-smooth m <= n (7 -> 6,
    11 -> 10, 51 -> 50; 48 -> 48). Its table is Table 5.1.3.1-1 without MCS 17, (6, 438), whose
    spectral efficiency (2.566) is below MCS 16's (4, 658: 2.570): where link adaptation would send
    MCS 17 the plain carrier sends a little less than one without it, so the precoded carrier may
    deliver a little more there (up to 1.5 % at 32 PRBs, 10 dB), never more than 2 %."""
    slots = UplinkSlots("DDDSU", 2)
    tp = NrRate(NrUplink(30, 0, slots, mcs_table="qam64_tp", transform_precoding=True,
                         link_adaptation=adaptation), 360e3)
    plain = NrRate(NrUplink(30, 0, slots, link_adaptation=adaptation), 360e3)
    c = 360e3 * 10 ** (np.array([-3.0, 4.0, 12.0, 25.0]) / 10)  # one PRB's SINR with all the power
    for n, m in ((7, 6), (11, 10), (51, 50), (48, 48), (13, 12)):
        assert np.array_equal(tp.rate_bps(n * 360e3, c), tp.rate_bps(m * 360e3, c)), n
    slack = 0.02
    for n in range(1, 60):
        assert np.all(tp.rate_bps(n * 360e3, c) <= plain.rate_bps(n * 360e3, c) * (1 + slack)), n
    # a user with power to spare loses the seventh PRB (at 12 and 25 dB: 7 % and more); one without
    # concentrates its power on fewer PRBs anyway and loses nothing (at -3 and 4 dB)
    assert np.all(tp.rate_bps(7 * 360e3, c)[2:] < 0.95 * plain.rate_bps(7 * 360e3, c)[2:])


def test_a_scenario_with_transform_precoding_runs_and_only_costs_goodput(tmp_path, cli):
    """`splitsim link` of a carrier with transform precoding: on 51 PRBs (30 kHz, 20 MHz) it sends on 50,
    so its goodput per Hz is 50/51 of the plain carrier's (within 2.5 % at every SINR where both carry,
    0.5 % in the median)."""
    import pandas as pd

    curves = {}
    for tp in (False, True):
        data = {"name": "tp", "radio": {"link_model": "nr", "subcarrier_spacing_khz": 30,
                                        "nr": {"transform_precoding": tp}}, "study": {"kind": "simulate"}}
        path = tmp_path / f"tp{tp}.yaml"
        path.write_text(yaml.safe_dump(data))
        code, _, err = cli("link", path, "--out", tmp_path / f"out{tp}")
        assert code == 0, err
        curves[tp] = pd.read_csv(tmp_path / f"out{tp}" / "link.csv")
    plain, tp = curves[False]["goodput_bps_per_hz"].to_numpy(), curves[True]["goodput_bps_per_hz"].to_numpy()
    both = plain > 0.05
    assert both.sum() > 100
    ratio = tp[both] / plain[both]
    np.testing.assert_allclose(ratio, 50 / 51, rtol=0.025)  # the TBS's steps and MCS 17's absence move it
    assert np.median(ratio) == pytest.approx(50 / 51, rel=0.005)

"""NR transport block sizes and peak rates against references nobody here wrote: Sionna's
implementation of TS 38.214 (sionna.phy.nr.utils) and the peak rates TS 38.306 gives."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import splitsim
from splitsim.scenarios.nr_tbs import MCS_TABLES, mcs, peak_rate_bps, transport_block_bits


@pytest.fixture(scope="module")
def sionna_nr():
    torch = pytest.importorskip("torch")
    utils = pytest.importorskip("sionna.phy.nr.utils", reason="sionna-no-rt (the dev extra) is not installed")
    return torch, utils


@pytest.mark.parametrize("table_index, name", [(1, "qam64"), (2, "qam256")])
def test_mcs_tables_equal_sionnas(sionna_nr, table_index, name):
    torch, utils = sionna_nr
    count = len(MCS_TABLES[name])
    q_m, rate = utils.decode_mcs_index(torch.arange(count), table_index=table_index, is_pusch=True,
                                       transform_precoding=False)
    mine = np.array([mcs(i, name) for i in range(count)])
    np.testing.assert_array_equal(q_m.numpy(), mine[:, 0])
    np.testing.assert_allclose(rate.numpy(), mine[:, 1], atol=1e-6)


@pytest.mark.parametrize("table_index, name", [(1, "qam64"), (2, "qam256")])
def test_tbs_equals_sionnas_for_every_mcs_prb_count_and_symbol_count(sionna_nr, table_index, name):
    """Every MCS x n_PRB 1..273 x 4..14 symbols (both branches of §5.1.3.2, segmentation included)."""
    torch, utils = sionna_nr
    count = len(MCS_TABLES[name])
    index, prbs, symbols = torch.meshgrid(torch.arange(count), torch.arange(1, 274), torch.arange(4, 15),
                                          indexing="ij")
    q_m, rate = utils.decode_mcs_index(index, table_index=table_index, is_pusch=True, transform_precoding=False)
    theirs = utils.calculate_tb_size(q_m, rate, num_prbs=prbs, num_ofdm_symbols=symbols, num_dmrs_per_prb=12,
                                     return_cw_length=False)[0].numpy()
    mine = np.array([transport_block_bits(i, p, s, name) for i, p, s in
                     itertools.product(range(count), range(1, 274), range(4, 15))]).reshape(theirs.shape)
    np.testing.assert_array_equal(mine, theirs)
    assert mine.max() > 8424 and mine.min() <= 3824  # both branches and segmented blocks were reached


def test_tbs_with_overhead_and_layers_equals_sionnas(sionna_nr):
    torch, utils = sionna_nr
    for i, prb, sym, dmrs, ov, layers in [(27, 273, 14, 18, 6, 2), (5, 10, 7, 6, 0, 4), (0, 1, 4, 12, 0, 1),
                                          (20, 100, 12, 24, 12, 3)]:
        q_m, rate = mcs(i, "qam256")
        theirs = utils.calculate_tb_size(torch.tensor(q_m), torch.tensor(rate), num_prbs=torch.tensor(prb),
                                         num_ofdm_symbols=torch.tensor(sym), num_dmrs_per_prb=torch.tensor(dmrs),
                                         num_layers=torch.tensor(layers), num_ov=torch.tensor(ov),
                                         return_cw_length=False)[0]
        assert transport_block_bits(i, prb, sym, "qam256", dmrs, ov, layers) == int(theirs)


def test_the_public_function_and_its_bad_input():
    assert splitsim.transport_block_bits(28, 273, 14) == transport_block_bits(28, 273, 14, "qam64", 12, 0, 1)
    for kwargs, words in [({"mcs_index": 29}, "mcs_index"), ({"n_prb": 0}, "n_prb"), ({"n_symbols": 15}, "n_symbols"),
                          ({"mcs_table": "qam1024"}, "mcs_table")]:
        with pytest.raises(ValueError, match=words):
            splitsim.transport_block_bits(**{"mcs_index": 10, "n_prb": 10, "n_symbols": 14, **kwargs})


def test_peak_rates_are_ts_38_306s():
    # TS 38.306 §4.1.2 for 100 MHz at 30 kHz (273 PRBs): the widely quoted 2.34 Gbit/s downlink with 4
    # layers of 256QAM, and 1 layer of 64QAM on the uplink (OH 0.08)
    assert peak_rate_bps(273, 30, "qam256", layers=4, direction="downlink") / 1e9 == pytest.approx(2.337, abs=1e-3)
    assert peak_rate_bps(273, 30, "qam64", layers=1) == pytest.approx(6 * 948 / 1024 * 12 * 273 * 28e3 * 0.92)
    # 20 MHz at 15 kHz (106 PRBs), one layer of 64QAM uplink
    assert peak_rate_bps(106, 15, "qam64") / 1e6 == pytest.approx(6 * 948 / 1024 * 12 * 106 * 14e3 * 0.92 / 1e6)

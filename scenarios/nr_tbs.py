"""5G NR PUSCH modulation and coding, transport block size and peak rate (one source).

- MCS index tables for PUSCH without transform precoding: TS 38.214 §6.1.4.1 uses the PDSCH tables
  5.1.3.1-1 ("qam64": up to 64QAM) and 5.1.3.1-2 ("qam256"); each row is (modulation order Q_m,
  target code rate R x 1024). Indices 29-31 (qam64) and 28-31 (qam256) are reserved for
  retransmissions and are not offered. With transform precoding (DFT-s-OFDM), §6.1.4.1 uses Table
  6.1.4.1-1 ("qam64_tp", tp-pi2BPSK off: Q_m = 2 at indices 0 and 1; indices 28-31 reserved) for a
  64QAM table, and Table 5.1.3.1-2 itself for qam256 (`pusch_mcs_table`).
- Transport block size: TS 38.214 §5.1.3.2 (used for PUSCH by §6.1.4.2), both branches: the
  quantised N_info <= 3824 looked up in Table 5.1.3.2-1, and the larger ones with code-block
  segmentation (8424-bit LDPC base graph 1 blocks, or 3816-bit base graph 2 blocks at R <= 1/4).
- Peak rate: TS 38.306 §4.1.2, the approximate maximum data rate of a carrier.

Held against Sionna's implementation (sionna.phy.nr.utils) in tests/test_nr_tbs.py.
"""

from __future__ import annotations

import math

import numpy as np

# TS 38.214 Table 5.1.3.1-1: I_MCS -> (Q_m, R x 1024), 64QAM table
MCS_QAM64: tuple[tuple[int, float], ...] = (
    (2, 120), (2, 157), (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526), (2, 602), (2, 679),
    (4, 340), (4, 378), (4, 434), (4, 490), (4, 553), (4, 616), (4, 658),
    (6, 438), (6, 466), (6, 517), (6, 567), (6, 616), (6, 666), (6, 719), (6, 772), (6, 822), (6, 873), (6, 910),
    (6, 948),
)
# TS 38.214 Table 5.1.3.1-2: I_MCS -> (Q_m, R x 1024), 256QAM table
MCS_QAM256: tuple[tuple[int, float], ...] = (
    (2, 120), (2, 193), (2, 308), (2, 449), (2, 602),
    (4, 378), (4, 434), (4, 490), (4, 553), (4, 616), (4, 658),
    (6, 466), (6, 517), (6, 567), (6, 616), (6, 666), (6, 719), (6, 772), (6, 822), (6, 873),
    (8, 682.5), (8, 711), (8, 754), (8, 797), (8, 841), (8, 885), (8, 916.5), (8, 948),
)
# TS 38.214 Table 6.1.4.1-1: I_MCS -> (Q_m, R x 1024), PUSCH with transform precoding and 64QAM, with
# tp-pi2BPSK off (q = 2 at indices 0 and 1; with it on, pi/2-BPSK at R·2 gives the same spectral
# efficiency). Table 5.1.3.1-1 without its (6, 438) row.
MCS_QAM64_TP: tuple[tuple[int, float], ...] = (
    (2, 120), (2, 157), (2, 193), (2, 251), (2, 308), (2, 379), (2, 449), (2, 526), (2, 602), (2, 679),
    (4, 340), (4, 378), (4, 434), (4, 490), (4, 553), (4, 616), (4, 658),
    (6, 466), (6, 517), (6, 567), (6, 616), (6, 666), (6, 719), (6, 772), (6, 822), (6, 873), (6, 910), (6, 948),
)
MCS_TABLES = {"qam64": MCS_QAM64, "qam256": MCS_QAM256, "qam64_tp": MCS_QAM64_TP}


def pusch_mcs_table(mcs_table: str, transform_precoding: bool) -> str:
    """The MCS table a PUSCH uses (TS 38.214 §6.1.4.1): mcs-Table's without transform precoding; with
    it, mcs-TableTransformPrecoder's: Table 6.1.4.1-1 for qam64, Table 5.1.3.1-2 for qam256."""
    if transform_precoding and mcs_table == "qam64":
        return "qam64_tp"
    return mcs_table


def dft_sizes_up_to(n_prb: int) -> np.ndarray:
    """(n_prb + 1,) bool: whether m PRBs (m = 0 ... n_prb) can carry a DFT-s-OFDM PUSCH — TS 38.211
    §6.3.1.4: M_RB = 2^a2 · 3^a3 · 5^a5 (m = 0, no PRB, is False)."""
    ok = np.zeros(n_prb + 1, dtype=bool)
    for m in range(1, n_prb + 1):
        rest = m
        for p in (2, 3, 5):
            while rest % p == 0:
                rest //= p
        ok[m] = rest == 1
    return ok

# TS 38.214 Table 5.1.3.2-1: TBS for N_info <= 3824
TBS_TABLE: tuple[int, ...] = (
    24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 112, 120, 128, 136, 144, 152, 160, 168, 176, 184, 192, 208, 224,
    240, 256, 272, 288, 304, 320, 336, 352, 368, 384, 408, 432, 456, 480, 504, 528, 552, 576, 608, 640, 672, 704,
    736, 768, 808, 848, 888, 928, 984, 1032, 1064, 1128, 1160, 1192, 1224, 1256, 1288, 1320, 1352, 1416, 1480,
    1544, 1608, 1672, 1736, 1800, 1864, 1928, 2024, 2088, 2152, 2216, 2280, 2408, 2472, 2536, 2600, 2664, 2728,
    2792, 2856, 2976, 3104, 3240, 3368, 3496, 3624, 3752, 3824,
)
RE_PER_PRB_CAP = 156  # TS 38.214 §5.1.3.2: at most 156 REs of a PRB count
SUBCARRIERS_PER_PRB = 12
SYMBOLS_PER_SLOT = 14
# TS 38.306 §4.1.2: overhead OH(j) for FR1: 0.14 downlink, 0.08 uplink; R_max = 948/1024
PEAK_OVERHEAD = {"uplink": 0.08, "downlink": 0.14}
R_MAX = 948 / 1024


def mcs(mcs_index: int, mcs_table: str = "qam64") -> tuple[int, float]:
    """(modulation order Q_m, target code rate R) of an MCS index."""
    table = MCS_TABLES.get(mcs_table)
    if table is None:
        raise ValueError(f"mcs_table must be one of {sorted(MCS_TABLES)}, got {mcs_table!r}")
    if not 0 <= int(mcs_index) < len(table):
        raise ValueError(f"mcs_index must be 0..{len(table) - 1} for table {mcs_table}, got {mcs_index}")
    q_m, r1024 = table[int(mcs_index)]
    return q_m, r1024 / 1024


def _round_half_up(x: float) -> int:
    return int(math.floor(x + 0.5))


def tbs_from_info_bits(n_info: float, code_rate: float) -> int:
    """TS 38.214 §5.1.3.2 steps 3-4: the TBS for N_info information bits at code rate R."""
    if n_info <= 0:
        return 0
    if n_info <= 3824:
        n = max(3, math.floor(math.log2(n_info)) - 6)
        n_info_q = max(24, 2**n * math.floor(n_info / 2**n))
        for tbs in TBS_TABLE:
            if tbs >= n_info_q:
                return tbs
        raise AssertionError("unreachable: N'_info <= 3824")  # pragma: no cover
    n = math.floor(math.log2(n_info - 24)) - 5
    n_info_q = max(3840, 2**n * _round_half_up((n_info - 24) / 2**n))
    if code_rate <= 1 / 4:
        c = math.ceil((n_info_q + 24) / 3816)
        return 8 * c * math.ceil((n_info_q + 24) / (8 * c)) - 24
    if n_info_q > 8424:
        c = math.ceil((n_info_q + 24) / 8424)
        return 8 * c * math.ceil((n_info_q + 24) / (8 * c)) - 24
    return 8 * math.ceil((n_info_q + 24) / 8) - 24


def transport_block_bits(mcs_index: int, n_prb: int, n_symbols: int = SYMBOLS_PER_SLOT, mcs_table: str = "qam64",
                         dmrs_re_per_prb: int = 12, overhead_re_per_prb: int = 0, layers: int = 1) -> int:
    """The transport block size (bits) of one slot's PUSCH: `n_prb` PRBs over `n_symbols` OFDM
    symbols, `dmrs_re_per_prb` DMRS resource elements and `overhead_re_per_prb` others per PRB
    (TS 38.214 §5.1.3.2: N'_RE = 12 N_symb - N_DMRS - N_oh, capped at 156, times n_PRB)."""
    if not 1 <= int(n_prb) <= 275:
        raise ValueError(f"n_prb must be 1..275, got {n_prb}")
    if not 1 <= int(n_symbols) <= SYMBOLS_PER_SLOT:
        raise ValueError(f"n_symbols must be 1..14, got {n_symbols}")
    if not 1 <= int(layers) <= 4:
        raise ValueError(f"layers must be 1..4, got {layers}")
    q_m, rate = mcs(mcs_index, mcs_table)
    re_per_prb = SUBCARRIERS_PER_PRB * int(n_symbols) - int(dmrs_re_per_prb) - int(overhead_re_per_prb)
    if re_per_prb <= 0:
        return 0
    n_re = min(RE_PER_PRB_CAP, re_per_prb) * int(n_prb)
    return tbs_from_info_bits(n_re * rate * q_m * int(layers), rate)


def peak_rate_bps(n_prb: int, scs_khz: int, mcs_table: str = "qam64", layers: int = 1, direction: str = "uplink",
                  scaling_factor: float = 1.0) -> float:
    """TS 38.306 §4.1.2's approximate maximum data rate of one carrier (bit/s), before any TDD
    share: layers · Q_m · f · R_max · 12 N_PRB / T_s · (1 − OH), T_s = 1e-3 / (14 · 2^μ)."""
    q_max = max(q for q, _ in MCS_TABLES[mcs_table])
    mu = int(round(math.log2(scs_khz / 15)))
    symbol_s = 1e-3 / (SYMBOLS_PER_SLOT * 2**mu)
    return layers * q_max * scaling_factor * R_MAX * SUBCARRIERS_PER_PRB * n_prb / symbol_s * (
        1 - PEAK_OVERHEAD[direction])


def spectral_efficiencies(mcs_table: str = "qam64") -> np.ndarray:
    """Q_m · R of every MCS of a table (bit per resource element), ascending."""
    return np.array([q * r / 1024 for q, r in MCS_TABLES[mcs_table]])

"""The 5G NR uplink as deployed: what a user's PRBs deliver at a given SINR, against Shannon.

One slot of PUSCH on n_PRB PRBs carries a transport block of TBS(MCS, n_PRB, symbols) bits
(TS 38.214 §5.1.3.2: splitsim.scenarios.nr_tbs). Link adaptation picks the highest MCS whose block
error rate at the SINR is at most the target (the inner loop; an outer loop that corrects the SINR
estimate from ACK/NACK converges to the same choice when the SINR is known, as here, on a flat
channel). The BLER is Sionna's PHY abstraction of the 5G LDPC code (sionna.sys.PHYAbstraction:
its PUSCH tables, interpolated in SINR and code-block size). A failed block costs its slot and is
sent again (HARQ without soft combining): each transmission delivers TBS with probability 1 − BLER,
so the goodput is TBS·(1 − BLER) per slot, and a block is lost for good with probability
BLER^harq_max_transmissions (reported). Only uplink symbols carry: the TDD pattern's U slots
(14 symbols) and the special slots' uplink symbols.

Goodput per Hz over a pattern of L slots = Σ_slots TBS·(1 − BLER) / (n_PRB · 12 · Δf · T_slot · L),
and 12 · Δf · T_slot = 180 for every numerology (12 sub-carriers of 15·2^μ kHz over 1/2^μ ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from splitsim.scenarios.nr_tbs import MCS_TABLES, SYMBOLS_PER_SLOT, mcs, transport_block_bits

RE_SECONDS_PER_PRB_SLOT = 180.0  # 12 sub-carriers x (15·2^μ kHz) x (1 / 2^μ ms): Hz·s of one PRB-slot
MCS_TABLE_INDEX = {"qam64": 1, "qam256": 2}  # TS 38.214 Tables 5.1.3.1-1 and -2 (Sionna's table_index)
PUSCH_CATEGORY = 0  # Sionna's MCS category for PUSCH


@dataclass(frozen=True)
class UplinkSlots:
    """The uplink's share of a TDD pattern: full uplink slots and special slots' uplink symbols."""

    pattern: str  # "DDDSU", "DDDDDDDSUU", or "FDD"
    special_uplink_symbols: int  # uplink symbols of a special slot

    @property
    def slots(self) -> int:
        return 1 if self.pattern == "FDD" else len(self.pattern)

    @property
    def uplink_slots(self) -> int:
        return 1 if self.pattern == "FDD" else self.pattern.count("U")

    @property
    def special_slots(self) -> int:
        return 0 if self.pattern == "FDD" else self.pattern.count("S")

    @property
    def uplink_symbol_share(self) -> float:
        """Share of all symbols that are uplink (FDD: 1)."""
        uplink = self.uplink_slots * SYMBOLS_PER_SLOT + self.special_slots * self.special_uplink_symbols
        return uplink / (self.slots * SYMBOLS_PER_SLOT)


@lru_cache(maxsize=1)
def _phy_abstraction():
    """Sionna's PHY abstraction with its PUSCH BLER tables (built once: a few seconds)."""
    try:
        from sionna.sys import PHYAbstraction
    except ImportError as err:  # pragma: no cover - the dependency check in `validate` says so first
        raise RuntimeError("the NR link model needs sionna-no-rt (pip install 'splitsim[nr]')") from err
    return PHYAbstraction()


def code_block_bits(tbs_bits: np.ndarray, code_rate: np.ndarray) -> np.ndarray:
    """Code-block size (bits, CRCs included) of transport blocks (see `segmentation`)."""
    return segmentation(tbs_bits, code_rate)[0]


def segmentation(tbs_bits: np.ndarray, code_rate: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code-block size in bits with CRCs, number of code blocks) of transport blocks: TS 38.212
    §5.2.2 segmentation, with the LDPC base graph of §7.2.2 (graph 2 for TBS <= 292, or <= 3824 at
    R <= 0.67, or R <= 0.25)."""
    tbs = np.asarray(tbs_bits, dtype=float)
    rate = np.asarray(code_rate, dtype=float)
    crc = np.where(tbs > 3824, 24, 16)
    b = tbs + crc
    graph2 = (tbs <= 292) | ((tbs <= 3824) & (rate <= 0.67)) | (rate <= 0.25)
    k_cb = np.where(graph2, 3840, 8448)
    blocks = np.where(b <= k_cb, 1, np.ceil(b / (k_cb - 24)))
    b_prime = np.where(blocks > 1, b + blocks * 24, b)
    return np.ceil(b_prime / blocks), blocks


def bler(mcs_index: np.ndarray, mcs_table: str, cb_bits: np.ndarray, sinr_db: np.ndarray,
         blocks: np.ndarray | int = 1) -> np.ndarray:
    """Block error rate of a transport block of `blocks` code blocks of `cb_bits` at the SINR (AWGN,
    flat): Sionna's tables for one code block, 1 − (1 − BLER_cb)^C for the C blocks that must all
    decode. MCS that the tables do not hold give 1 (never chosen)."""
    import torch

    shape = np.broadcast(mcs_index, cb_bits, sinr_db).shape
    m = torch.as_tensor(np.broadcast_to(mcs_index, shape).astype(np.int32))
    cbs = torch.as_tensor(np.broadcast_to(np.minimum(cb_bits, 8448), shape).astype(np.int32))
    snr = torch.as_tensor(10 ** (np.broadcast_to(sinr_db, shape) / 10), dtype=torch.float32)
    table = torch.full(shape, MCS_TABLE_INDEX[mcs_table], dtype=torch.int32)
    category = torch.full(shape, PUSCH_CATEGORY, dtype=torch.int32)
    out = _phy_abstraction().get_bler(m, table, category, cbs, snr).double().numpy()
    per_block = np.where(np.isfinite(out), np.clip(out, 0.0, 1.0), 1.0)
    return 1 - (1 - per_block) ** np.broadcast_to(blocks, shape)


@dataclass(frozen=True)
class NrUplink:
    """An NR uplink carrier: numerology, PRBs, TDD pattern, MCS table and link adaptation."""

    scs_khz: int
    n_prb: int
    slots: UplinkSlots
    mcs_table: str = "qam64"
    dmrs_re_per_prb: int = 12
    overhead_re_per_prb: int = 0
    layers: int = 1
    bler_target: float = 0.1
    harq_max_transmissions: int = 4

    def _slot_kinds(self) -> list[tuple[int, int]]:
        """(symbols, how many per pattern) of the slots that carry uplink data."""
        kinds = [(SYMBOLS_PER_SLOT, self.slots.uplink_slots)]
        if self.slots.special_slots and self.slots.special_uplink_symbols > 0:
            kinds.append((self.slots.special_uplink_symbols, self.slots.special_slots))
        return kinds

    def curve(self, sinr_db: np.ndarray) -> dict[str, np.ndarray]:
        """Per SINR (dB): the MCS link adaptation chooses for a full uplink slot, its spectral
        efficiency, BLER and residual BLER after HARQ, the goodput per Hz over the TDD pattern
        (`goodput_bps_per_hz`), the same with every slot uplink (`goodput_fdd_bps_per_hz`), and
        Shannon's log2(1 + SINR) beside them."""
        sinr_db = np.asarray(sinr_db, dtype=float)
        count = len(MCS_TABLES[self.mcs_table])
        indices = np.arange(count)
        rates = np.array([mcs(i, self.mcs_table)[1] for i in indices])
        goodput_bits = np.zeros(sinr_db.shape)  # per pattern, on n_prb PRBs
        fdd_bits = np.zeros(sinr_db.shape)
        chosen = np.full(sinr_db.shape, -1)
        chosen_bler = np.ones(sinr_db.shape)
        for symbols, per_pattern in self._slot_kinds():
            tbs = np.array([transport_block_bits(i, self.n_prb, symbols, self.mcs_table, self.dmrs_re_per_prb,
                                                 self.overhead_re_per_prb, self.layers) for i in indices], float)
            cb_bits, blocks = segmentation(tbs, rates)
            errors = bler(indices[:, None], self.mcs_table, cb_bits[:, None], sinr_db[None, :], blocks[:, None])
            ok = (errors <= self.bler_target) & (tbs[:, None] > 0)
            best = np.where(ok.any(axis=0), count - 1 - np.argmax(ok[::-1], axis=0), -1)
            delivered = np.where(best >= 0, tbs[best] * (1 - errors[best, np.arange(len(sinr_db))]), 0.0)
            goodput_bits += per_pattern * delivered
            if symbols == SYMBOLS_PER_SLOT:
                fdd_bits = delivered * self.slots.slots
                chosen, chosen_bler = best, np.where(best >= 0, errors[best, np.arange(len(sinr_db))], 1.0)
        denominator = self.n_prb * RE_SECONDS_PER_PRB_SLOT * self.slots.slots
        spectral = np.array([q * r * self.layers for q, r in (mcs(i, self.mcs_table) for i in indices)])
        return {
            "sinr_db": sinr_db,
            "mcs_index": chosen,
            "spectral_efficiency": np.where(chosen >= 0, spectral[chosen], 0.0),
            "bler": np.where(chosen >= 0, chosen_bler, np.nan),
            "residual_bler": np.where(chosen >= 0, chosen_bler ** self.harq_max_transmissions, np.nan),
            "goodput_bps_per_hz": goodput_bits / denominator,
            "goodput_fdd_bps_per_hz": fdd_bits / denominator,
            "shannon_bps_per_hz": np.log2(1 + 10 ** (sinr_db / 10)),
        }

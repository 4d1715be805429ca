"""An NR transfer slot by slot: the check on the expected goodput the engines use (netsim.nr_link).

Each slot of the TDD pattern that carries in the link's direction sends one transport block of
TBS(MCS, n_PRB, symbols) bits at the MCS link adaptation chose for the SINR (NrUplink.curve's
choice, per kind of slot); it is decoded with probability 1 − BLER (drawn), and a block that fails
is sent again in the next carrying slot (HARQ; after `harq_max_transmissions` failures RLC resends
it, which costs the same). The transfer ends in the slot that completes its bits. Its mean time over
many draws is bits over NrUplink's goodput, which is what NrRate gives the engines.
"""

from __future__ import annotations

import numpy as np

from splitsim.scenarios.nr_tbs import MCS_TABLES, SYMBOLS_PER_SLOT, mcs, transport_block_bits

from splitsim.scenarios.nr_link import PDSCH_CATEGORY, PUSCH_CATEGORY, NrUplink, bler, segmentation


def slot_schedule(link: NrUplink) -> list[int]:
    """Data symbols of each slot of one TDD period in the link's direction (0: the slot does not carry)."""
    slots = link.slots
    if slots.pattern == "FDD":
        return [SYMBOLS_PER_SLOT]
    special = slots.special_downlink_symbols if link.downlink else slots.special_uplink_symbols
    full = "D" if link.downlink else "U"
    return [SYMBOLS_PER_SLOT if kind == full else special if kind == "S" else 0 for kind in slots.pattern]


def _block(link: NrUplink, symbols: int, sinr_db: float) -> tuple[float, float]:
    """(TBS bits, BLER) of the highest MCS within the BLER target on a slot of `symbols` (0, 1: none)."""
    count = len(MCS_TABLES[link.mcs_table])
    indices = np.arange(count)
    rates = np.array([mcs(i, link.mcs_table)[1] for i in indices])
    tbs = np.array([transport_block_bits(i, link.n_prb, symbols, link.mcs_table, link.dmrs_re_per_prb,
                                         link.overhead_re_per_prb, link.layers) for i in indices], float)
    cb_bits, blocks = segmentation(tbs, rates)
    errors = bler(indices, link.mcs_table, cb_bits, np.full(count, sinr_db), blocks,
                  PDSCH_CATEGORY if link.downlink else PUSCH_CATEGORY)
    ok = np.flatnonzero((errors <= link.bler_target) & (tbs > 0))
    if not ok.size:
        return 0.0, 1.0
    best = ok[-1]
    return float(tbs[best]), float(errors[best])


def transfer_seconds(link: NrUplink, bits: float, sinr_db: float, rng: np.random.Generator,
                     draws: int = 1) -> np.ndarray:
    """(draws,) times (s) to deliver `bits` on the link's `n_prb` PRBs at `sinr_db`, slot by slot from
    the start of a TDD period; inf where no MCS decodes."""
    schedule = slot_schedule(link)
    slot_s = 1e-3 * 15.0 / link.scs_khz
    blocks = {symbols: _block(link, symbols, sinr_db) for symbols in set(schedule) if symbols > 0}
    if all(tbs <= 0 for tbs, _ in blocks.values()):
        return np.full(draws, np.inf)
    out = np.empty(draws)
    period = len(schedule)
    for d in range(draws):
        delivered, slot = 0.0, 0
        while delivered < bits:
            symbols = schedule[slot % period]
            if symbols > 0:
                tbs, error = blocks[symbols]
                if tbs > 0 and rng.random() >= error:
                    delivered += tbs
            slot += 1
        out[d] = slot * slot_s
    return out

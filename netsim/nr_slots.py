"""An NR transfer slot by slot: the check on the expected goodput the engines use (netsim.nr_link).

Each slot of the TDD pattern that carries in the link's direction sends one transport block of
TBS(MCS, n_PRB, symbols) bits; it is decoded with probability 1 − TBLER (drawn), and a block that
fails is sent again in the next carrying slot (HARQ; after `harq_max_transmissions` failures RLC
resends it, which costs the same). The MCS is chosen slot by slot: with the outer loop by an OLLA
whose offset each ACK and NACK moves (one loop per kind of slot, run for a warm-up before the
transfer starts), with the inner loop the highest MCS within the target. The transfer ends in the
slot that completes its bits. Its mean time over many draws is bits over NrUplink's goodput (for
the outer loop the stationary regime of scenarios.nr_link.olla_stationary), which is what NrRate
gives the engines.
"""

from __future__ import annotations

import numpy as np

from splitsim.scenarios.nr_tbs import MCS_TABLES, SYMBOLS_PER_SLOT, mcs, transport_block_bits

from splitsim.scenarios.nr_link import (OLLA_DELTA_UP_DB, OLLA_OFFSET_MAX_DB, OLLA_OFFSET_MIN_DB, PDSCH_CATEGORY,
                                       PUSCH_CATEGORY, NrUplink, bler, mcs_thresholds_db, segmentation)


def slot_schedule(link: NrUplink) -> list[int]:
    """Data symbols of each slot of one TDD period in the link's direction (0: the slot does not carry)."""
    slots = link.slots
    if slots.pattern == "FDD":
        return [SYMBOLS_PER_SLOT]
    special = slots.special_downlink_symbols if link.downlink else slots.special_uplink_symbols
    full = "D" if link.downlink else "U"
    return [SYMBOLS_PER_SLOT if kind == full else special if kind == "S" else 0 for kind in slots.pattern]


class _Kind:
    """One kind of carrying slot (its data symbols): TBS and TBLER of every MCS at the SINR, its
    link adaptation's state."""

    def __init__(self, link: NrUplink, symbols: int, sinr_db: float):
        count = len(MCS_TABLES[link.mcs_table])
        indices = np.arange(count)
        rates = np.array([mcs(i, link.mcs_table)[1] for i in indices])
        self.tbs = np.array([transport_block_bits(i, link.sending_prbs, symbols, link.mcs_table, link.dmrs_re_per_prb,
                                                  link.overhead_re_per_prb, link.layers) for i in indices], float)
        cb_bits, blocks = segmentation(self.tbs, rates)
        category = PDSCH_CATEGORY if link.downlink else PUSCH_CATEGORY
        self.tbler = bler(indices, link.mcs_table, cb_bits, np.full(count, sinr_db), blocks, category)
        tbler = lambda m, at_db: bler(m, link.mcs_table, cb_bits[m], at_db, blocks[m], category)  # noqa: E731
        self.thresholds = mcs_thresholds_db(tbler, count, link.bler_target)
        usable = np.isfinite(self.thresholds) & (self.tbs > 0)
        self.lowest = int(np.flatnonzero(usable)[0]) if usable.any() else -1
        self.covered = usable.any() and sinr_db >= self.thresholds[usable].min()
        self.sinr_db, self.usable, self.outer = sinr_db, usable, link.link_adaptation == "outer_loop"
        self.delta_down = OLLA_DELTA_UP_DB * link.bler_target / (1 - link.bler_target)
        self.offset_db = 0.0

    def mcs(self) -> int:
        estimate = self.sinr_db - (self.offset_db if self.outer else 0.0)
        fine = np.flatnonzero(self.usable & (self.thresholds <= estimate))
        return int(fine.max()) if fine.size else self.lowest

    def send(self, rng: np.random.Generator) -> float:
        """One transmission: bits delivered (0 on a NACK); the outer loop's offset moves."""
        chosen = self.mcs()
        ack = rng.random() >= self.tbler[chosen]
        if self.outer:
            self.offset_db += -self.delta_down if ack else OLLA_DELTA_UP_DB
            self.offset_db = min(max(self.offset_db, OLLA_OFFSET_MIN_DB), OLLA_OFFSET_MAX_DB)
        return float(self.tbs[chosen]) if ack else 0.0


def transfer_seconds(link: NrUplink, bits: float, sinr_db: float, rng: np.random.Generator,
                     draws: int = 1, warm_up_slots: int = 2000) -> np.ndarray:
    """(draws,) times (s) to deliver `bits` on the link's `n_prb` PRBs at `sinr_db`, slot by slot from
    the start of a TDD period; inf where no MCS holds the BLER target (out of coverage). The outer
    loop runs `warm_up_slots` transmissions per kind of slot before the first transfer."""
    schedule = slot_schedule(link)
    slot_s = 1e-3 * 15.0 / link.scs_khz
    kinds = {symbols: _Kind(link, symbols, sinr_db) for symbols in set(schedule) if symbols > 0}
    if not kinds[max(kinds)].covered:
        return np.full(draws, np.inf)
    for kind in kinds.values():
        for _ in range(warm_up_slots):
            kind.send(rng)
    out = np.empty(draws)
    period = len(schedule)
    for d in range(draws):
        delivered, slot = 0.0, 0
        while delivered < bits:
            symbols = schedule[slot % period]
            if symbols > 0 and kinds[symbols].covered:
                delivered += kinds[symbols].send(rng)
            slot += 1
        out[d] = slot * slot_s
    return out

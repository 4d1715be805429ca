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

import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from splitsim.scenarios.nr_tbs import (MCS_TABLES, SYMBOLS_PER_SLOT, dft_sizes_up_to, mcs, pusch_mcs_table,
                                      transport_block_bits)

RE_SECONDS_PER_PRB_SLOT = 180.0  # 12 sub-carriers x (15·2^μ kHz) x (1 / 2^μ ms): Hz·s of one PRB-slot
MCS_TABLE_INDEX = {"qam64": 1, "qam256": 2}  # TS 38.214 Tables 5.1.3.1-1 and -2 (Sionna's table_index)


def bler_rows(mcs_index: np.ndarray, mcs_table: str) -> tuple[np.ndarray, int]:
    """(Sionna's MCS index, its table_index) of the BLER table rows of `mcs_table`'s indices: the rows
    of Tables 5.1.3.1-1/-2 themselves; for Table 6.1.4.1-1 (qam64_tp) the row of Table 5.1.3.1-1 with
    the same (Q_m, R) — the same LDPC code word, so the same BLER on the flat channel (Sionna holds
    no tables for transform precoding): indices from 17 on are Table 1's index + 1."""
    index = np.asarray(mcs_index)
    if mcs_table == "qam64_tp":
        return np.where(index >= 17, index + 1, index), MCS_TABLE_INDEX["qam64"]
    return index, MCS_TABLE_INDEX[mcs_table]
PUSCH_CATEGORY = 0  # Sionna's MCS category for PUSCH
PDSCH_CATEGORY = 1  # and for PDSCH


@dataclass(frozen=True)
class UplinkSlots:
    """The uplink's share of a TDD pattern: full uplink slots and special slots' uplink symbols."""

    pattern: str  # "DDDSU", "DDDDDDDSUU", or "FDD"
    special_uplink_symbols: int  # uplink symbols of a special slot
    special_downlink_symbols: int = 0  # downlink symbols of a special slot

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
    def downlink_slots(self) -> int:
        return 1 if self.pattern == "FDD" else self.pattern.count("D")

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
         blocks: np.ndarray | int = 1, category: int = PUSCH_CATEGORY) -> np.ndarray:
    """Block error rate of a transport block of `blocks` code blocks of `cb_bits` at the SINR (AWGN,
    flat): Sionna's tables (PUSCH, or PDSCH with `category` 1) for one code block, 1 − (1 − BLER_cb)^C
    for the C blocks that must all decode. MCS that the tables do not hold give 1 (never chosen)."""
    import torch

    shape = np.broadcast(mcs_index, cb_bits, sinr_db).shape
    rows, table_index = bler_rows(np.broadcast_to(mcs_index, shape), mcs_table)
    m = torch.as_tensor(rows.astype(np.int32))
    cbs = torch.as_tensor(np.broadcast_to(np.minimum(cb_bits, 8448), shape).astype(np.int32))
    snr = torch.as_tensor(10 ** (np.broadcast_to(sinr_db, shape) / 10), dtype=torch.float32)
    table = torch.full(shape, table_index, dtype=torch.int32)
    category = torch.full(shape, category, dtype=torch.int32)
    out = _phy_abstraction().get_bler(m, table, category, cbs, snr).double().numpy()
    per_block = np.where(np.isfinite(out), np.clip(out, 0.0, 1.0), 1.0)
    return 1 - (1 - per_block) ** np.broadcast_to(blocks, shape)


# Outer-loop link adaptation (OLLA; Pedersen et al., IEEE VTC 2005 — Sionna's OuterLoopLinkAdaptation):
# the MCS is the highest whose transport-block error rate at the reported SINR less an offset is at
# most the target; the offset rises by OLLA_DELTA_UP_DB on a NACK and falls by
# delta_up·target/(1 − target) on an ACK, kept within [OLLA_OFFSET_MIN_DB, OLLA_OFFSET_MAX_DB].
OLLA_DELTA_UP_DB = 1.0
OLLA_OFFSET_MIN_DB, OLLA_OFFSET_MAX_DB = -20.0, 20.0


def mcs_thresholds_db(tbler, count: int, target: float, low_db: float = -30.0, high_db: float = 50.0) -> np.ndarray:
    """(count,) the SINR (dB) at which each MCS's TBLER falls to `target` (its transport blocks
    decode often enough): bisection on `tbler(mcs (count,), sinr_db (count,))`, which falls with the
    SINR; inf where it never does within [low_db, high_db], −inf where it always has."""
    indices = np.arange(count)
    low, high = np.full(count, low_db), np.full(count, high_db)
    never = tbler(indices, high.copy()) > target
    always = tbler(indices, low.copy()) <= target
    for _ in range(24):  # 80 dB / 2^24: 5e-6 dB
        mid = 0.5 * (low + high)
        ok = tbler(indices, mid) <= target
        high, low = np.where(ok, mid, high), np.where(ok, low, mid)
    return np.where(never, np.inf, np.where(always, -np.inf, high))


def olla_stationary(tbs_bits: np.ndarray, tbler_at_sinr: np.ndarray, thresholds_db: np.ndarray, sinr_db: np.ndarray,
                    target: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OLLA's long-run regime at a fixed SINR, exactly: the offset moves on a lattice of
    delta_down = delta_up·target/(1 − target) (a NACK is 1/target − 1 steps up, an ACK one down),
    a Markov chain whose stationary law follows from the balance of flows across each boundary:
    pi[b+1]·p[b+1] = sum over the states j <= b that a NACK lifts above b of pi[j]·(1 − p[j]), with
    p the ACK probability of the MCS the state chooses. Per SINR (S,): (bits delivered per
    transmission, the realised TBLER, the most frequent MCS or −1); below the easiest MCS's threshold
    (no MCS holds the target) nothing: out of coverage.

    tbs_bits (M,): TBS of each MCS; tbler_at_sinr (M, S): each MCS's TBLER at the true SINR;
    thresholds_db (M,): mcs_thresholds_db. With no MCS above its threshold the lowest one the tables
    hold is sent."""
    delta_down = OLLA_DELTA_UP_DB * target / (1 - target)
    steps_up = int(round(OLLA_DELTA_UP_DB / delta_down))
    lattice = np.arange(int(np.floor(OLLA_OFFSET_MIN_DB / delta_down)), int(np.ceil(OLLA_OFFSET_MAX_DB / delta_down)) + 1)
    count, columns = len(tbs_bits), np.arange(sinr_db.size)
    usable = np.isfinite(thresholds_db) & (tbs_bits > 0)
    if not usable.any():
        zero = np.zeros(sinr_db.shape)
        return zero, np.ones(sinr_db.shape), np.full(sinr_db.shape, -1)
    lowest = int(np.flatnonzero(usable)[0])
    order = np.argsort(np.where(usable, thresholds_db, np.inf), kind="stable")
    best_so_far = np.maximum.accumulate(np.where(usable[order], order, -1))  # the highest MCS among the easiest
    sorted_thresholds = np.where(usable, thresholds_db, np.inf)[order]
    estimate = sinr_db[None, :] - lattice[:, None] * delta_down  # (states, S) reported SINR less the offset
    position = np.searchsorted(sorted_thresholds, estimate, side="right") - 1
    chosen = np.where(position >= 0, best_so_far[np.clip(position, 0, count - 1)], lowest)
    chosen = np.where(chosen >= 0, chosen, lowest)
    ack = 1.0 - tbler_at_sinr[chosen, columns[None, :]]  # (states, S)
    nack = 1.0 - ack
    states = lattice.size
    alive = ack > 0  # the ACK probability grows with the offset: below the first state that can go down,
    first = np.where(alive.any(axis=0), np.argmax(alive, axis=0), states)  # only its neighbour is recurrent
    start = np.clip(first - 1, 0, states - 1)
    pi = np.zeros((states, sinr_db.size))
    pi[start, columns] = 1.0
    for b in range(states - 1):
        window = slice(max(0, b - steps_up + 1), b + 1)
        lifted = (pi[window] * nack[window]).sum(axis=0)
        nxt = np.divide(lifted, ack[b + 1], out=np.zeros(sinr_db.size), where=ack[b + 1] > 0)
        pi[b + 1] = np.where(b + 1 > start, nxt, pi[b + 1])
        scale = pi[b + 1] > 1e200
        if scale.any():
            pi[:, scale] /= 1e200
    total = pi.sum(axis=0)
    pi /= np.where(total > 0, total, 1.0)
    # below the easiest MCS's threshold no MCS holds the BLER target: out of coverage, whatever OLLA sends
    covered = alive.any(axis=0) & (sinr_db >= sorted_thresholds[0])
    bits = np.where(covered, (pi * tbs_bits[chosen] * ack).sum(axis=0), 0.0)
    realised = np.where(covered, (pi * nack).sum(axis=0), 1.0)
    share = np.zeros((count, sinr_db.size))
    np.add.at(share, (chosen, np.broadcast_to(columns, chosen.shape)), pi)
    mode = np.where(covered, np.argmax(share, axis=0), -1)
    return bits, realised, mode


@dataclass(frozen=True)
class NrUplink:
    """An NR carrier's uplink (or, with `downlink`, its downlink: the D slots and symbols, PDSCH's
    BLER tables): numerology, PRBs, TDD pattern, MCS table and link adaptation."""

    scs_khz: int
    n_prb: int
    slots: UplinkSlots
    mcs_table: str = "qam64"
    dmrs_re_per_prb: int = 12
    overhead_re_per_prb: int = 0
    layers: int = 1
    bler_target: float = 0.1
    harq_max_transmissions: int = 4
    downlink: bool = False
    link_adaptation: str = "outer_loop"  # or "inner_loop": the highest MCS within the target at the known SINR
    transform_precoding: bool = False  # DFT-s-OFDM: mcs_table is then §6.1.4.1's (pusch_mcs_table), PRBs 2^a3^b5^c

    @property
    def sending_prbs(self) -> int:
        """The PRBs a transport block is sent on: all n_prb, or with transform precoding the most that a
        DFT-s-OFDM PUSCH may use (2^a2·3^a3·5^a5 <= n_prb, TS 38.211 §6.3.1.4); the rest idle."""
        if not self.transform_precoding or self.n_prb <= 0:
            return self.n_prb
        return int(np.flatnonzero(dft_sizes_up_to(self.n_prb))[-1])

    def _slot_kinds(self) -> list[tuple[int, int]]:
        """(symbols, how many per pattern) of the slots that carry data in this direction."""
        if self.downlink:
            kinds = [(SYMBOLS_PER_SLOT, self.slots.downlink_slots)]
            special = self.slots.special_downlink_symbols
        else:
            kinds = [(SYMBOLS_PER_SLOT, self.slots.uplink_slots)]
            special = self.slots.special_uplink_symbols
        if self.slots.special_slots and special > 0:
            kinds.append((special, self.slots.special_slots))
        return kinds

    def curve(self, sinr_db: np.ndarray) -> dict[str, np.ndarray]:
        """Per SINR (dB): the MCS link adaptation sends most often in a full slot, its spectral
        efficiency, the realised BLER and the residual BLER after HARQ, the goodput per Hz over the
        TDD pattern (`goodput_bps_per_hz`), the same with every slot in this direction
        (`goodput_fdd_bps_per_hz`), and Shannon's log2(1 + SINR) beside them.

        Outer loop (the default): OLLA's stationary regime at that SINR (olla_stationary), one loop
        per kind of slot (full, special); inner loop: the highest MCS whose TBLER is within the
        target, every transmission delivering TBS·(1 − TBLER)."""
        sinr_db = np.asarray(sinr_db, dtype=float)
        count = len(MCS_TABLES[self.mcs_table])
        indices = np.arange(count)
        rates = np.array([mcs(i, self.mcs_table)[1] for i in indices])
        category = PDSCH_CATEGORY if self.downlink else PUSCH_CATEGORY
        goodput_bits = np.zeros(sinr_db.shape)  # per pattern, on n_prb PRBs
        fdd_bits = np.zeros(sinr_db.shape)
        chosen = np.full(sinr_db.shape, -1)
        chosen_bler = np.ones(sinr_db.shape)
        for symbols, per_pattern in self._slot_kinds():
            tbs = np.array([transport_block_bits(i, self.sending_prbs, symbols, self.mcs_table, self.dmrs_re_per_prb,
                                                 self.overhead_re_per_prb, self.layers) for i in indices], float)
            cb_bits, blocks = segmentation(tbs, rates)
            errors = bler(indices[:, None], self.mcs_table, cb_bits[:, None], sinr_db[None, :], blocks[:, None],
                          category)
            if self.link_adaptation == "outer_loop":
                def tbler(m, at_db, cb_bits=cb_bits, blocks=blocks):
                    return bler(m, self.mcs_table, cb_bits[m], at_db, blocks[m], category)

                thresholds = mcs_thresholds_db(tbler, count, self.bler_target)
                delivered, realised, best = olla_stationary(tbs, errors, thresholds, sinr_db, self.bler_target)
            else:
                ok = (errors <= self.bler_target) & (tbs[:, None] > 0)
                best = np.where(ok.any(axis=0), count - 1 - np.argmax(ok[::-1], axis=0), -1)
                realised = np.where(best >= 0, errors[best, np.arange(len(sinr_db))], 1.0)
                delivered = np.where(best >= 0, tbs[best] * (1 - realised), 0.0)
            goodput_bits += per_pattern * delivered
            if symbols == SYMBOLS_PER_SLOT:
                fdd_bits = delivered * self.slots.slots
                chosen, chosen_bler = best, realised
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


# The SINR grid (dB) on which NrUplink.curve is tabulated for NrRate: below its start no MCS decodes,
# above its end the top MCS is error-free; 0.1 dB steps, linear between them (OLLA's goodput is smooth
# in the SINR: its regime mixes neighbouring MCSs).
CURVE_GRID_DB = np.round(np.arange(-15.0, 40.0 + 1e-9, 0.1), 10)
# NrRate's table is indexed by the SINR one PRB would have with all of the user's power (dB), up to
# the top of CURVE_GRID_DB plus 10·log10(275 PRBs).
ONE_PRB_GRID_DB = np.round(np.arange(-15.0, 65.0 + 1e-9, 0.05), 10)
GRID_STEP_DB = 0.05


class _GoodputTable:
    """G[n, y]: the goodput (bit/s per Hz of one PRB) of a user holding n PRBs whose power on one PRB
    alone gives the SINR y (ONE_PRB_GRID_DB). Spread over m PRBs its SINR is y − 10·log10(m) (dB);
    it sends on the m <= n that deliver the most: G[n] = max_{m<=n} m·eta_m(y − 10·log10 m), with
    eta_m NrUplink.curve's goodput per Hz on m PRBs over the TDD pattern (with transform precoding,
    m of the DFT sizes only: 2^a2·3^a3·5^a5). So G[n] >= G[n−1] at every grid point, and (linear
    between grid points) the rate never falls when PRBs are added. Rows are built up to the most
    PRBs asked for."""

    def __init__(self, link: NrUplink):
        self.link = link
        self.table = np.zeros((1, ONE_PRB_GRID_DB.size))  # row 0: no PRB delivers nothing
        self.cache = _curve_cache_dir(link)
        self.etas: dict[int, np.ndarray] = {}

    def rows(self, most_prbs: int) -> np.ndarray:
        """G with at least `most_prbs` + 1 rows."""
        have = self.table.shape[0] - 1
        if most_prbs > have:
            rows = [self.table]
            best = self.table[-1]
            sendable = dft_sizes_up_to(most_prbs) if self.link.transform_precoding else None
            for m in range(have + 1, most_prbs + 1):
                if sendable is not None and not sendable[m]:  # no DFT-s-OFDM PUSCH on m PRBs
                    rows.append(best[None, :])
                    continue
                eta = self._eta(m)
                on_m = m * np.interp(ONE_PRB_GRID_DB - 10.0 * math.log10(m), CURVE_GRID_DB, eta, left=0.0,
                                     right=eta[-1])
                best = np.maximum(best, on_m)
                rows.append(best[None, :])
            self.table = np.vstack(rows)
        return self.table


    def _eta(self, prbs: int) -> np.ndarray:
        """NrUplink.curve's goodput per Hz on `prbs` PRBs over CURVE_GRID_DB, from the disk cache
        when this carrier's was computed before (the key holds every input: _curve_cache_dir)."""
        if prbs not in self.etas:
            self.etas[prbs] = self._load_eta(prbs)
        return self.etas[prbs]

    def _load_eta(self, prbs: int) -> np.ndarray:
        from dataclasses import replace

        path = None if self.cache is None else self.cache / f"prbs_{prbs}.npy"
        if path is not None and path.exists():
            try:
                eta = np.load(path)
                if eta.shape == CURVE_GRID_DB.shape and np.all(np.isfinite(eta)):
                    return eta
            except (OSError, ValueError):
                pass  # unreadable: computed again below and rewritten
        eta = replace(self.link, n_prb=prbs).curve(CURVE_GRID_DB)["goodput_bps_per_hz"]
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_suffix(f".{os.getpid()}.tmp")
                with open(partial, "wb") as handle:
                    np.save(handle, eta)
                os.replace(partial, path)
            except OSError:
                pass  # a read-only cache costs time, not results
        return eta


# What the link curves depend on beside the carrier's fields; raise it when the model changes so that
# curves cached by an earlier version are never read.
NR_CURVE_MODEL_VERSION = 2


def _curve_cache_dir(link: NrUplink):
    """The disk cache of a carrier's curves (SPLITSIM_CACHE_DIR, default ~/.cache/splitsim, then nr/<key>):
    the key hashes the carrier, the grid, the OLLA constants, this model's version and Sionna's."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    try:
        sionna_version = version("sionna-no-rt")
    except PackageNotFoundError:
        sionna_version = "unknown"
    key = repr((link, CURVE_GRID_DB[0], CURVE_GRID_DB[-1], CURVE_GRID_DB.size, OLLA_DELTA_UP_DB, OLLA_OFFSET_MIN_DB,
                OLLA_OFFSET_MAX_DB, NR_CURVE_MODEL_VERSION, sionna_version))
    root = Path(os.environ.get("SPLITSIM_CACHE_DIR", Path.home() / ".cache" / "splitsim"))
    return root / "nr" / hashlib.sha256(key.encode()).hexdigest()[:20]


class _FadedTable:
    """E over the fading of _GoodputTable's rows: row n at y is the mean of G[n, y + 10·log10 |h|^2]
    over quantiles of |h|^2 (a midpoint quadrature of the fading distribution), the block-fading
    average a transfer over many coherence blocks sees."""

    def __init__(self, base: _GoodputTable, power_quantiles: np.ndarray):
        self.base = base
        self.shift_db = 10.0 * np.log10(np.asarray(power_quantiles, dtype=float))
        self.table = np.zeros((1, ONE_PRB_GRID_DB.size))

    def rows(self, most_prbs: int) -> np.ndarray:
        have = self.table.shape[0] - 1
        if most_prbs > have:
            base = self.base.rows(most_prbs)
            new = np.zeros((most_prbs - have, ONE_PRB_GRID_DB.size))
            for shift in self.shift_db:
                at = ONE_PRB_GRID_DB + shift
                for i, n in enumerate(range(have + 1, most_prbs + 1)):
                    new[i] += np.interp(at, ONE_PRB_GRID_DB, base[n], left=0.0, right=base[n, -1])
            self.table = np.vstack([self.table, new / self.shift_db.size])
        return self.table


# TS 38.331 `Alpha`: the fractions of the path loss that open-loop power control may compensate.
PATHLOSS_COMPENSATION_VALUES = (0.0, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def pusch_tx_power_dbm(path_loss_db: np.ndarray, prbs: np.ndarray, p0_dbm: float, alpha: float,
                       max_tx_power_dbm: float, scs_khz: int) -> np.ndarray:
    """A user's PUSCH transmit power (dBm) under TS 38.213 §7.1.1 open-loop power control:
    min(P_CMAX, P0 + 10·log10(2^μ · M_RB) + α·PL), without the closed-loop term (f = 0) and the
    transport-format term (Δ_TF = 0: deltaMCS off). P0 is the target received power of one PRB at
    15 kHz, so a PRB at 2^μ·15 kHz gets 2^μ times it. path_loss_db, prbs: broadcast (M_RB >= 1)."""
    mu = int(round(math.log2(scs_khz / 15)))
    wanted = p0_dbm + 10.0 * np.log10((2 ** mu) * np.asarray(prbs, dtype=float)) + alpha * np.asarray(path_loss_db)
    return np.minimum(max_tx_power_dbm, wanted)


@dataclass(frozen=True)
class OpenLoopPowerControl:
    """TS 38.213 open-loop PUSCH power control of a user whose maximum power is `max_tx_power_dbm`
    over a noise of `noise_psd_dbm_per_hz` (pusch_tx_power_dbm). The path loss is the one its
    c = g·P_max/N0 implies: PL = P_max − N0 − 10·log10(c) (dB)."""

    p0_dbm: float
    alpha: float
    max_tx_power_dbm: float
    noise_psd_dbm_per_hz: float
    scs_khz: int

    def path_loss_db(self, snr_coeff_hz: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return self.max_tx_power_dbm - self.noise_psd_dbm_per_hz - 10.0 * np.log10(np.asarray(snr_coeff_hz, float))

    def headroom_db(self, snr_coeff_hz: np.ndarray) -> np.ndarray:
        """P0 + 10·log10(2^μ) + α·PL − P_max (dB): the power one PRB asks for over the maximum; a
        user on m PRBs sends at P_max + min(0, headroom + 10·log10 m)."""
        return pusch_tx_power_dbm(self.path_loss_db(snr_coeff_hz), 1, self.p0_dbm, self.alpha, math.inf,
                                  self.scs_khz) - self.max_tx_power_dbm

    def power_fraction(self, snr_coeff_hz: np.ndarray, prbs: np.ndarray) -> np.ndarray:
        """P/P_max of users sending on `prbs` PRBs (>= 1): 10^(min(0, headroom + 10·log10 prbs)/10)."""
        room = self.headroom_db(snr_coeff_hz) + 10.0 * np.log10(np.maximum(np.asarray(prbs, dtype=float), 1.0))
        return 10.0 ** (np.minimum(0.0, np.nan_to_num(room, nan=0.0)) / 10.0)


@lru_cache(maxsize=16)
def _goodput_table(link: NrUplink) -> _GoodputTable:
    return _GoodputTable(link)


class NrRate:
    """The NR link model: the expected goodput (bit/s) of a user's whole PRBs at c = g·p/N0 (Hz).

    A user holding b Hz has n = floor(b / prb_hz) PRBs; with its power on one PRB the SINR would be
    y = c / prb_hz less `interference_over_thermal_db`, spread over m PRBs y/m. Link adaptation picks
    the MCS and the number of PRBs m <= n to send on (a power-limited user concentrates its power, as
    a scheduler that reads its power headroom has it do), each slot delivers TBS·(1 − BLER) (HARQ
    resends what fails), only the TDD pattern's slots in this direction carry. So the rate never
    falls when PRBs are added, and is 0 where even one PRB decodes no MCS (out of coverage).
    Tables: _GoodputTable, linear in y between 0.05 dB grid points. Shapes broadcast."""

    name = "nr"

    def __init__(self, link: NrUplink, prb_hz: float, interference_over_thermal_db: float = 0.0,
                 power_control: OpenLoopPowerControl | None = None):
        from dataclasses import replace

        self.link = replace(link, n_prb=0)  # the tables are per PRB count
        self.prb_hz = float(prb_hz)
        self.interference_over_thermal_db = float(interference_over_thermal_db)
        self.power_control = power_control  # None: every user sends at its maximum power
        self._table = _goodput_table(self.link)
        self.fading: tuple = ()  # the fading this rate is averaged over (NrRate.faded), none here
        self._faded: dict = {}
        self._fits: dict = {}

    def _key(self) -> tuple:
        return self.link, self.prb_hz, self.interference_over_thermal_db, self.fading, self.power_control

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NrRate) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def faded(self, name: str, power_quantiles: np.ndarray) -> NrRate:
        """This rate averaged over block fading whose |h|^2 has these quantiles (`name` labels it):
        the ergodic rate of a transfer that spans many coherence blocks (cached per fading)."""
        if self.power_control is not None:
            raise ValueError("open-loop power control follows the path loss, not fast fading: no faded NR rate with it")
        key = (name, np.asarray(power_quantiles, dtype=float).tobytes())
        if key not in self._faded:
            faded = NrRate.__new__(NrRate)
            faded.__dict__.update(self.__dict__)
            faded._table = _FadedTable(self._table, power_quantiles)
            faded.fading, faded._faded, faded._fits = (name, key[1]), {}, {}
            self._faded[key] = faded
        return self._faded[key]

    def __repr__(self) -> str:
        control = "" if self.power_control is None else f", {self.power_control}"
        return f"NrRate({self.link}, prb_hz={self.prb_hz:g}, iot_db={self.interference_over_thermal_db:g}{control})"

    def prbs(self, bandwidth_hz: float | np.ndarray) -> np.ndarray:
        """Whole PRBs in `bandwidth_hz` (a rounding error of 1e-6 PRB forgiven)."""
        return np.floor(np.asarray(bandwidth_hz, dtype=float) / self.prb_hz + 1e-6).astype(np.int64)

    def one_prb_sinr_db(self, snr_coeff_hz: float | np.ndarray) -> np.ndarray:
        """y: the SINR (dB) of one PRB carrying all of the user's power."""
        with np.errstate(divide="ignore"):
            return 10.0 * np.log10(np.asarray(snr_coeff_hz, dtype=float) / self.prb_hz) - \
                self.interference_over_thermal_db

    def rate_bps(self, bandwidth_hz: float | np.ndarray, snr_coeff_hz: float | np.ndarray) -> np.ndarray:
        b, c = np.broadcast_arrays(np.asarray(bandwidth_hz, dtype=float), np.asarray(snr_coeff_hz, dtype=float))
        n = np.maximum(self.prbs(b), 0)
        table = self._table.rows(int(n.max(initial=0)))
        position = (self.one_prb_sinr_db(c) - ONE_PRB_GRID_DB[0]) / GRID_STEP_DB
        position = np.clip(np.nan_to_num(position, nan=-1.0, neginf=-1.0), -1.0, ONE_PRB_GRID_DB.size - 1.0)
        low = np.clip(position.astype(np.int64), 0, ONE_PRB_GRID_DB.size - 2)
        frac = np.clip(position - low, 0.0, 1.0)
        flat = table.ravel()
        index = n * ONE_PRB_GRID_DB.size + low
        per_prb_hz = flat[index] * (1.0 - frac) + flat[index + 1] * frac
        rate = np.where(position < 0, 0.0, per_prb_hz * self.prb_hz)
        if self.power_control is not None:
            rate = self._controlled(rate, n, c)[0]
        return rate

    def _controlled(self, rate: np.ndarray, n: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rate, PRBs sent on) under open-loop power control: on m PRBs the user sends at
        P_max + min(0, headroom + 10·log10 m), so its SINR is y − 10·log10 m + min(0, headroom + 10·log10 m);
        it sends on the m <= n that deliver the most. Where one PRB already asks for P_max (headroom >= 0)
        the control never binds and `rate` (the table's) stands; elsewhere every m is tried."""
        headroom = self.power_control.headroom_db(c)
        bound = (headroom < 0) & (n > 0) & np.isfinite(headroom)
        sent_on = np.where(n > 0, -1, 0)  # -1: the table's choice, at full power
        if not bound.any():
            return rate, sent_on
        y, room, most = self.one_prb_sinr_db(c[bound]), headroom[bound], n[bound]
        best, best_m = np.zeros(y.shape), np.zeros(y.shape, dtype=np.int64)
        sendable = dft_sizes_up_to(int(most.max())) if self.link.transform_precoding else None
        for m in range(1, int(most.max()) + 1):
            if sendable is not None and not sendable[m]:  # no DFT-s-OFDM PUSCH on m PRBs
                continue
            eta = self._table_base()._eta(m)
            sinr = y - 10.0 * math.log10(m) + np.minimum(0.0, room + 10.0 * math.log10(m))
            value = np.where(most >= m, m * np.interp(sinr, CURVE_GRID_DB, eta, left=0.0, right=eta[-1]), 0.0)
            better = value > best
            best, best_m = np.where(better, value, best), np.where(better, m, best_m)
        rate, sent_on = rate.copy(), sent_on.copy()
        # never above the maximum-power rate: the two differ by the tables' interpolation alone (< 1 %)
        # where the control binds at no m that counts; the minimum keeps the rate rising with n
        rate[bound], sent_on[bound] = np.minimum(best * self.prb_hz, rate[bound]), best_m
        return rate, sent_on

    def _table_base(self) -> _GoodputTable:
        return self._table if isinstance(self._table, _GoodputTable) else self._table.base

    def tx_power_fraction(self, bandwidth_hz: float | np.ndarray, snr_coeff_hz: float | np.ndarray) -> np.ndarray:
        """The share of its maximum power a user sends at on `bandwidth_hz` (1 without power control;
        under it P_max·10^(min(0, headroom + 10·log10 m)/10) on the m PRBs it sends on)."""
        b, c = np.broadcast_arrays(np.asarray(bandwidth_hz, dtype=float), np.asarray(snr_coeff_hz, dtype=float))
        if self.power_control is None:
            return np.ones(b.shape)
        n = np.maximum(self.prbs(b), 0)
        _, sent_on = self._controlled(np.zeros(b.shape), n, c)
        return np.where(sent_on > 0, self.power_control.power_fraction(c, sent_on), np.where(n > 0, 1.0, 0.0))

    def least_sinr_db(self) -> float:
        """The SINR (dB) below which one PRB decodes no MCS: the edge of coverage."""
        row = self._table.rows(1)[1]
        return float(ONE_PRB_GRID_DB[np.argmax(row > 0)]) if np.any(row > 0) else math.inf

    def shannon_fit(self, prbs_per_user: float) -> tuple[float, float]:
        """(alpha, Gamma) of alpha·log2(1 + SNR/Gamma) fitted to the goodput per Hz of n = round(prbs_per_user)
        PRBs (the user sending on all n), in the manner of 3GPP TR 36.942 Annex A (an attenuated
        Shannon bound): least squares in the relative error over the SINRs where it delivers, up to
        where it reaches its cap. Gamma includes the rise over thermal (the fit is in SNR)."""
        n = int(min(max(round(prbs_per_user), 1), 275))
        if n not in self._fits:  # one fit per PRB count: every power point and re-plan asks again
            self._fits[n] = self._shannon_fit(n)
        return self._fits[n]

    def _shannon_fit(self, n: int) -> tuple[float, float]:
        from dataclasses import replace

        eta = replace(self.link, n_prb=n).curve(CURVE_GRID_DB)["goodput_bps_per_hz"]
        top = eta.max()
        if top <= 0:
            return 1.0, 1.0
        use = (eta > 0) & (eta <= 0.999 * top)
        use[np.argmax(eta > 0.999 * top)] = True
        snr = 10 ** ((CURVE_GRID_DB[use] + self.interference_over_thermal_db) / 10)
        eta = eta[use]
        best = (math.inf, 1.0, 1.0)
        for gamma in np.geomspace(0.25, 40.0, 400):
            f = np.log2(1 + snr / gamma) / eta  # alpha·f ≈ 1
            alpha = float(f.sum() / (f * f).sum())
            err = float(((alpha * f - 1) ** 2).sum())
            if err < best[0]:
                best = (err, alpha, float(gamma))
        return best[1], best[2]


def nr_carrier(radio, downlink: bool = False) -> NrUplink:
    """The NrUplink (no PRB count) of a scenario's `radio` section (radio.nr, radio.subcarrier_spacing_khz)."""
    nr = radio.nr
    down, _, up = nr.special_slot_symbols
    return NrUplink(scs_khz=radio.subcarrier_spacing_khz, n_prb=0,
                    slots=UplinkSlots(nr.tdd_pattern, up, down),
                    mcs_table=nr.mcs_table if downlink else pusch_mcs_table(nr.mcs_table, nr.transform_precoding),
                    dmrs_re_per_prb=nr.dmrs_re_per_prb, overhead_re_per_prb=nr.overhead_re_per_prb, layers=nr.layers,
                    bler_target=nr.bler_target, harq_max_transmissions=nr.harq_max_transmissions, downlink=downlink,
                    link_adaptation=nr.link_adaptation, transform_precoding=nr.transform_precoding and not downlink)


def link_rates(radio, channel=None):
    """(uplink, downlink) link models of a scenario's `radio` section: Shannon's, or with
    `radio.link_model: nr` the NR goodput on whole PRBs (NrRate). Under open-loop power control
    (radio.nr.power_control) the uplink reads each user's path loss from its c = g·P_max/N0, so it
    needs the `channel` (a ChannelState: its tx_power_dbm is P_max, its noise_psd_dbm_per_hz N0)."""
    from splitsim.scenarios.types import SHANNON

    if radio.link_model == "shannon":
        return SHANNON, SHANNON
    from splitsim.scenarios.nr import prb_bandwidth_hz

    prb_hz = prb_bandwidth_hz(radio.subcarrier_spacing_khz)
    iot = radio.nr.interference_over_thermal_db
    return (NrRate(nr_carrier(radio), prb_hz, iot, power_control_of(radio, channel)),
            NrRate(nr_carrier(radio, downlink=True), prb_hz, iot))


def power_control_of(radio, channel) -> OpenLoopPowerControl | None:
    """The uplink's open-loop power control for users of this `channel` (None: every user at P_max)."""
    nr = radio.nr
    if nr.power_control == "max_power":
        return None
    if channel is None:
        raise ValueError("open-loop power control needs the channel (its maximum power and noise) to read path losses")
    return OpenLoopPowerControl(p0_dbm=float(nr.p0_dbm), alpha=float(nr.pathloss_compensation),
                                max_tx_power_dbm=float(channel.tx_power_dbm),
                                noise_psd_dbm_per_hz=float(channel.noise_psd_dbm_per_hz),
                                scs_khz=int(radio.subcarrier_spacing_khz))


def equal_share_hz(radio, band_hz: float, parts: int = 1) -> float:
    """The bandwidth of one of `parts` equal shares of `band_hz`: band_hz / parts on Shannon's link; on
    the NR link the whole PRBs of one share, floor(N_RB / parts) of the channel's N_RB (TS 38.101-1
    Table 5.3.2-1; a non-standard width holds floor(band / PRB))."""
    if radio.link_model == "shannon":
        return band_hz / parts
    from .nr import band_prbs, prb_bandwidth_hz

    return (band_prbs(band_hz, radio.subcarrier_spacing_khz) // parts) * prb_bandwidth_hz(radio.subcarrier_spacing_khz)

"""5G NR resource grid facts the scenario checks and the optimizer share (one source).

A physical resource block (PRB) is 12 sub-carriers; how many PRBs a channel carries at a given
sub-carrier spacing is 3GPP TS 38.101-1 (FR1) Table 5.3.2-1, "Maximum transmission bandwidth
configuration N_RB" (the rest of the channel is guard band).
"""

from __future__ import annotations

# 3GPP TS 38.101-1 Table 5.3.2-1: {sub-carrier spacing kHz: {channel bandwidth MHz: N_RB}}
PRBS_PER_CHANNEL: dict[int, dict[int, int]] = {
    15: {5: 25, 10: 52, 15: 79, 20: 106, 25: 133, 30: 160, 35: 188, 40: 216, 45: 242, 50: 270},
    30: {5: 11, 10: 24, 15: 38, 20: 51, 25: 65, 30: 78, 35: 92, 40: 106, 45: 119, 50: 133, 60: 162, 70: 189,
         80: 217, 90: 245, 100: 273},
    60: {10: 11, 15: 18, 20: 24, 25: 31, 30: 38, 35: 44, 40: 51, 45: 58, 50: 65, 60: 79, 70: 93, 80: 107, 90: 121,
         100: 135},
}
SUBCARRIERS_PER_PRB = 12


def prb_bandwidth_hz(scs_khz: int) -> float:
    """Bandwidth of one PRB: 12 sub-carriers x spacing (Hz)."""
    return SUBCARRIERS_PER_PRB * scs_khz * 1e3


def band_prbs(bandwidth_hz: float, scs_khz: int) -> int:
    """The whole PRBs of a band: the channel's N_RB (`prbs_in_channel`), or floor(band / PRB) for a width
    that is not an NR channel bandwidth."""
    prbs = prbs_in_channel(bandwidth_hz, scs_khz)
    return int(bandwidth_hz // prb_bandwidth_hz(scs_khz)) if prbs is None else int(prbs)


def prbs_in_channel(bandwidth_hz: float, scs_khz: int) -> int | None:
    """N_RB of an NR channel of `bandwidth_hz` at `scs_khz`, or None when the table has no such channel."""
    table = PRBS_PER_CHANNEL.get(int(scs_khz), {})
    mhz = bandwidth_hz / 1e6
    return table.get(int(round(mhz))) if abs(mhz - round(mhz)) <= 1e-9 else None

"""`splitsim link FILE --out DIR`: the scenario's NR uplink curve beside Shannon.

For SINR from −10 to 30 dB (0.1 dB steps): the MCS link adaptation chooses, its spectral
efficiency, BLER and residual BLER after HARQ, the goodput per Hz over the TDD pattern and with
every slot uplink, and Shannon's log2(1 + SINR) (scenarios.nr_link). Writes `link.csv`, `link.png`,
`summary.json` (with `peak_rate_bps`: TS 38.306 §4.1.2's approximate maximum uplink rate of the
carrier, before the TDD share) and `report.md`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd

from splitsim.scenarios import Problem, Scenario
from splitsim.scenarios.nr import PRBS_PER_CHANNEL, prb_bandwidth_hz, prbs_in_channel
from splitsim.scenarios.nr_tbs import peak_rate_bps

from .outputs import write_json, write_resolved_scenario
from .report import Report

SINR_DB = np.round(np.arange(-10.0, 30.0 + 1e-9, 0.1), 10)
REPORTED_SINR_DB = (0.0, 5.0, 10.0, 15.0, 20.0)


def link_problems(scenario: Scenario) -> list[Problem]:
    """What `splitsim link` cannot compute for this scenario: one problem each."""
    out = []
    scs = scenario.radio.subcarrier_spacing_khz
    if scs is None:
        out.append(Problem("radio.subcarrier_spacing_khz", "the NR link needs a numerology: set it to 15, 30 or 60",
                           None))
    elif _carrier_prbs(scenario) < 1:
        out.append(Problem("radio.uplink_main_bandwidth_hz", f"holds no whole PRB of {prb_bandwidth_hz(scs):g} Hz",
                           scenario.radio.uplink_main_bandwidth_hz))
    elif _carrier_prbs(scenario) > 275:
        out.append(Problem("radio.uplink_main_bandwidth_hz", f"holds {_carrier_prbs(scenario)} PRBs at {scs} kHz, "
                           "more than an NR carrier's 275", scenario.radio.uplink_main_bandwidth_hz))
    if importlib.util.find_spec("sionna") is None:
        out.append(Problem("radio.nr", "the NR link model needs sionna-no-rt (pip install 'splitsim[nr]')", None))
    return out


def _carrier_prbs(scenario: Scenario) -> int:
    """N_RB of the uplink carrier: TS 38.101-1's for a standard channel, else the whole PRBs that fit."""
    radio = scenario.radio
    standard = prbs_in_channel(radio.uplink_main_bandwidth_hz, radio.subcarrier_spacing_khz)
    if standard is not None:
        return standard
    return int(radio.uplink_main_bandwidth_hz // prb_bandwidth_hz(radio.subcarrier_spacing_khz))


def nr_uplink(scenario: Scenario):
    """The scenario's NR uplink carrier (scenarios.nr_link.nr_carrier) on all its PRBs."""
    from dataclasses import replace

    from splitsim.scenarios.nr_link import nr_carrier

    return replace(nr_carrier(scenario.radio), n_prb=_carrier_prbs(scenario))


def link_table(scenario: Scenario) -> pd.DataFrame:
    curve = nr_uplink(scenario).curve(SINR_DB)
    table = pd.DataFrame(curve)
    shannon = table["shannon_bps_per_hz"]
    table["goodput_over_shannon"] = table["goodput_bps_per_hz"] / shannon
    table["goodput_fdd_over_shannon"] = table["goodput_fdd_bps_per_hz"] / shannon
    return table


def run_link(scenario: Scenario, out: Path, source: str = "") -> list[str]:
    from . import plots

    link = nr_uplink(scenario)
    table = link_table(scenario)
    table.to_csv(out / "link.csv", index=False)
    write_resolved_scenario(scenario, out, source)
    nr = scenario.radio.nr
    peak = peak_rate_bps(link.n_prb, link.scs_khz, nr.mcs_table, nr.layers)
    at = table.set_index(np.round(table["sinr_db"], 6))
    ratios = {f"{s:g}": {"goodput_over_shannon": float(at.loc[s, "goodput_over_shannon"]),
                         "goodput_fdd_over_shannon": float(at.loc[s, "goodput_fdd_over_shannon"]),
                         "mcs_index": int(at.loc[s, "mcs_index"])} for s in REPORTED_SINR_DB}
    summary = {"scenario": scenario.name, "command": "link", "scs_khz": link.scs_khz, "n_prb": link.n_prb,
               "carrier_hz": link.n_prb * prb_bandwidth_hz(link.scs_khz), "tdd_pattern": nr.tdd_pattern,
               "uplink_symbol_share": link.slots.uplink_symbol_share, "mcs_table": link.mcs_table,
               "transform_precoding": nr.transform_precoding, "sending_prbs": link.sending_prbs,
               "peak_rate_bps": peak, "peak_rate_with_tdd_share_bps": peak * link.slots.uplink_symbol_share,
               "at_sinr_db": ratios,
               "max_goodput_bps": float(table["goodput_bps_per_hz"].max() * link.n_prb * prb_bandwidth_hz(link.scs_khz))}
    write_json(out / "summary.json", summary)
    plots.link_curve(table, out / "link.png", title=f"{scenario.name}: NR uplink, {link.scs_khz} kHz, {link.n_prb} PRBs, "
                                                    f"{nr.tdd_pattern}, {link.mcs_table}, BLER target {nr.bler_target:g}")
    report = Report(f"NR uplink of {scenario.name} against Shannon", scenario.name, source)
    report.paragraph(
        f"An NR uplink carrier of {link.n_prb} PRBs at {link.scs_khz} kHz ({summary['carrier_hz'] / 1e6:.2f} MHz), TDD "
        f"pattern {nr.tdd_pattern} (special slot {nr.special_slot_symbols[0]}:{nr.special_slot_symbols[1]}:"
        f"{nr.special_slot_symbols[2]} D:G:U symbols; uplink {100 * link.slots.uplink_symbol_share:.1f} % of the "
        f"symbols), MCS table {link.mcs_table}"
        + (f" (transform precoding: a DFT-s-OFDM PUSCH on {link.sending_prbs} of the PRBs)" if nr.transform_precoding
           else "") + f", {nr.dmrs_re_per_prb} DMRS and {nr.overhead_re_per_prb} overhead REs per "
        f"PRB, {nr.layers} layer(s). Link adaptation: the highest MCS whose BLER (Sionna's PUSCH tables) is at most "
        f"{nr.bler_target:g}; HARQ resends a failed block in a later slot (up to {nr.harq_max_transmissions} "
        "transmissions, no soft combining).")
    report.table(pd.DataFrame([{"SINR (dB)": s, **v} for s, v in ratios.items()]),
                 "Goodput against Shannon's log2(1 + SINR) at a few SINRs:")
    report.paragraph(f"TS 38.306 §4.1.2 peak rate of this carrier: {peak / 1e6:.1f} Mbit/s (FR1 uplink overhead 0.08), "
                     f"{summary['peak_rate_with_tdd_share_bps'] / 1e6:.1f} Mbit/s with the pattern's uplink share.")
    report.figure("link.png", "goodput per Hz against SINR: NR over the TDD pattern, NR with every slot uplink, "
                              "and Shannon")
    report.write(out)
    s10 = ratios["10"]
    return [f"NR uplink, {link.n_prb} PRBs at {link.scs_khz} kHz, {nr.tdd_pattern}: at 10 dB SINR "
            f"{s10['goodput_over_shannon']:.3f} of Shannon ({s10['goodput_fdd_over_shannon']:.3f} with every slot "
            f"uplink, MCS {s10['mcs_index']}); peak rate {peak / 1e6:.1f} Mbit/s", f"-> {out}"]


__all__ = ["PRBS_PER_CHANNEL", "link_problems", "link_table", "nr_uplink", "run_link"]

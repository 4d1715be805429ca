"""The testbed's validation table (issue #24): measured rounds against the simulator's, per case.

Runs `splitsim emulate` on the shipped scenarios (scenarios/emulate_*_minilm.yaml) and on variants
of them — a communication-bound setting (links of a few Mbit/s, as shipped) and a compute-bound one
(100 MHz bands, a 1 Gbit/s backhaul: the links take a few per cent of a round), at two cut layers,
and the headline case under the kernel shaper (refused with the reason where it cannot run) — and prints, per case, the median and worst absolute relative error of the rounds' durations. The
targets (issue #24): median <= 5 % and worst <= 10 % over at least 3 rounds.

    .venv/bin/python benchmarks/bench_emulation.py [--out DIR] [--only SUBSTRING]

About 25 minutes on 2 cores, nothing else running (the devices' compute must not contend with
other work). Writes DIR/cases.csv (default runs/bench_emulation) and each case's full output
(emulation.csv, gantt.png, report.md) under DIR/<case>.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import print_table  # noqa: E402

FAST = {"radio.uplink_main_bandwidth_hz": 100e6, "radio.uplink_fed_bandwidth_hz": 100e6,
        "radio.downlink_bandwidth_hz": 200e6, "radio.backhaul_rate_bps": 1e9}

# (case, scenario file, setting, changes)
CASES = [
    ("sfl-3u-comm-cut1", "emulate_sfl_minilm.yaml", "comm", {}),
    ("sfl-3u-comm-cut3", "emulate_sfl_minilm.yaml", "comm", {"model.cut_layers": [3]}),
    ("sfl-2u-compute-cut1", "emulate_sfl_minilm.yaml", "compute", {**FAST, "cell.users": 2}),
    ("sfl-2u-compute-cut3", "emulate_sfl_minilm.yaml", "compute", {**FAST, "cell.users": 2, "model.cut_layers": [3]}),
    ("sl-3u-comm-cut1", "emulate_sl_minilm.yaml", "comm", {}),
    ("sl-3u-comm-cut3", "emulate_sl_minilm.yaml", "comm", {"model.cut_layers": [3]}),
    ("sl-3u-compute-cut1", "emulate_sl_minilm.yaml", "compute", FAST),
    ("sl-3u-compute-cut3", "emulate_sl_minilm.yaml", "compute", {**FAST, "model.cut_layers": [3]}),
    ("splitllm-2e4u-comm-cut1,3", "emulate_splitllm_minilm.yaml", "comm", {}),
    ("splitllm-2e4u-comm-cut2,4", "emulate_splitllm_minilm.yaml", "comm", {"model.cut_layers": [2, 4]}),
    ("splitllm-1e2u-comm-cut1,3", "emulate_splitllm_minilm.yaml", "comm", {"cell.edge_servers": 1, "cell.users": 2}),
    ("splitllm-1e2u-compute-cut1,3", "emulate_splitllm_minilm.yaml", "compute",
     {**FAST, "cell.edge_servers": 1, "cell.users": 2}),
    ("splitllm-1e2u-compute-cut2,4", "emulate_splitllm_minilm.yaml", "compute",
     {**FAST, "cell.edge_servers": 1, "cell.users": 2, "model.cut_layers": [2, 4]}),
    ("fl-2u-comm", "emulate_fl_minilm.yaml", "comm", {}),
    ("fl-2u-compute", "emulate_fl_minilm.yaml", "compute", FAST),
    # the kernel shaper (root: namespaces, veth, tc token buckets) on the headline case
    ("sfl-3u-comm-cut1-kernel", "emulate_sfl_minilm.yaml", "comm, kernel shaper", {"emulation.shaper": "kernel"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/bench_emulation")
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    args = parser.parse_args()
    import splitsim
    from splitsim.scenarios import InputError, load_scenario

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = Path(__file__).resolve().parent.parent / "scenarios"
    rows = []
    for case, file, setting, changes in CASES:
        if args.only not in case:
            continue
        base = load_scenario(root / file)
        scenario = splitsim.with_changes(base, changes)
        try:
            result = splitsim.run_study(scenario, out / case, overwrite=True)
        except InputError as err:  # e.g. the devices would contend for the cores: say so, go on
            rows.append({"case": case, "scheme": scenario.scheme, "setting": setting,
                         "cut": str(scenario.model.cut_layers), "refused": str(err).splitlines()[0]})
            print(f"{case}: refused: {str(err).splitlines()[0]}", flush=True)
            continue
        m = result.summary["metrics"]
        rows.append({"case": case, "scheme": scenario.scheme, "setting": setting, "cut": str(scenario.model.cut_layers),
                     "users": scenario.cell.users, "rounds": scenario.emulation.rounds,
                     "round_s": m["measured_total_s"] / scenario.emulation.rounds,
                     "median_error_pct": m["round_error_median_pct"], "worst_error_pct": m["round_error_max_pct"],
                     "run_error_pct": 100 * (m["measured_total_s"] / m["predicted_total_s"] - 1)})
        print(f"{case}: median {m['round_error_median_pct']:.2f} %, worst {m['round_error_max_pct']:.2f} %", flush=True)
        pd.DataFrame(rows).to_csv(out / "cases.csv", index=False)
    table = pd.DataFrame(rows)
    table.to_csv(out / "cases.csv", index=False)
    done = table.dropna(subset=["median_error_pct"]) if "median_error_pct" in table else table.iloc[0:0]
    print_table("Measured against simulated round durations (absolute relative error, %)",
                ["case", "setting", "cut", "round (s)", "median %", "worst %", "whole run %"],
                [[r.case, r.setting, r.cut, r.round_s, r.median_error_pct, r.worst_error_pct, r.run_error_pct]
                 for r in done.itertuples()])


if __name__ == "__main__":
    main()

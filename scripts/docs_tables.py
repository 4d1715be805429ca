"""Regenerate the tables in the docs that come from the measured convergence curve and the run on it.

    .venv/bin/python scripts/docs_tables.py [--fig2-measured out/fig2_measured_convergence] [--check]

Each table sits between <!-- name --> and <!-- /name --> in docs/studies/convergence.md and is rewritten
from its source: `measured-rounds-table` and `rounds-interval-table` from the committed curve
(scenarios/data/mrpc_convergence.json), `measured-strategies-table` from a run of
`splitsim run scenarios/fig2_measured_convergence.yaml --out DIR` (scripts/make_examples.sh makes it
in out/fig2_measured_convergence). With --check nothing is written; the exit status is 1 when a table
differs from what its source gives. The tests hold the same tables against the same sources.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "studies" / "convergence.md"
SHIPPED = REPO / "scenarios" / "data" / "mrpc_convergence.json"
INTERVAL_V = (1, 2, 3, 5, 10, 20)


def _pct(x: float) -> str:
    return f"{x:+.1f} %".replace("-", "−")


def measured_rounds_table(curve: dict) -> str:
    """Per V of the grid: every seed's rounds, their mean ± σ, the two forms' fits, the V left out as the
    others predict it; then the held-out check."""
    seeds = curve["settings"]["seeds"]
    target = curve["identity"]["target"]
    runs = {(r["local_steps"], r["seed"]): r for r in curve["runs"]}
    fedsllm, inverse = curve["fit"]["fedsllm"], curve["fit"]["inverse"]
    held = {h["local_steps"]: h for h in curve["holdout"]}
    what = f"rounds to {100 * target:g} %"
    lines = [f"| V (steps per user per round) | {what}, seeds {' / '.join(map(str, seeds))} | mean ± σ | "
             "FedsLLM form | a1 + a2/V | left out, predicted by the others |", "| --- | --- | --- | --- | --- | --- |"]
    for i, row in enumerate(curve["rounds_to_target"]):
        V = row["local_steps"]
        each = " / ".join(_rounds(runs[V, s]) for s in seeds)
        h = held.get(V)
        left_out = f"{h['predicted_rounds']:.1f} ({_pct(h['error_pct'])})" if h else "–"
        lines.append(f"| {V} | {each} | {row['mean_rounds']:.3g} ± {row['sigma_rounds']:.2g} | "
                     f"{fedsllm['predicted'][i]:.1f} | {inverse['predicted'][i]:.1f} | {left_out} |")
    check = curve["check"]
    measured = check.get("measured_rounds")
    if measured:
        V = check["local_steps"]
        at_v = lambda fit: fit["a"] / (1 - 2 ** (-V / fit["v"])) if "v" in fit else fit["a1"] + fit["a2"] / V  # noqa: E731
        p_fedsllm, p_inverse = at_v(fedsllm), at_v(inverse)
        seeds_checked = ", ".join(str(s) for s in check["seeds"])
        rounds = " / ".join(_rounds(r) for r in check["runs"])
        lines.append(f"| **{V:g} (held-out check, seed{'s' if len(check['seeds']) > 1 else ''} {seeds_checked})** | "
                     f"**{rounds}** | | **{p_fedsllm:.1f} ({_pct(100 * (p_fedsllm / measured - 1))})** | "
                     f"{p_inverse:.1f} ({_pct(100 * (p_inverse / measured - 1))}) | |")
    return "\n".join(lines)


def _rounds(run: dict) -> str:
    if run["rounds_to_target"] is None:
        return f"> {run['censored_after']}"
    return str(run["rounds_to_target"])


def rounds_interval_table(path: Path = SHIPPED) -> str:
    """One new seed's rounds and 90 % interval at a few V (splitsim.rounds_to_target)."""
    import splitsim

    lines = ["| V | rounds | 90 % low | 90 % high |", "| --- | --- | --- | --- |"]
    for V in INTERVAL_V:
        answer = splitsim.rounds_to_target(path, V)
        lines.append(f"| {V} | {answer['rounds']:.1f} | {answer['low']:.1f} | {answer['high']:.1f} |")
    return "\n".join(lines)


def measured_strategies_table(folder: Path) -> str:
    """fig2_measured_convergence at 10 dBm: each strategy's V, rounds and delay on the bound and on the
    measured curve (with the measured delay's 90 % interval)."""
    import pandas as pd

    at = lambda name: pd.read_csv(folder / name).query("tx_power_dbm == 10").set_index("strategy")  # noqa: E731
    measured, bound = at("latency_vs_power.csv"), at("latency_vs_power_bound.csv")
    lines = ["| strategy | bound: V, rounds, delay to ε0 | measured: V, rounds, delay to 72 % (90 % of new seeds) |",
             "| --- | --- | --- |"]
    for name in ("proposed", "EB", "FE", "BA"):
        b, m = bound.loc[name], measured.loc[name]
        lines.append(f"| {name} | {b.V:.3g}, {b.I0:.0f}, {b.T_s:,.0f} s | {m.V:.3g}, {m.I0:.1f}, {m.T_s:,.0f} s "
                     f"({m.T_low_90_s:,.0f}–{m.T_high_90_s:,.0f} s) |")
    return "\n".join(lines)


def table_in(page: str, name: str) -> str:
    return page.split(f"<!-- {name} -->")[1].split(f"<!-- /{name} -->")[0].strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fig2-measured", type=Path, default=REPO / "out" / "fig2_measured_convergence")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    curve = json.loads(SHIPPED.read_text())
    tables = {"measured-rounds-table": measured_rounds_table(curve), "rounds-interval-table": rounds_interval_table()}
    if (args.fig2_measured / "latency_vs_power.csv").is_file():
        tables["measured-strategies-table"] = measured_strategies_table(args.fig2_measured)
    else:
        print(f"skipped measured-strategies-table: no run in {args.fig2_measured}", file=sys.stderr)
    page = PAGE.read_text()
    stale = [name for name, table in tables.items() if table_in(page, name) != table]
    if args.check:
        for name in stale:
            print(f"{PAGE.relative_to(REPO)}: {name} differs from its source", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        before, rest = page.split(f"<!-- {name} -->")
        _, after = rest.split(f"<!-- /{name} -->")
        page = f"{before}<!-- {name} -->\n{tables[name]}\n<!-- /{name} -->{after}"
    PAGE.write_text(page)
    print(f"rewrote {', '.join(stale) or 'nothing'} in {PAGE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

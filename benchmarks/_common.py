"""Helpers for the benchmark scripts: timing and a plain-text table."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable


def best_of(fn: Callable[[], object], repeat: int = 3) -> tuple[float, object]:
    """Smallest wall time of `repeat` calls (seconds) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def fig2_scenario(users: int, **sections):
    """The FedsLLM Fig. 2 scenario scaled to `users` (1,200 samples each), sections overridden."""
    from splitsim.scenarios import SCENARIO_DIR, load_scenario, parse_scenario, scenario_to_dict

    base = scenario_to_dict(load_scenario(SCENARIO_DIR / "fedsllm_fig2.yaml"))
    data = {**base, "cell": {**base["cell"], "users": users},
            "workload": {**base["workload"], "dataset_samples": 1200 * users}}
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    return parse_scenario(data)


def print_table(title: str, header: list[str], rows: list[list[object]]) -> None:
    cells = [[str(h) for h in header]] + [[_fmt(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    print(f"\n{title}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    for i, row in enumerate(cells):
        print("  ".join(c.rjust(w) for c, w in zip(row, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e6:
            return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
        return f"{value:.3e}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)

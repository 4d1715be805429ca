"""Test helpers: run the CLI in-process, build small scenarios."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from splitsim.scenarios import Scenario, parse_scenario

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("SPLITSIM_SHARED_DIR", REPO.parent / "shared"))  # the data folder beside the repo


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    """Run `splitsim ARGS` in this process; return (exit status, stdout, stderr)."""
    from splitsim.analysis.cli import main

    old = sys.argv
    sys.argv = ["splitsim", *map(str, args)]
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def small_scenario(**sections) -> Scenario:
    """A quick SFL scenario (few users, few rounds) with sections overridden by keyword."""
    data = {"name": "test", "seed": 1, "cell": {"users": 6}, "workload": {"dataset_samples": 600},
            "theory": {"epsilon0": 0.2}}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_scenario(data)


def integrated_transfer_s(bits: float, start_s: float, bandwidth_hz: float, c_hz: float, track, k: int) -> float:
    """Seconds to send `bits` from `start_s` on a moving cell, integrated here block by block over the
    track's gain factors of user k (Shannon's rate on `bandwidth_hz` at c = g·p/N0 times the factor):
    the oracle the engines' transfers on a ChannelTrack are held against."""
    import numpy as np

    from splitsim.scenarios import fdma_rate_bps

    left, t, block = bits, start_s, track.block_s
    while True:
        b = int(np.floor(t / block))
        rate = float(fdma_rate_bps(bandwidth_hz, c_hz * track.factor(np.array([b]), np.array([k]))[0]))
        room = ((b + 1) * block - t) * rate
        if room >= left:
            return t + left / rate - start_s
        left, t = left - room, (b + 1) * block

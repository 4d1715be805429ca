"""Named random streams derived from the scenario's one seed.

Each consumer asks for its own stream by name, so adding a draw in one place never shifts the
draws of another: `rng_for(seed, "channel")`, `rng_for(seed, "compute")`, ...
"""

from __future__ import annotations

import zlib

import numpy as np


def rng_for(seed: int, stream: str) -> np.random.Generator:
    """A Generator for `stream`, a deterministic function of (seed, stream name)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(zlib.crc32(stream.encode()),))))

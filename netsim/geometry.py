"""Where things are in the cell and what distance costs: positions uniform over the cell, path loss.

The floor below `netsim.channel` (one draw at t = 0) and `netsim.dynamics` (users who move): both
place users and price distance with these two functions.
"""

from __future__ import annotations

import numpy as np

from splitsim.scenarios import CellConfig


def path_loss_db(distance_m: np.ndarray | float, db_at_1km: float = 128.1, db_per_decade: float = 37.6,
                 min_distance_m: float = 1.0) -> np.ndarray:
    """PL(d) = db_at_1km + db_per_decade·log10(d / 1 km) in dB, with d clamped to min_distance_m."""
    d_km = np.maximum(np.asarray(distance_m, dtype=float), min_distance_m) / 1000.0
    return db_at_1km + db_per_decade * np.log10(d_km)


def uniform_in_cell(cell: CellConfig, n: int, rng: np.random.Generator) -> np.ndarray:
    """n positions (n, 2) in metres, uniform over the cell's area (square or disc, centred on 0)."""
    if cell.shape == "square":
        return rng.uniform(-cell.side_m / 2, cell.side_m / 2, size=(n, 2))
    radius = cell.radius_m * np.sqrt(rng.uniform(0.0, 1.0, size=n))
    angle = rng.uniform(0.0, 2 * np.pi, size=n)
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])

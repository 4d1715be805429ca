"""Energy of a simulated run: every activity a user takes part in, at its power, for its duration.

The powers come from the one energy model (optimizer.energy.model): a user's compute at clock
fraction f draws P_full·f^3 (so work of tau0 s at full speed costs P_full·tau0·f^2), an upload
draws the transmit power the allocation chose (p_max unless it lowered it), a downlink the receive
power; the rest of the run the user idles at the idle power. Server, edge and cloud activities
are not on a user's battery.
"""

from __future__ import annotations

import numpy as np

from splitsim.scenarios import EnergyInputs
from splitsim.scenarios.types import clock_power_w

from .engine import ACTIVITIES, KIND

USER_COMPUTE = ("client_forward", "client_backward", "client_train")
USER_UPLINK = ("uplink_activation", "uplink_adapter")
USER_DOWNLINK = ("downlink_gradient", "downlink_adapter")
CATEGORY = {**{k: "compute" for k in USER_COMPUTE}, **{k: "uplink" for k in USER_UPLINK},
            **{k: "downlink" for k in USER_DOWNLINK}}


def activity_power_w(energy: EnergyInputs, users: int, power_main_fraction: np.ndarray | None = None,
                     power_fed_fraction: np.ndarray | None = None,
                     cpu_fraction: np.ndarray | None = None) -> np.ndarray:
    """(len(ACTIVITIES), K): the power (W) a user draws during each activity kind.

    The activation upload (to the main server or an edge) is at power_main_fraction·p_max, the
    adapter upload at power_fed_fraction·p_max (None: p_max)."""
    ones = np.ones(users)
    f = ones if cpu_fraction is None else cpu_fraction
    power = np.zeros((len(ACTIVITIES), users))
    for name in USER_COMPUTE:
        power[KIND[name]] = clock_power_w(energy.client_power_w, f)
    power[KIND["uplink_activation"]] = energy.max_tx_power_w * (ones if power_main_fraction is None
                                                                else power_main_fraction)
    power[KIND["uplink_adapter"]] = energy.max_tx_power_w * (ones if power_fed_fraction is None
                                                            else power_fed_fraction)
    for name in USER_DOWNLINK:
        power[KIND[name]] = energy.receive_power_w
    return power


def user_energy_from_busy(busy_s: np.ndarray, power_w: np.ndarray, total_s: float,
                          idle_power_w: float) -> dict[str, np.ndarray]:
    """Each user's energy (K,) by category (compute, uplink, downlink, idle, total) from the seconds
    it spent in each activity kind (`busy_s`, (kinds, K)) and the run's length."""
    out = {f"{c}_j": np.zeros(busy_s.shape[1]) for c in ("compute", "uplink", "downlink")}
    busy_user = np.zeros(busy_s.shape[1])
    for name, category in CATEGORY.items():
        k = KIND[name]
        out[f"{category}_j"] += busy_s[k] * power_w[k]
        busy_user += busy_s[k]
    out["idle_j"] = idle_power_w * np.maximum(total_s - busy_user, 0.0)
    out["total_j"] = out["compute_j"] + out["uplink_j"] + out["downlink_j"] + out["idle_j"]
    return out


def energy_summary(per_user: dict[str, np.ndarray], rounds: float) -> dict:
    """The summary.json block: totals by category, the worst and mean user, per user and round."""
    total = per_user["total_j"]
    worst = int(np.argmax(total))
    return {"per_category_j": {k[:-2]: float(v.sum()) for k, v in per_user.items() if k != "total_j"},
            "total_j": float(total.sum()), "mean_user_j": float(total.mean()),
            "worst_user": {"user": worst, "total_j": float(total[worst])},
            "per_user_per_round_j": float(total.mean() / rounds) if rounds > 0 else None,
            "per_user_j": [float(v) for v in total]}

"""Plots of study tables (matplotlib, headless). Each function takes a tidy table and a path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

STRATEGY_STYLE = {"proposed": ("C0", "o"), "EB": ("C1", "s"), "FE": ("C2", "^"), "BA": ("C3", "v")}
STRATEGY_LABEL = {"proposed": "proposed (bandwidth + eta)", "EB": "EB (equal bandwidth, eta opt.)",
                  "FE": "FE (eta = 0.1, bandwidth opt.)", "BA": "BA (eta = 0.1, equal bandwidth)"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_vs_power(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """One curve per strategy: training delay (s, log scale) against max transmit power (dBm)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for strategy, group in table.groupby("strategy", sort=False):
        color, marker = STRATEGY_STYLE.get(strategy, (None, "o"))
        g = group.sort_values("tx_power_dbm")
        ax.plot(g["tx_power_dbm"], g["T_s"], marker=marker, color=color, label=STRATEGY_LABEL.get(strategy, strategy))
    ax.set_yscale("log")
    ax.set_xlabel("maximum transmit power per user (dBm)")
    ax.set_ylabel("training delay T (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    ax.set_title(title or "Training delay vs transmit power")
    return _save(fig, path)


def reduction_vs_theory(table: pd.DataFrame, path: Path) -> Path:
    """Mean reduction of the proposed scheme vs BA against L, one line per gamma/L."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ratio, group in table.groupby("gamma_over_L"):
        g = group.sort_values("lipschitz_L")
        axes[0].plot(g["lipschitz_L"], g["reduction_vs_BA_pct"], marker="o", label=f"gamma/L = {ratio:g}")
        axes[1].plot(g["v"], g["reduction_vs_BA_pct"], marker="o", label=f"gamma/L = {ratio:g}")
    axes[0].set_xlabel("Lipschitz constant L")
    axes[1].set_xlabel("v = 2/((2 - L delta) delta gamma)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("mean delay reduction vs BA (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("How the proposed scheme's gain depends on the convergence constants")
    return _save(fig, path)

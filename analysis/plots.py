"""Plots of study tables (matplotlib, headless). Each function takes a tidy table and a path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

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


def scheme_comparison(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Three panels: training delay, user traffic per round, peak memory per tier, per scheme."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    labels = list(table["label"])
    x = np.arange(len(labels))
    axes[0].bar(x, table["delay_s"], color="C0")
    axes[0].set_ylabel("training delay (s)")
    axes[1].bar(x, table["user_traffic_gib_per_round"], color="C1")
    axes[1].set_ylabel("user-side traffic per round (GiB)")
    tiers = [t for t in ("user", "edge", "cloud", "server") if table[f"{t}_memory_gib"].notna().any()]
    width = 0.8 / max(len(tiers), 1)
    for i, tier in enumerate(tiers):
        axes[2].bar(x + (i - (len(tiers) - 1) / 2) * width, table[f"{tier}_memory_gib"].fillna(0), width, label=tier)
    axes[2].set_ylabel("peak memory per device (GiB)")
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xticks(x, labels, rotation=15)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle(title or "Scheme comparison")
    return _save(fig, path)


def cut_layer_sfl(table: pd.DataFrame, path: Path, limit_gib: float, title: str = "") -> Path:
    """SFL / SL cut what-if: delay per strategy, user memory with the device limit, user traffic."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    delay_cols = [c for c in table.columns if c.startswith("T_") and c.endswith("_s")]
    for col in delay_cols:
        name = col[2:-2]
        color, marker = STRATEGY_STYLE.get(name, (None, "o"))
        axes[0].plot(table["cut"], table[col], marker=marker, color=color, label=STRATEGY_LABEL.get(name, name))
    infeasible = table[~table["feasible"]]
    if len(infeasible) and delay_cols:
        axes[0].scatter(infeasible["cut"], infeasible[delay_cols[0]], s=120, facecolors="none", edgecolors="k",
                        label="exceeds the user memory limit")
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training delay T (s)")
    axes[0].legend(fontsize=7)
    axes[1].plot(table["cut"], table["user_memory_gib"], marker="o")
    axes[1].axhline(limit_gib, color="r", linestyle="--", label=f"user device limit {limit_gib:g} GiB")
    axes[1].set_ylabel("user peak memory (GiB)")
    axes[1].legend(fontsize=8)
    axes[2].plot(table["cut"], table["user_gflop_per_sample"], marker="o", color="C2")
    axes[2].set_ylabel("user compute (GFLOP per sample)")
    ax2 = axes[2].twinx()
    ax2.plot(table["cut"], table["user_traffic_gib_per_round"], marker="s", color="C4")
    ax2.set_ylabel("user traffic per round (GiB)", color="C4")
    for ax in axes:
        ax.set_xlabel("cut layer (blocks on the user)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    fig.suptitle(title or "Cut-layer what-if")
    return _save(fig, path)


def cut_layer_splitllm(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """SplitLLM cut pairs: delay heatmap over (user cut, edge cut), infeasible pairs crossed out."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    grid = table.pivot(index="cut_edge", columns="cut_user", values="delay_s")
    im = axes[0].imshow(grid.values, origin="lower", aspect="auto", cmap="viridis")
    axes[0].set_xticks(range(len(grid.columns)), grid.columns)
    axes[0].set_yticks(range(len(grid.index)), grid.index)
    axes[0].set_xlabel("user | edge cut (blocks on the user)")
    axes[0].set_ylabel("edge | cloud cut")
    fig.colorbar(im, ax=axes[0], label="training delay (s)")
    bad = table[~table["feasible"]]
    for row in bad.itertuples():
        i = list(grid.index).index(row.cut_edge)
        j = list(grid.columns).index(row.cut_user)
        axes[0].plot(j, i, "rx", markersize=10)
    for tier, color in (("user", "C0"), ("edge", "C1"), ("cloud", "C2")):
        col = f"{tier}_memory_gib"
        by_cut = table.groupby("cut_user" if tier == "user" else "cut_edge")[col].max()
        axes[1].plot(by_cut.index, by_cut.values, marker="o", color=color, label=f"{tier} (max over the other cut)")
    axes[1].set_xlabel("cut layer")
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_ylabel("peak memory (GiB)")
    axes[1].grid(True, alpha=0.3)
    axes[1].legend(fontsize=8)
    fig.suptitle(title or "SplitLLM cut pairs (red x: over a device memory limit)")
    return _save(fig, path)


def joint_cut(table: pd.DataFrame, best_cut: int, path: Path, title: str = "") -> Path:
    """Optimal delay T*(cut) of the proposed allocation, the joint optimum marked."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    ok = table[table["feasible"]]
    ax.plot(table["cut"], table["T_proposed_s"], marker="o", color="C0", label="proposed: bandwidth + eta optimised")
    bad = table[~table["feasible"]]
    if len(bad):
        ax.scatter(bad["cut"], bad["T_proposed_s"], marker="x", color="r", s=80, label="over the user memory limit")
    best = ok[ok["cut"] == best_cut]
    ax.scatter(best["cut"], best["T_proposed_s"], s=200, facecolors="none", edgecolors="k", linewidths=2,
               label=f"joint optimum: cut {best_cut}")
    ax.set_yscale("log")
    ax.set_xlabel("cut layer (blocks on the user)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training delay T* (s)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Joint choice of cut layer, bandwidth and eta")
    return _save(fig, path)


def time_to_accuracy(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Accuracy against simulated wall-clock time, one curve per scheme, one panel per partition."""
    parts = list(dict.fromkeys(table["partition"]))
    longest = float(table["simulated_time_s"].max())
    unit, scale = ("h", 3600.0) if longest > 7200 else ("min", 60.0) if longest > 120 else ("s", 1.0)
    fig, axes = plt.subplots(1, len(parts), figsize=(6.2 * len(parts), 4.4), squeeze=False)
    colors = {"splitllm": "C0", "sfl": "C1", "fl": "C2", "sl": "C3"}
    labels = {"splitllm": "SplitLLM", "sfl": "SFL (FedsLLM)", "fl": "FL", "sl": "SL"}
    for ax, how in zip(axes[0], parts):
        for scheme, rows in table[table["partition"] == how].groupby("scheme", sort=False):
            rows = rows.sort_values("round")
            ax.plot(rows["simulated_time_s"] / scale, rows["eval_accuracy"], marker="o", color=colors.get(scheme),
                    label=labels.get(scheme, scheme))
        ax.set_xlabel(f"simulated wall-clock time ({unit})")
        ax.set_ylabel("evaluation accuracy")
        ax.set_title("IID" if how == "iid" else "non-IID (Dirichlet)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title or "Time to accuracy")
    return _save(fig, path)

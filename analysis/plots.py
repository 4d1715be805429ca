"""Plots of study tables (matplotlib, headless). Each function takes a tidy table and a path."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

STRATEGY_STYLE = {"proposed": ("C0", "o"), "EB": ("C1", "s"), "FE": ("C2", "^"), "BA": ("C3", "v"),
                  "proposed_replan": ("C4", "P"), "robust": ("C5", "X")}
STRATEGY_LABEL = {"proposed": "proposed (bandwidth + eta)", "EB": "EB (equal bandwidth, eta opt.)",
                  "FE": "FE (eta = 0.1, bandwidth opt.)", "BA": "BA (eta = 0.1, equal bandwidth)"}
STRATEGY_SHORT = {"proposed": "bandwidth + eta opt.", "EB": "equal bw, eta opt.", "FE": "eta = 0.1, bw opt.",
                  "BA": "eta = 0.1, equal bw", "proposed_replan": "re-planned", "robust": "planned for the walk"}


def _save(fig, path: Path, rect: tuple[float, float, float, float] = (0, 0, 1, 1)) -> Path:
    """Lay out (inside `rect`, in figure fractions: room left for a figure legend) and write."""
    fig.tight_layout(rect=rect)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_vs_power(table: pd.DataFrame, path: Path, title: str = "", beside: pd.DataFrame | None = None,
                     labels: tuple[str, str] = ("", "")) -> Path:
    """One curve per strategy: training delay (s, log scale) against max transmit power (dBm);
    ticks at the swept powers. With `beside` (the same cell on another link model), its curves
    dashed and hollow, each table's strategies labelled with `labels`."""
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for frame, style, suffix in ((table, "-", labels[0]), (beside, "--", labels[1])):
        if frame is None:
            continue
        for strategy, group in frame.groupby("strategy", sort=False):
            color, marker = STRATEGY_STYLE.get(strategy, (None, "o"))
            g = group.sort_values("tx_power_dbm")
            ax.plot(g["tx_power_dbm"], g["T_s"], style, marker=marker, color=color,
                    mfc=color if style == "-" else "none",
                    label=STRATEGY_LABEL.get(strategy, strategy) + (f" ({suffix})" if suffix else ""))
            if "T_low_90_s" in g:  # measured convergence: one new seed's delay, 90 % of the time
                ax.fill_between(g["tx_power_dbm"], g["T_low_90_s"], g["T_high_90_s"], color=color, alpha=0.12, lw=0)
    if "T_low_90_s" in table:
        ax.fill_between([], [], [], color="0.5", alpha=0.25, lw=0, label="90 % of new seeds (measured convergence)")
    powers = sorted(table["tx_power_dbm"].unique())
    if len(powers) <= 12:
        ax.set_xticks(powers, [f"{p:g}" for p in powers])
    ax.set_yscale("log")
    ax.set_xlabel("maximum transmit power per user (dBm)")
    ax.set_ylabel("training delay T (s, log scale)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "Training delay against the users' transmit power", fontsize=10)
    return _save(fig, path)


def reduction_vs_theory(table: pd.DataFrame, path: Path) -> Path:
    """Mean reduction of the proposed scheme vs BA against L, one line per γ/L; and against v."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.6))
    for ratio, group in table.groupby("gamma_over_L"):
        g = group.sort_values("lipschitz_L")
        axes[0].plot(g["lipschitz_L"], g["reduction_vs_BA_pct"], marker="o", label=f"γ/L = {ratio:g}")
        axes[1].plot(g["v"], g["reduction_vs_BA_pct"], marker="o", label=f"γ/L = {ratio:g}")
    axes[0].set_xlabel("Lipschitz constant L")
    axes[1].set_xlabel("v = 2 / ((2 − Lδ)·δ·γ)  (local iterations per log2(1/η))")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel("mean delay reduction vs BA (%)")
        ax.grid(True, alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("How the proposed allocation's gain over BA depends on the convergence constants L and γ",
                 fontsize=10)
    return _save(fig, path, rect=(0, 0.06, 1, 1))


SCHEME_COLOR = {"SplitLLM": "C0", "SFL (FedsLLM)": "C1", "FL": "C2", "SL": "C3"}
TIER_STYLE = {"user": ("#4c72b0", "//"), "edge": ("#dd8452", ""), "cloud": ("#55a868", ".."),
              "server": ("#8c564b", "xx")}


def _bar_labels(ax, bars, values, fmt="{:.3g}") -> None:
    for bar, value in zip(bars, values):
        if value == value and value > 0:
            ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                        ha="center", va="bottom", fontsize=7, xytext=(0, 2), textcoords="offset points")


def scheme_comparison(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Three panels: training delay, user traffic per round (one colour per scheme, labelled bars),
    and peak memory per device of every tier on a log axis (so a 0.1 GiB user shows beside a 30 GiB
    server), hatched per tier."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.6))
    labels = list(table["label"])
    x = np.arange(len(labels))
    colors = [SCHEME_COLOR.get(label, "0.5") for label in labels]
    bars = axes[0].bar(x, table["delay_s"], color=colors)
    _bar_labels(axes[0], bars, table["delay_s"], "{:,.0f} s")
    axes[0].set_ylabel("training delay (s)")
    bars = axes[1].bar(x, table["user_traffic_gib_per_round"], color=colors)
    _bar_labels(axes[1], bars, table["user_traffic_gib_per_round"], "{:.3g}")
    axes[1].set_ylabel("user-side traffic per round and user (GiB)")
    tiers = [t for t in ("user", "edge", "cloud", "server") if table[f"{t}_memory_gib"].notna().any()]
    width = 0.8 / max(len(tiers), 1)
    for i, tier in enumerate(tiers):
        color, hatch = TIER_STYLE[tier]
        values = table[f"{tier}_memory_gib"]
        bars = axes[2].bar(x + (i - (len(tiers) - 1) / 2) * width, values.fillna(0), width, color=color,
                           hatch=hatch, edgecolor="white", label=tier)
        _bar_labels(axes[2], bars, values)
    axes[2].set_yscale("log")
    axes[2].set_ylabel("peak memory of one device (GiB, log scale)")
    axes[2].legend(fontsize=8, title="tier", title_fontsize=8)
    for ax in axes:
        ax.set_xticks(x, labels, rotation=15)
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.margins(y=0.12)
    fig.suptitle(title or "Scheme comparison")
    return _save(fig, path)


def cut_layer_sfl(table: pd.DataFrame, path: Path, limits_gib: dict[str, float], title: str = "") -> Path:
    """SFL / SL cut what-if, four panels against the cut: delay per strategy (infeasible cuts
    crossed), peak memory of every tier with its device limit, user compute, user traffic."""
    fig, grid_axes = plt.subplots(2, 2, figsize=(11, 8.6))
    axes = grid_axes.ravel()
    delay_cols = [c for c in table.columns if c.startswith("T_") and c.endswith("_s")]
    for col in delay_cols:
        name = col[2:-2]
        color, marker = STRATEGY_STYLE.get(name, ("C0", "o"))
        axes[0].plot(table["cut"], table[col], marker=marker, color=color, label=STRATEGY_LABEL.get(name, name))
    infeasible = table[~table["feasible"]]
    for ax in axes:  # cuts where a tier does not fit: shaded bands, so that no marker hides a curve
        for i, cut in enumerate(infeasible["cut"]):
            ax.axvspan(cut - 0.5, cut + 0.5, color="0.88", zorder=0, lw=0,
                       label="a tier over its device's usable memory" if ax is axes[0] and i == 0 else None)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("training delay T (s, log scale)")
    axes[0].set_title("delay", fontsize=10)

    for tier, limit in limits_gib.items():
        col = f"{tier}_memory_gib"
        if col not in table:
            continue
        color, _ = TIER_STYLE[tier]
        axes[1].plot(table["cut"], table[col], marker="o", color=color, label=f"{tier}")
        axes[1].axhline(limit, color=color, linestyle="--", linewidth=1, label=f"{tier} device, usable: {limit:.3g} GiB")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("peak memory of one device (GiB, log scale)")
    axes[1].set_title("memory per tier", fontsize=10)

    axes[2].plot(table["cut"], table["user_gflop_per_sample"], marker="o", color="C2")
    axes[2].set_ylabel("user compute (GFLOP per sample)")
    axes[2].set_title("user compute", fontsize=10)
    axes[2].set_ylim(bottom=0)
    axes[3].plot(table["cut"], table["user_traffic_gib_per_round"], marker="s", color="C4")
    axes[3].set_ylim(0, max(float(table["user_traffic_gib_per_round"].max()) * 1.25, 1e-9))
    per_iteration = "user_traffic_gib_per_iteration" in table  # SFL: a round is the proposed allocation's V steps
    axes[3].set_ylabel("user traffic per round (GiB)" + ("\n(V local iterations of the proposed allocation)"
                                                          if per_iteration else "\n(one local epoch)"))
    axes[3].set_title("user traffic (activations + gradients)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("cut layer (blocks on the user)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = [], []
    for ax in axes[:2]:  # one legend under the panels: none sits on a curve
        h, lab = ax.get_legend_handles_labels()
        handles, labels = handles + h, labels + lab
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title or "Cut-layer what-if")
    return _save(fig, path, rect=(0, 0.07, 1, 1))


def cut_layer_splitllm(table: pd.DataFrame, path: Path, title: str = "",
                       limits_gib: dict[str, float] | None = None) -> Path:
    """SplitLLM cut pairs: delay heatmap over (user cut, edge cut), infeasible pairs crossed out;
    each tier's memory against the cut that bounds it, with its device limit dashed."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.8))
    grid = table.pivot(index="cut_edge", columns="cut_user", values="delay_s")
    axes[0].set_facecolor("0.93")  # pairs that are no split (the edge cut must lie above the user cut)
    im = axes[0].imshow(np.ma.masked_invalid(grid.values), origin="lower", aspect="auto", cmap="viridis")
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
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    axes[0].legend(handles=[Line2D([], [], color="r", marker="x", ls="", label="a tier over its device's usable memory"),
                            Patch(facecolor="0.93", label="no pair: the edge | cloud cut must exceed the user's")],
                   fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, frameon=False)
    for tier in ("user", "edge", "cloud"):
        color, _ = TIER_STYLE[tier]
        col = f"{tier}_memory_gib"
        by_cut = table.groupby("cut_user" if tier == "user" else "cut_edge")[col].max()
        against = ("against the user | edge cut" if tier == "user" else
                   "against the edge | cloud cut, max over the user | edge cut" if tier == "edge" else
                   "against the edge | cloud cut")
        axes[1].plot(by_cut.index, by_cut.values, marker="o", color=color, label=f"{tier}, {against}")
        if limits_gib and tier in limits_gib:
            axes[1].axhline(limits_gib[tier], color=color, linestyle="--", linewidth=1,
                            label=f"{tier} device, usable: {limits_gib[tier]:.3g} GiB")
    axes[1].set_yscale("log")
    axes[1].set_xlabel("cut layer: the user | edge cut for the user tier, the edge | cloud cut for edge and cloud")
    cuts = sorted(set(table["cut_user"]) | set(table["cut_edge"]))
    axes[1].set_xticks(cuts, [str(c) for c in cuts])  # the cuts themselves, not a locator's round numbers
    axes[1].set_ylabel("peak memory of one device (GiB, log scale)")
    axes[1].grid(True, alpha=0.3)
    axes[1].legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.suptitle(title or "SplitLLM cut pairs")
    return _save(fig, path)


def joint_cut(table: pd.DataFrame, choice: dict, path: Path, title: str = "") -> Path:
    """The joint choice in three panels: optimal delay T*(cut) (linear axis, optimum circled,
    infeasible cuts crossed), the optimal eta per cut, and the bandwidth each user gets at the
    optimum against its channel (b_s to the main server, b_c to the fed server)."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.6))
    best_cut = choice["cut"]
    ok, bad = table[table["feasible"]], table[~table["feasible"]]
    ax = axes[0]
    ax.plot(table["cut"], table["T_proposed_s"], marker="o", color="C0", label="T* (bandwidth + η optimised)")
    for panel in axes[:2]:  # cuts where a tier does not fit: shaded, so that no marker hides the curve
        for i, cut in enumerate(bad["cut"]):
            panel.axvspan(cut - 0.5, cut + 0.5, color="0.88", zorder=0, lw=0,
                          label="a tier over its device's usable memory" if panel is ax and i == 0 else None)
    best = ok[ok["cut"] == best_cut]
    ax.scatter(best["cut"], best["T_proposed_s"], s=220, facecolors="none", edgecolors="k", linewidths=2, zorder=3,
               label=f"joint optimum: cut {best_cut}, T* = {choice['T_s']:,.0f} s")
    ax.set_ylabel("training delay T* (s)")
    ax.set_title("optimal delay per cut", fontsize=10)
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(table["cut"], table["eta_proposed"], marker="o", color="C1")
    ax.scatter([best_cut], [choice["eta"]], s=220, facecolors="none", edgecolors="k", linewidths=2, zorder=3)
    ax.set_ylabel("optimal local accuracy η*")
    ax.set_title("optimal η per cut", fontsize=10)
    for ax in axes[:2]:
        ax.set_xlabel("cut layer (blocks on the user)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    ax = axes[2]
    users = choice["allocation"]["users"]
    snr_db = 10 * np.log10(np.asarray([u["c_hz"] for u in choice["inputs"]["users"]], dtype=float))
    order = np.argsort(snr_db)
    b_s = np.asarray([u["b_s_hz"] for u in users])[order] / 1e6
    b_c = np.asarray([u["b_c_hz"] for u in users])[order] / 1e6
    same = np.allclose(b_s, b_c, rtol=1e-3)
    # b_c drawn first, large and hollow, so that b_s on top never hides it (they coincide when the
    # two pools are equal and each user's two uploads are priced alike)
    ax.plot(snr_db[order], b_c, marker="s", ms=7, mfc="none", ls="--", color="C2",
            label="b_c (adapter, fed server)" + (": equal to b_s" if same else ""))
    ax.plot(snr_db[order], b_s, marker="o", ms=3, color="C0", label="b_s (activations, main server)")
    ax.set_xlabel("user's channel g·p/N0 (dB·Hz)")
    ax.set_ylabel("bandwidth at the optimum (MHz)")
    ax.set_title(f"bandwidth per user at cut {best_cut}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.suptitle(title or "Joint choice of cut layer, bandwidth and eta")
    return _save(fig, path)


_UNITS = (("_hz", 1e6, "MHz"), ("_dbm", 1.0, "dBm"), ("_bps", 1e6, "Mbit/s"), ("_s", 1.0, "s"), ("_m", 1.0, "m"),
          ("_j", 1.0, "J"), ("_gib", 1.0, "GiB"), ("_w", 1.0, "W"))


def field_label(path: str) -> tuple[str, float, str]:
    """(words, scale, unit) of a dotted scenario field: radio.uplink_main_bandwidth_hz -> ("uplink main
    bandwidth", 1e6, "MHz"), so that values show as 10 MHz rather than 1e+07."""
    name = path.split(".")[-1]
    for suffix, scale, unit in _UNITS:
        if name.endswith(suffix):
            return name.removesuffix(suffix).replace("_", " "), scale, unit
    return name.replace("_", " "), 1.0, ""


def field_value(path: str, value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    _, scale, unit = field_label(path)
    return f"{value / scale:,.6g}" + (f" {unit}" if unit else "")


def sweep_metrics(table: pd.DataFrame, paths: list[str], metrics: list[str], path: Path, title: str = "",
                  meaning: str = "") -> Path:
    """A sweep's headline metrics against its first swept field: one colour per metric, one line
    style per value of the other swept fields; `meaning` (what the headline delays are) goes under
    the title. Non-numeric values sit at evenly spaced positions; integer fields get integer ticks."""
    # list-valued fields (cut_layers, gradient_checkpointing, ...) are labels: group and place them by text
    table = table.assign(**{p: table[p].map(lambda v: str(v) if isinstance(v, (list, tuple, dict)) else v)
                            for p in paths})
    fig, ax = plt.subplots(figsize=(7.4, 4.8))
    x_path, others = paths[0], paths[1:]
    x_values = list(dict.fromkeys(table[x_path]))
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x_values)
    position = (lambda v: v) if numeric else (lambda v: x_values.index(v))  # noqa: E731
    groups = table.groupby(others, sort=False) if others else [((), table)]
    linestyles = ["-", "--", ":", "-."]
    for g, (key, rows) in enumerate(groups):
        key = key if isinstance(key, tuple) else (key,)
        suffix = ", ".join(f"{field_label(p)[0]} = {field_value(p, k)}" for p, k in zip(others, key))
        rows = rows.sort_values(x_path) if numeric else rows
        for m, metric in enumerate(metrics):
            who = metric.removeprefix("delay_").removesuffix("_s") if metric.startswith("delay_") else metric
            label = who.replace("_", " ") + (f" ({suffix})" if suffix else "")
            x_scale = field_label(x_path)[1] if numeric else 1.0
            ax.plot([position(v) / x_scale for v in rows[x_path]], rows[metric], marker="o", color=f"C{m % 10}",
                    linestyle=linestyles[g % len(linestyles)], label=label)
    if not numeric:
        ax.set_xticks(range(len(x_values)), [str(v) for v in x_values])
    elif all(isinstance(v, int) for v in x_values):
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    values = table[metrics].to_numpy(dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    if len(values) and values.max() / values.min() > 20:
        ax.set_yscale("log")
    words, _, unit = field_label(x_path)
    ax.set_xlabel(f"{words}" + (f" ({unit})" if unit and numeric else "") + f"   [{x_path}]")
    ax.set_ylabel("training delay (s)" if all(m.startswith("delay_") for m in metrics) else "value")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False, handlelength=4)
    ax.set_title((title or "Sweep") + (f"\n{meaning}" if meaning else ""), fontsize=9)
    return _save(fig, path)


def time_to_accuracy(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Accuracy against simulated wall-clock time, one curve per scheme, one panel per partition."""
    parts = list(dict.fromkeys(table["partition"]))
    longest = float(table["simulated_time_s"].max())
    unit, scale = ("h", 3600.0) if longest > 7200 else ("min", 60.0) if longest > 120 else ("s", 1.0)
    fig, axes = plt.subplots(1, len(parts), figsize=(6.2 * len(parts), 4.4), squeeze=False, sharey=True)
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


def async_vs_sync(curves: pd.DataFrame, staleness: pd.DataFrame, target: float, path: Path, title: str = "") -> Path:
    """Left: evaluation accuracy against simulated time, one curve per variant (sync, FedBuff at each
    buffer size), the target dashed and each variant's first crossing marked. Right: how many updates
    arrived how stale (server versions between download and upload), per FedBuff variant."""
    longest = float(curves["simulated_time_s"].max())
    unit, scale = ("h", 3600.0) if longest > 7200 else ("min", 60.0) if longest > 120 else ("s", 1.0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [1.6, 1]})
    names = list(dict.fromkeys(curves["variant"]))
    colors = {name: f"C{i}" for i, name in enumerate(names)}

    def label(name: str) -> str:
        return "synchronous FedAvg" if name == "sync" else f"FedBuff, buffer {name.split('_')[1]}"

    for name in names:
        rows = curves[curves["variant"] == name].sort_values("round")
        left.plot(rows["simulated_time_s"] / scale, rows["eval_accuracy"], color=colors[name], lw=1.4,
                  marker="o" if len(rows) <= 40 else None, markersize=3, label=label(name))
        hit = rows[rows["eval_accuracy"] >= target]
        if len(hit):
            left.plot(hit["simulated_time_s"].iloc[0] / scale, hit["eval_accuracy"].iloc[0], marker="*", ms=13,
                      color=colors[name], mec="black", mew=0.6, zorder=5)
    left.axhline(target, ls="--", color="0.4", lw=1, label=f"target {target:g} (star: first reached)")
    left.set_xlabel(f"simulated wall-clock time ({unit})")
    left.set_ylabel("evaluation accuracy")
    left.grid(True, alpha=0.3)
    left.legend(fontsize=8, loc="lower right")
    fedbuff = [n for n in names if n != "sync"]
    width = 0.8 / max(len(fedbuff), 1)
    for i, name in enumerate(fedbuff):
        mine = staleness[staleness["variant"] == name]
        right.bar(mine["staleness"] + (i - (len(fedbuff) - 1) / 2) * width, mine["updates"] / mine["updates"].sum(),
                  width=width, color=colors[name], label=label(name))
    right.set_xlabel("staleness of an update (server versions)")
    right.set_ylabel("share of the updates")
    right.set_title("FedBuff's updates (synchronous FedAvg's are all fresh: 0)", fontsize=9)
    right.grid(True, axis="y", alpha=0.3)
    if fedbuff:
        right.legend(fontsize=8)
        right.set_xticks(range(int(staleness["staleness"].max()) + 1))
    fig.suptitle(title or "Asynchronous against synchronous FL", fontsize=11)
    return _save(fig, path)


def delay_energy(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Pareto fronts: training delay (s) against the worst user's and the mean user's energy (J).

    Solid: the proposed allocation swept over per-user budgets (bandwidth, eta, transmit power and
    CPU clock chosen). Dotted: each strategy at full power and clock, one point per maximum transmit
    power (the proposed one's points labelled in dBm)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.8), sharey=True)
    handles = {}
    for (strategy, mode), group in table.groupby(["strategy", "mode"], sort=False):
        color, marker = STRATEGY_STYLE.get(strategy, (None, "o"))
        if mode == "budget":
            label = "proposed under an energy budget (bandwidth, eta, power, clock)"
        else:
            label = STRATEGY_LABEL.get(strategy, strategy) + ", full power: one point per max power"
        for ax, col in zip(axes, ("worst_user_j", "mean_user_j")):
            g = group.sort_values("energy_budget_j" if mode == "budget" else "tx_power_dbm")
            (line,) = ax.plot(g[col], g["T_s"], "-" if mode == "budget" else ":", marker=marker, color=color,
                              markersize=4)
            handles[label] = line
            if mode == "power" and strategy == "proposed":
                for x, t, p in zip(g[col], g["T_s"], g["tx_power_dbm"]):
                    ax.annotate(f"{p:g} dBm", (x, t), textcoords="offset points", xytext=(5, 3), fontsize=7,
                                color=color)
    axes[0].set_xlabel("energy of the worst user over the training (J)")
    axes[1].set_xlabel("mean user energy over the training (J)")
    axes[0].set_ylabel("training delay T (s)")
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
    fig.legend(handles.values(), handles.keys(), loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8,
               frameon=False)
    fig.suptitle(title or "Training delay against user energy")
    return _save(fig, path, rect=(0, 0.12, 1, 1))


def variant_label(name: str) -> str:
    """A robustness variant's code name in words: replan_3s_csi1s_eta -> 're-planned every 3 s, CSI 1 s
    old, η re-chosen'; plan-once strategies keep their names."""
    if name == "proposed_replan":  # one re-planning variant: the strategy's own name
        return "proposed, re-planned"
    if not name.startswith("replan_"):
        return name
    rest = name[len("replan_"):]
    eta = rest.endswith("_eta")
    rest = rest[:-len("_eta")] if eta else rest
    csi = None
    if "_csi" in rest:
        rest, csi = rest.split("_csi", 1)
    every = "every round" if rest == "every_round" else f"every {rest.removesuffix('s')} s"
    parts = [f"re-planned {every}"]
    if csi is not None:
        parts.append(f"CSI {csi.removesuffix('s')} s old")
    if eta:
        parts.append("η re-chosen")
    return ", ".join(parts)


def _variant_tick(name: str) -> str:
    """variant_label on short lines for a tick: one line per part."""
    return variant_label(name).replace("re-planned ", "re-planned\n").replace(", ", ",\n")


def robustness(runs: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Box plot per strategy of the simulated training delay over the seeds (whiskers 5-95 %), the
    prediction as a hollow diamond beside its box (the optimizer's plan; for a re-planned run the sum
    of its rounds' predictions, averaged over the seeds), and the simulated / predicted ratio beside
    it; variants named in words, one legend under both panels."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    strategies = list(dict.fromkeys(runs["strategy"]))
    labels = [_variant_tick(s) for s in strategies]
    width = max(7.5, 0.85 * len(strategies) + 1.5)
    fig, (ax, ax_ratio) = plt.subplots(2, 1, figsize=(width, 8.2), sharex=True)
    column = "predicted_s" if "predicted_s" in runs else "planned_s"
    ratio_of = runs["simulated_s"] / runs[column]
    data = [runs.loc[runs["strategy"] == s, "simulated_s"].to_numpy() for s in strategies]
    ratios = [ratio_of[runs["strategy"] == s].to_numpy() for s in strategies]
    positions = np.arange(1, len(strategies) + 1)
    for axis, values in ((ax, data), (ax_ratio, ratios)):
        boxes = axis.boxplot(values, positions=positions, whis=(5, 95), widths=0.5, patch_artist=True,
                             showfliers=True, flierprops={"markersize": 3},
                             medianprops={"color": "k", "linewidth": 1.6})  # black: visible on every colour
        for patch, s in zip(boxes["boxes"], strategies):
            patch.set_facecolor(STRATEGY_STYLE.get("proposed_replan" if s.startswith("replan_") else s, ("C7", "o"))[0])
            patch.set_alpha(0.35)
        axis.grid(True, axis="y", alpha=0.3)
        axis.set_xticks(positions, labels, fontsize=7)
    ax.tick_params(labelbottom=True)
    planned = [runs.loc[runs["strategy"] == s, column].mean() for s in strategies]
    ax.scatter(positions + 0.36, planned, marker="D", s=30, facecolor="white", edgecolor="k", zorder=3)
    ax.set_ylabel("training delay T (s)")
    ax.set_title("simulated delay and its prediction", fontsize=9)
    ax_ratio.axhline(1.0, color="k", lw=0.8, ls="--")
    ax_ratio.set_ylabel("simulated / predicted delay")
    ax_ratio.set_title("simulated over predicted", fontsize=9)
    handles = [Patch(facecolor="0.85", edgecolor="k", label="simulated over the seeds: box 25-75 %, whiskers 5-95 %"),
               Line2D([], [], color="k", lw=1.6, label="median"),
               Line2D([], [], marker="D", color="k", mfc="white", ls="", label="prediction: the plan made once, or "
                      "a re-planned run's rounds summed (mean over the seeds)"),
               Line2D([], [], color="k", lw=0.8, ls="--", label="simulated = predicted")]
    wide = width >= 11
    fig.legend(handles=handles, loc="lower center", ncol=2 if wide else 1, fontsize=7, frameon=False)
    fig.suptitle(title or "Predicted against simulated delay")
    return _save(fig, path, rect=(0, 0.05 if wide else 0.1, 1, 1))


def convergence_fit(runs: list[dict], points, fits: dict, max_rounds: int, path: Path, title: str = "",
                    check: dict | None = None) -> Path:
    """Left: rounds-to-target against local iterations V — every seed (censored ones at max_rounds,
    as upward triangles), the mean and its sigma per V, each fitted form, and the held-out check's
    runs (stars). Right: the residuals (measured mean - fitted) per form, in units of sigma."""
    from splitsim.optimizer.convergence_fit import FORM_TEXT, predict

    fig, (ax, res) = plt.subplots(1, 2, figsize=(11.5, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    done = [r for r in runs if r["rounds_to_target"] is not None]
    cut = [r for r in runs if r["rounds_to_target"] is None]
    ax.scatter([r["local_steps"] for r in done], [r["rounds_to_target"] for r in done], s=14, color="0.55",
               label="one seed", zorder=2)
    if cut:
        ax.scatter([r["local_steps"] for r in cut], [max_rounds] * len(cut), marker="^", s=30, color="0.35",
                   label=f"censored (not reached in {max_rounds} rounds)", zorder=2)
    V = np.array([p.local_steps for p in points], dtype=float)
    mean = np.array([p.mean_rounds for p in points])
    sigma = np.array([p.sigma_rounds for p in points])
    ax.errorbar(V, mean, yerr=sigma, fmt="o", color="k", capsize=3, label="mean ± sigma (the fit's weights)", zorder=3)
    span = list(V) + ([check["local_steps"]] if check else [])
    grid = np.geomspace(max(min(span) * 0.8, 0.5), max(span) * 1.25, 200)
    if check:
        hits = [r["rounds_to_target"] for r in check["runs"] if r["rounds_to_target"] is not None]
        if hits:
            chosen = check.get("chosen_V", check["local_steps"])
            ax.scatter([check["local_steps"]] * len(hits), hits, marker="*", s=140, color="C1", zorder=4,
                       label=f"held-out check at V = {check['local_steps']} (the proposed V = {chosen:.3g}, in whole "
                             f"steps; predicted {check['predicted_rounds']:.3g})")
    styles = {"fedsllm": ("C3", "-"), "inverse": ("C0", "--"), "drift": ("C2", ":")}
    curves = {form: predict(form, {k: fits[form][k] for k in ("a", "v", "a1", "a2", "a3") if k in fits[form]}, grid)
              for form in styles if form in fits}
    # a drift term fitted to 0 makes the drift form the inverse one: one curve, said so (not one hiding the other)
    same = "drift" in curves and "inverse" in curves and np.allclose(curves["drift"], curves["inverse"], rtol=1e-6)
    for form, (color, line) in styles.items():
        if form not in fits:
            continue
        aicc = fits[form]["aicc"]
        score = f"{aicc:.3g}" if isinstance(aicc, (int, float)) and np.isfinite(aicc) else "n/a: too few V"
        label = f"{form}: R = {FORM_TEXT[form]} (AICc {score})"
        if same and form == "inverse":
            label += "; = the drift fit (drift term 0)"
        if not (same and form == "drift"):
            ax.plot(grid, curves[form], line, color=color, label=label)
        res.plot(V, np.asarray(fits[form]["residuals"]) / sigma, marker="o", linestyle=line, color=color, label=form)
    ax.set_xlabel("local iterations per round V (mini-batch steps per user)")
    ax.set_ylabel("rounds to target")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    for axis, ticks in ((ax, sorted(set(span))), (res, V)):  # tick at the measured V, in plain numbers
        axis.set_xscale("log")
        axis.set_xticks(ticks)
        axis.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
        axis.xaxis.set_minor_formatter(NullFormatter())
    res.axhline(0, color="k", linewidth=0.8)
    res.set_xlabel("V")
    res.set_ylabel("residual (measured - fitted) / sigma")
    res.set_title("goodness of fit", fontsize=10)
    res.grid(True, which="both", alpha=0.3)
    res.legend(fontsize=8)
    fig.suptitle(title or "Rounds to target against local iterations")
    return _save(fig, path)


CATEGORY_COLOURS = {"compute": "#4c72b0", "uplink": "#dd8452", "downlink": "#55a868", "backhaul": "#8172b3",
                    "waiting": "#c7c7c7"}


def emulation_gantt(measured: pd.DataFrame, predicted: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Devices and links (rows) against time: each activity as a bar, measured above predicted on
    one time axis; colour = category (compute, uplink, downlink, backhaul, waiting). Only the rows
    and categories that hold an activity lasting some time are drawn."""
    from splitsim.netsim.engine import CATEGORY_OF_KIND, KIND

    span = max(float(measured["end_s"].max()), float(predicted["end_s"].max()), 1e-12)

    def lasting(frame: pd.DataFrame) -> pd.DataFrame:  # a bar that can be seen: 1/1000 of the time axis or more
        return frame[frame["end_s"] - frame["time_s"] >= 1e-3 * span]

    busy = pd.concat([lasting(measured), lasting(predicted)])
    nodes = sorted({str(n) for n in busy["node"]}, key=lambda n: ("->" in n, n))  # no empty rows
    used = [c for c in CATEGORY_COLOURS if any(CATEGORY_OF_KIND[KIND[k]] == c for k in busy["kind"])]
    row = {n: i for i, n in enumerate(nodes)}
    height = max(3.0, 0.28 * len(nodes) + 1.2)
    fig, axes = plt.subplots(2, 1, figsize=(10, 2 * height), sharex=True)
    for ax, frame, label in ((axes[0], measured, "measured"), (axes[1], predicted, "predicted (simulator)")):
        for category, colour in CATEGORY_COLOURS.items():
            sel = frame[[CATEGORY_OF_KIND[KIND[k]] == category for k in frame["kind"]]]
            sel = sel[(sel["end_s"] > sel["time_s"]) & sel["node"].astype(str).isin(row)]
            for node, group in sel.groupby("node", observed=True):
                ax.broken_barh(list(zip(group["time_s"], group["end_s"] - group["time_s"])), (row[str(node)] - 0.4, 0.8),
                               facecolors=colour, edgecolor="none")
        ends = frame.groupby("round")["end_s"].max()
        for end in ends:
            ax.axvline(end, color="black", lw=0.6, ls=":")
        ax.set_yticks(range(len(nodes)), nodes, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=10, loc="left")
        ax.grid(axis="x", alpha=0.3)
    axes[1].set_xlabel("time since the first activity (s); dotted: round ends")
    handles = [plt.Rectangle((0, 0), 1, 1, color=CATEGORY_COLOURS[c]) for c in used]  # the categories drawn
    fig.legend(handles, used, loc="upper right", ncol=len(used), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=11)
    return _save(fig, path, rect=(0, 0, 1, 0.96))


def link_curve(table: pd.DataFrame, path: Path, title: str = "") -> Path:
    """Goodput per Hz against SINR (dB): the NR uplink over its TDD pattern, the same with every slot
    uplink, and Shannon's log2(1 + SINR); a second panel with each as a share of Shannon."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.4, 6.2), sharex=True, height_ratios=(3, 2))
    x = table["sinr_db"]
    top.plot(x, table["shannon_bps_per_hz"], color="0.3", label="Shannon, log2(1 + SINR)")
    top.plot(x, table["goodput_fdd_bps_per_hz"], color="C0", label="NR, every slot uplink (FDD)")
    top.plot(x, table["goodput_bps_per_hz"], color="C3", label="NR over the TDD pattern")
    top.set_ylabel("bit/s per Hz")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.plot(x, table["goodput_fdd_over_shannon"], color="C0")
    bottom.plot(x, table["goodput_over_shannon"], color="C3")
    bottom.set_ylim(0, 1)
    bottom.set_ylabel("share of Shannon")
    bottom.set_xlabel("SINR (dB)")
    bottom.grid(alpha=0.3)
    if title:
        top.set_title(title, fontsize=9)
    return _save(fig, path)

"""Figures a reader can read (issue 34, item 16): names in words, no empty rows, panels or legend
entries, ticks where the data are."""

from __future__ import annotations

import pandas as pd

from splitsim.analysis import plots


def test_the_robustness_figure_names_its_variants_in_words(tmp_path):
    """Issue 34, item 16: the variants' code names (replan_3s_csi1s_eta) are words on the figure, and
    the figure is drawn from a runs table of every kind of variant."""
    assert plots.variant_label("replan_3s_csi1s_eta") == "re-planned every 3 s, CSI 1 s old, η re-chosen"
    assert plots.variant_label("replan_every_round_csi1s") == "re-planned every round, CSI 1 s old"
    assert plots.variant_label("replan_20s") == "re-planned every 20 s"
    assert plots.variant_label("EB") == "EB"
    assert plots.variant_label("proposed_replan") == "proposed, re-planned"
    names = ["EB", "proposed", "replan_3s", "replan_3s_eta", "replan_every_round_csi1s", "proposed_replan"]
    runs = pd.DataFrame([{"strategy": n, "seed": s, "predicted_s": 100.0 + i, "simulated_s": 90.0 + i + s}
                         for i, n in enumerate(names) for s in range(4)])
    path = plots.robustness(runs, tmp_path / "r.png", "t")
    assert path.stat().st_size > 10_000
    assert all("_" not in plots._variant_tick(n) for n in names)


def test_the_gantt_draws_only_rows_and_categories_that_hold_a_visible_activity(tmp_path, monkeypatch):
    """A node whose only activity is instantaneous (the fed server's aggregation) gets no row, and a
    category nothing was drawn in (backhaul, waiting) no legend entry."""
    drawn = {}
    real = plots._save

    def capture(fig, path, rect=(0, 0, 1, 1)):
        drawn["rows"] = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        drawn["legend"] = [t.get_text() for t in fig.legends[0].get_texts()]
        return real(fig, path, rect)

    monkeypatch.setattr(plots, "_save", capture)
    rows = [(0.0, 0.5, "user0", "client_forward", 0), (0.5, 1.5, "user0->main_server", "uplink_activation", 0),
            (1.5, 1.5 + 1e-7, "fed_server", "aggregation", 0), (1.5, 1.6, "main_server", "server_compute", 0)]
    frame = pd.DataFrame(rows, columns=["time_s", "end_s", "node", "kind", "round"])
    plots.emulation_gantt(frame, frame, tmp_path / "g.png", "t")
    assert "fed_server" not in drawn["rows"] and set(drawn["rows"]) == {"user0", "user0->main_server", "main_server"}
    assert drawn["legend"] == ["compute", "uplink"]


def _capture_axes(monkeypatch):
    """The figure plots.* draws, kept instead of saved."""
    kept = {}

    def keep(fig, path, rect=(0, 0, 1, 1)):
        kept["fig"] = fig
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return kept


def test_the_splitllm_cut_memory_panel_says_which_cut_each_tier_is_drawn_against(tmp_path, monkeypatch):
    """Issue 34, item 16: the user tier against the user | edge cut, edge and cloud against the
    edge | cloud cut: the axis and every curve say so."""
    kept = _capture_axes(monkeypatch)
    rows = [{"cut_user": u, "cut_edge": e, "delay_s": 100.0 + u + e, "user_memory_gib": 0.1 * u,
             "edge_memory_gib": 0.1 * (e - u), "cloud_memory_gib": 1.0 / e, "feasible": True}
            for u in range(1, 4) for e in range(u + 1, 5)]
    plots.cut_layer_splitllm(pd.DataFrame(rows), tmp_path / "c.png", "t", {"user": 1.0, "edge": 8.0, "cloud": 80.0})
    memory = kept["fig"].axes[-1] if len(kept["fig"].axes) == 2 else kept["fig"].axes[1]
    assert "user | edge cut for the user tier" in memory.get_xlabel()
    labels = [line.get_label() for line in memory.get_lines()]
    assert "user, against the user | edge cut" in labels
    assert any(label.startswith("cloud, against the edge | cloud cut") for label in labels)


def test_the_convergence_figure_draws_a_zero_drift_fit_once_and_says_so(tmp_path, monkeypatch):
    """Issue 34, item 16: the drift form with its drift term fitted to 0 is the inverse form; one
    curve, labelled as both, and the held-out stars say the V they ran at and the V proposed."""
    import json

    from helpers import REPO
    from splitsim.optimizer.convergence_fit import rounds_points

    kept = _capture_axes(monkeypatch)
    data = json.loads((REPO / "scenarios" / "data" / "mrpc_convergence.json").read_text())
    points, _ = rounds_points(data["runs"], max_rounds=40)
    assert abs(data["fit"]["drift"]["a3"]) < 1e-9  # fitted to 0
    plots.convergence_fit(data["runs"], points, data["fit"], 40, tmp_path / "c.png", "t", data["check"])
    labels = [text.get_text() for text in kept["fig"].axes[0].get_legend().get_texts()]
    assert not any(label.startswith("drift") for label in labels)
    assert any(label.startswith("inverse") and "drift fit" in label for label in labels)
    assert any(f"V = {data['check']['local_steps']} (the proposed V = {data['check']['chosen_V']:.3g}" in label
               for label in labels)


def test_time_to_accuracy_panels_share_their_accuracy_axis(tmp_path, monkeypatch):
    kept = _capture_axes(monkeypatch)
    rows = [{"scheme": s, "partition": p, "round": r, "simulated_time_s": 10.0 * (r + 1),
             "eval_accuracy": (0.5 if p == "iid" else 0.3) + 0.01 * r} for s in ("fl", "sfl")
            for p in ("iid", "dirichlet") for r in range(5)]
    plots.time_to_accuracy(pd.DataFrame(rows), tmp_path / "t.png")
    left, right = kept["fig"].axes
    assert left.get_ylim() == right.get_ylim()

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

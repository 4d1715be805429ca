"""Measured against predicted: the testbed's events beside the simulator's, per round and per activity.

Both tables have the simulator's event schema (time_s, end_s, node, kind, user, round, bytes). A
round ends at the last activity of that round ends (the fed server's aggregation, or the last
adapter's arrival); the first starts at 0 (the measured events are shifted so that the first
activity starts at 0, as the simulator's does). An activity kind's time in a round is the sum of its
activities' durations over every device and link (busy seconds, as the simulator's accounts).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engine import ACTIVITIES, CATEGORY_OF_KIND, KIND

COLUMNS = ["time_s", "end_s", "node", "kind", "user", "round", "bytes"]
COMPUTE_KINDS = [name for name, category in ACTIVITIES if category == "compute" and name != "aggregation"]


def events_frame(rows: list[tuple]) -> pd.DataFrame:
    """Measured events (start, end, node, kind, user, bytes, round) -> the schema, shifted to start at 0."""
    df = pd.DataFrame.from_records(rows, columns=["time_s", "end_s", "node", "kind", "user", "bytes", "round"])
    t0 = df["time_s"].min()
    df["time_s"] -= t0
    df["end_s"] -= t0
    df["duration_s"] = df["end_s"] - df["time_s"]
    return df[COLUMNS + ["duration_s"]].sort_values(["time_s", "node"], kind="stable").reset_index(drop=True)


def predicted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The simulator's EventLog.to_frame() in the same columns (kinds as plain strings)."""
    df = frame.copy()
    df["kind"] = df["kind"].astype(str)
    df["node"] = df["node"].astype(str)
    return df[COLUMNS + ["duration_s"]].reset_index(drop=True)


def round_ends(df: pd.DataFrame) -> np.ndarray:
    """(R,) when each round's last activity ended."""
    return df.groupby("round")["end_s"].max().sort_index().to_numpy()


def round_seconds(df: pd.DataFrame) -> np.ndarray:
    ends = round_ends(df)
    return np.diff(np.concatenate([[0.0], ends]))


def _error_pct(measured: float, predicted: float) -> float:
    return float("nan") if predicted == 0 else 100.0 * (measured - predicted) / predicted


def comparison(measured: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """One row per (round, kind) and per kind over the whole run, plus each round's and the run's
    duration (kind 'round'): measured_s, predicted_s, error_pct, measured_bytes, predicted_bytes."""
    rounds = sorted(set(predicted["round"]) | set(measured["round"]))
    m_rounds, p_rounds = round_seconds(measured), round_seconds(predicted)
    rows = []
    kinds = [k for k, _ in ACTIVITIES if k in set(measured["kind"]) | set(predicted["kind"])]
    for scope, sel_m, sel_p in [*[(r, measured["round"] == r, predicted["round"] == r) for r in rounds],
                                ("all", slice(None), slice(None))]:
        m, p = measured.loc[sel_m], predicted.loc[sel_p]
        if scope == "all":
            m_s, p_s = float(m_rounds.sum()), float(p_rounds.sum())
        else:
            i = rounds.index(scope)
            m_s = float(m_rounds[i]) if i < len(m_rounds) else float("nan")
            p_s = float(p_rounds[i]) if i < len(p_rounds) else float("nan")
        rows.append({"round": scope, "kind": "round", "category": "round", "measured_s": m_s, "predicted_s": p_s,
                     "error_pct": _error_pct(m_s, p_s), "measured_bytes": float(m["bytes"].sum()),
                     "predicted_bytes": float(p["bytes"].sum())})
        for kind in kinds:
            mk, pk = m[m["kind"] == kind], p[p["kind"] == kind]
            ms, ps = float(mk["duration_s"].sum()), float(pk["duration_s"].sum())
            rows.append({"round": scope, "kind": kind, "category": CATEGORY_OF_KIND[KIND[kind]], "measured_s": ms,
                         "predicted_s": ps, "error_pct": _error_pct(ms, ps), "measured_bytes": float(mk["bytes"].sum()),
                         "predicted_bytes": float(pk["bytes"].sum())})
    return pd.DataFrame(rows)


def round_errors(table: pd.DataFrame) -> np.ndarray:
    """Each round's relative error of its duration (%), from `comparison`."""
    rows = table[(table["kind"] == "round") & (table["round"] != "all")]
    return rows["error_pct"].to_numpy(dtype=float)


def compute_overlap(predicted: pd.DataFrame, cores: int) -> tuple[int, float]:
    """(the most devices computing at once, the share of the run during which more than `cores` do)
    in a schedule: what says whether this host can run the devices without their compute contending."""
    busy = predicted[predicted["kind"].isin(COMPUTE_KINDS) & (predicted["duration_s"] > 0)]
    if busy.empty:
        return 0, 0.0
    # per node, merge its intervals (a node computes one thing at a time), then sweep
    points = []
    for _, node in busy.groupby("node", observed=True):
        for start, end in zip(node["time_s"], node["end_s"]):
            points += [(float(start), 1), (float(end), -1)]
    points.sort(key=lambda p: (p[0], p[1]))
    active = most = 0
    over, last = 0.0, points[0][0]
    for t, delta in points:
        if active > cores:
            over += t - last
        active += delta
        most = max(most, active)
        last = t
    total = float(predicted["end_s"].max())
    return most, over / total if total > 0 else 0.0

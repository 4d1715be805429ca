"""A short markdown report per output folder: what was run, the key numbers, the figures."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .outputs import provenance


class Report:
    """Builds `report.md`: a title, paragraphs, tables and figures listed with one line each."""

    def __init__(self, title: str, scenario_name: str, source: str = ""):
        stamp = provenance()
        self.lines = [f"# {title}", "",
                      f"Scenario `{scenario_name}`" + (f" from `{source}`" if source else "")
                      + f"; splitsim {stamp['splitsim_version']}, git revision `{stamp['git_revision']}`, "
                        f"{stamp['created_utc']}. The resolved scenario is `scenario.resolved.yaml`.", ""]
        self.figures: list[tuple[str, str]] = []

    def paragraph(self, text: str) -> None:
        self.lines += [text, ""]

    def table(self, frame: pd.DataFrame, caption: str = "", floatfmt: str = ".4g") -> None:
        if caption:
            self.lines += [caption, ""]
        cols = list(frame.columns)
        self.lines.append("| " + " | ".join(map(str, cols)) + " |")
        self.lines.append("|" + "|".join(" --- " for _ in cols) + "|")
        for row in frame.itertuples(index=False):
            cells = [("–" if v != v else format(v, floatfmt)) if isinstance(v, float) else str(v) for v in row]
            self.lines.append("| " + " | ".join(cells) + " |")
        self.lines.append("")

    def figure(self, filename: str, caption: str) -> None:
        self.figures.append((filename, caption))

    def write(self, out_dir: Path) -> Path:
        lines = list(self.lines)
        if self.figures:
            lines += ["## Figures", ""]
            lines += [f"- `{name}`: {caption}" for name, caption in self.figures]
            lines.append("")
            lines += [f"![{caption}]({name})" for name, caption in self.figures]
            lines.append("")
        path = out_dir / "report.md"
        path.write_text("\n".join(lines), encoding="utf-8")
        return path

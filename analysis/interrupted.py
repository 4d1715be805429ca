"""The exception of a run that stopped before its end (a signal, a dead worker)."""

from __future__ import annotations


class Interrupted(Exception):
    """`lines` say what was kept and how to resume; the CLI prints them and exits with `exit_code`."""

    def __init__(self, lines: list[str], exit_code: int = 130):
        self.lines, self.exit_code = lines, exit_code
        super().__init__("\n".join(lines))

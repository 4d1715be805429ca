"""Progress bars on stderr, shown when it is a terminal (or when asked)."""

from __future__ import annotations

import logging
import sys
import time

from tqdm import tqdm

log = logging.getLogger("splitsim.analysis")


def shows_bar(enabled: bool | None) -> bool:
    """Whether a progress bar is drawn: when asked, else when stderr is a terminal."""
    return sys.stderr.isatty() if enabled is None else enabled


class ProgressLog:
    """Progress without a terminal: a log line about every `share` of `total` steps (and at the
    end), with the rate so far and the time left at that rate (the CLI prints log lines on stderr)."""

    def __init__(self, total: int, label: str, unit: str, share: float = 0.05):
        self.total, self.label, self.unit = total, label, unit
        self.every = max(1, int(total * share))
        self.done = 0
        self.start = time.monotonic()

    def step(self, n: int = 1) -> None:
        before, self.done = self.done, self.done + n
        if self.done // self.every == before // self.every and self.done != self.total:
            return
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        log.info(f"{self.label}: {self.done:,} of {self.total:,} {self.unit} in {elapsed:.0f} s"
                 + (f", about {left / 60:.1f} min left" if self.done < self.total else ""))


def progress_iter(iterable, label: str, enabled: bool | None, total: int | None = None):
    show = shows_bar(enabled)
    return tqdm(iterable, desc=label, total=total, disable=not show, leave=False, file=sys.stderr)


def progress_bar(total: int, label: str, enabled: bool | None, unit: str = "round"):
    show = shows_bar(enabled)
    return tqdm(total=total, desc=label, unit=unit, disable=not show, leave=False, file=sys.stderr)

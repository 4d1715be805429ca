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

    def __init__(self, total: int, label: str, unit: str, share: float = 0.05, min_gap_s: float = 0.0):
        self.total, self.label, self.unit = total, label, unit
        self.every = max(1, int(total * share))
        self.done = 0
        self.start = self.last = time.monotonic()
        self.min_gap_s = min_gap_s  # at least this long between lines; a job quicker than it says nothing

    def step(self, n: int = 1) -> None:
        before, self.done = self.done, self.done + n
        if self.done // self.every == before // self.every and self.done != self.total:
            return
        now = time.monotonic()
        if now - self.last < self.min_gap_s and (self.done != self.total or now - self.start < self.min_gap_s):
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        log.info(f"{self.label}: {self.done:,} of {self.total:,} {self.unit} in {elapsed:.0f} s"
                 + (f", about {left / 60:.1f} min left" if self.done < self.total else ""))


QUIET_S = 10.0
"""Without a terminal, a loop's progress lines come at least this far apart: a quick one says nothing."""


def progress_iter(iterable, label: str, enabled: bool | None, total: int | None = None):
    """A bar over `iterable` in a terminal (or when asked); without one (a log file, a batch job) and
    unless switched off (`enabled` False), a ProgressLog line every 5 % with the time left."""
    show = shows_bar(enabled)
    if not show and enabled is None:
        count = total if total is not None else len(iterable) if hasattr(iterable, "__len__") else None
        if count:
            return _logged(iterable, ProgressLog(count, label, "done", min_gap_s=QUIET_S))
    return tqdm(iterable, desc=label, total=total, disable=not show, leave=False, file=sys.stderr)


def _logged(iterable, progress: ProgressLog):
    for item in iterable:
        yield item
        progress.step()


class _LoggedBar:
    """progress_bar's stand-in without a terminal: the same calls, ProgressLog lines."""

    def __init__(self, total: int, label: str, unit: str):
        self.progress = ProgressLog(total, label, unit + "s", min_gap_s=QUIET_S)

    def update(self, n: int = 1) -> None:
        self.progress.step(n)

    def set_postfix(self, *args, **kwargs) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def progress_bar(total: int, label: str, enabled: bool | None, unit: str = "round"):
    """A bar of `total` steps in a terminal (or when asked); without one and unless switched off,
    ProgressLog lines."""
    show = shows_bar(enabled)
    if not show and enabled is None and total:
        return _LoggedBar(total, label, unit)
    return tqdm(total=total, desc=label, unit=unit, disable=not show, leave=False, file=sys.stderr)

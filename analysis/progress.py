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
    end), with the rate so far and the time left at that rate (the CLI prints log lines on stderr).
    Steps that cost nothing (reused from a cache or a checkpoint, or never needed) are counted with
    `skip`: they are done, but the rate, and so the time left, comes from the steps worked."""

    def __init__(self, total: int, label: str, unit: str, share: float = 0.05, min_gap_s: float = 0.0):
        self.total, self.label, self.unit = total, label, unit
        self.every = max(1, int(total * share))
        self.done = self.worked = 0
        self.start = self.last = self.last_step_at = time.monotonic()
        self.worked_s = 0.0  # the time spent on worked steps (a skip does not add to it)
        self.min_gap_s = min_gap_s  # at least this long between lines; a job quicker than it says nothing

    def skip(self, n: int = 1) -> None:
        """n steps done at no cost (the time since the last step, a cache's read, is charged to none)."""
        self._advance(n, worked=False)

    def step(self, n: int = 1) -> None:
        """n steps worked since the last call."""
        self._advance(n, worked=True)

    def _advance(self, n: int, worked: bool) -> None:
        now = time.monotonic()
        if worked:
            self.worked += n
            self.worked_s += now - self.last_step_at
        self.last_step_at = now
        before, self.done = self.done, self.done + n
        if self.done // self.every == before // self.every and self.done != self.total:
            return
        if now - self.last < self.min_gap_s and (self.done != self.total or now - self.start < self.min_gap_s):
            return
        self.last = now
        elapsed = now - self.start
        reused = f" ({self.done - self.worked:,} cached or not needed)" if self.worked < self.done else ""
        left = ""
        if self.done < self.total:
            left = (f", about {self.worked_s / self.worked * (self.total - self.done) / 60:.1f} min left"
                    if self.worked else ", time left not yet known")
        log.info(f"{self.label}: {self.done:,} of {self.total:,} {self.unit}{reused} in {elapsed:.0f} s{left}")


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

    def skip(self, n: int = 1) -> None:
        self.progress.skip(n)

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

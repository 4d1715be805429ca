"""Progress bars on stderr, shown when it is a terminal (or when asked)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def progress_iter(iterable, label: str, enabled: bool | None, total: int | None = None):
    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(iterable, desc=label, total=total, disable=not show, leave=False, file=sys.stderr)


def progress_bar(total: int, label: str, enabled: bool | None, unit: str = "round"):
    show = sys.stderr.isatty() if enabled is None else enabled
    return tqdm(total=total, desc=label, unit=unit, disable=not show, leave=False, file=sys.stderr)

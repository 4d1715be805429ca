"""The exception of a run that stopped before its end (a signal, a dead worker), and SIGTERM taken as Ctrl-C."""

from __future__ import annotations

import signal
import threading


class Interrupted(Exception):
    """`lines` say what was kept and how to resume; the CLI prints them and exits with `exit_code`."""

    def __init__(self, lines: list[str], exit_code: int = 130):
        self.lines, self.exit_code = lines, exit_code
        super().__init__("\n".join(lines))


def _raise_keyboard_interrupt(signum, frame):  # noqa: ARG001 - a signal handler's signature
    raise KeyboardInterrupt


class TermAsInterrupt:
    """Within the block, SIGTERM (a scheduler's or `kill`'s stop) stops the run like Ctrl-C, so that
    it too says what it kept and how to resume (main thread only)."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            self.old = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False

"""The testbed's run-time failure (bad input is scenarios.InputError, exit 2, before any process starts)."""


class DeviceFailure(RuntimeError):
    """A device process failed or died mid-run; the message names it (one line). The run is stopped
    and nothing it started is left behind."""

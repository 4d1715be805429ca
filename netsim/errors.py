"""The simulator's bad-input error."""

from splitsim.scenarios.errors import InputError


class NetsimError(InputError):
    """A simulation cannot run on these inputs (mismatched sizes, zero bandwidth, ...)."""

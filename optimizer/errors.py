"""The optimizer's bad-input error."""

from splitsim.scenarios.errors import InputError


class OptimizerError(InputError):
    """Inputs no allocation can serve, or that are not physical (zero budgets, non-finite gains, ...)."""

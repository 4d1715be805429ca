"""The learning package's bad-input error."""

from splitsim.scenarios.errors import InputError


class LearningError(InputError):
    """A model, split, LoRA setting or data set that cannot be used as given."""

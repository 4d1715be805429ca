"""The one base class for bad input, shared by every package (each package subclasses it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def short_repr(value: Any, limit: int = 60) -> str:
    """repr() cut to `limit` characters, for one-line error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Problem:
    """One problem with an input: where it is (`field`, a dotted path), what is wrong, the value."""

    field: str
    message: str
    value: Any = None
    has_value: bool = False
    source: str = ""

    def line(self) -> str:
        where = f"{self.source}: " if self.source else ""
        got = f" (got {short_repr(self.value)})" if self.has_value else ""
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{self.message}{got}"


class InputError(ValueError):
    """Bad input. Carries one or more `Problem`s; `str()` gives one line per problem.

    The CLI prints `str(err)` and exits with status 2; no traceback is shown.
    """

    def __init__(self, problems: list[Problem] | Problem | str, *, field: str = "", value: Any = None,
                 has_value: bool | None = None):
        if isinstance(problems, str):
            problems = [Problem(field, problems, value, value is not None if has_value is None else has_value)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(p.line() for p in self.problems))

    @property
    def field(self) -> str:
        return self.problems[0].field if self.problems else ""

    @property
    def value(self) -> Any:
        return self.problems[0].value if self.problems else None


class ScenarioError(InputError):
    """A scenario file or scenario value is invalid."""

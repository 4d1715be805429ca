"""pydantic's validation errors as `Problem`s: the field path, the value, "did you mean" for keys.

Below both the schema (whose sections re-validate on copy) and the loader (which validates files).
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import Problem


def _model_at(loc: tuple, root: type[BaseModel]) -> type[BaseModel] | None:
    """The pydantic model class that holds the field at `loc` (for "did you mean" suggestions)."""
    model: Any = root
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        model = unwrap_model(model.model_fields[part].annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def unwrap_model(annotation: Any) -> Any:
    """Find a BaseModel inside Optional[...] / list[...] / Annotated[...]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = unwrap_model(arg)
        if found is not None:
            return found
    return None


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def problems_from_validation(err: ValidationError, root: type[BaseModel], source: str = "") -> list[Problem]:
    """One `Problem` per pydantic error of validating `root` (a section class or the whole scenario),
    with the field path and a nearest-name hint for unknown keys."""
    problems = []
    for e in err.errors(include_url=False):
        loc = tuple(e["loc"])
        kind = e["type"]
        if kind == "extra_forbidden":
            parent = _model_at(loc[:-1], root)
            key = str(loc[-1])
            hint = ""
            if parent is not None:
                close = difflib.get_close_matches(key, list(parent.model_fields), n=1, cutoff=0.5)
                if close:
                    hint = f"; did you mean '{close[0]}'?"
                else:
                    hint = f"; valid keys: {', '.join(parent.model_fields)}"
            problems.append(Problem(_dotted(loc), f"unknown key{hint}", source=source))
            continue
        message = e["msg"]
        if message.startswith("Value error, "):
            message = message[len("Value error, "):]
        if kind == "missing":
            problems.append(Problem(_dotted(loc), "missing required value", source=source))
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            problems.append(Problem(_dotted(loc), "must be a mapping of keys to values", e.get("input"), True,
                                    source=source))
        else:
            value = e.get("input")
            named = "input" in e and not isinstance(value, dict)  # a section-level check names its values itself
            problems.append(Problem(_dotted(loc) or "(scenario)", message, value, named, source=source))
    return problems

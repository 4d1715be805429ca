"""Where a user's own allocation strategy is found: by name in a scenario's `optimizer.strategies`.

A name that is not a built-in (proposed, EB, FE, BA, proposed_replan, robust) is one of:

- `"package.module:function"`: imported (the module must be importable: installed, or on PYTHONPATH);
- a name registered in this process with `splitsim.register_strategy(name, strategy)` (a notebook);
- a name a package registers under the entry-point group `splitsim.strategies`
  (`[project.entry-points."splitsim.strategies"] greedy = "mypkg.alloc:greedy"`).

What it is and what it returns: splitsim.optimizer.custom (`StrategyProblem` in, `StrategyDecision`
out). A class is instantiated without arguments and its instance called.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from importlib import metadata

BUILT_IN: tuple[str, ...] = ("proposed", "EB", "FE", "BA", "proposed_replan", "robust")
ENTRY_POINT_GROUP = "splitsim.strategies"
_TARGET = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_REGISTERED: dict[str, Callable] = {}


def register_strategy(name: str, strategy: Callable) -> None:
    """Make `strategy` (a callable, or a class whose instances are) available as `name` in
    `optimizer.strategies` for this process."""
    if name in BUILT_IN:
        raise ValueError(f"'{name}' is a built-in strategy; choose another name")
    if not callable(strategy):
        raise ValueError(f"strategy '{name}' must be callable, got a {type(strategy).__name__}")
    _REGISTERED[name] = strategy


def _entry_point(name: str):
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


def _as_callable(name: str, found) -> Callable:
    if isinstance(found, type):
        try:
            found = found()
        except Exception as err:  # noqa: BLE001 - the user's class: say what went wrong, in one line
            raise ValueError(f"strategy '{name}': its class could not be instantiated without arguments: "
                             f"{type(err).__name__}: {err}") from None
    if not callable(found):
        raise ValueError(f"strategy '{name}' is a {type(found).__name__}, not a callable")
    return found


def resolve_strategy(name: str) -> Callable:
    """The callable a custom strategy name stands for; ValueError with one line saying why not."""
    if name in _REGISTERED:
        return _as_callable(name, _REGISTERED[name])
    if ":" in name:
        if not _TARGET.match(name):
            raise ValueError(f"strategy '{name}' is not of the form 'package.module:function'")
        module_name, _, attr = name.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ValueError(f"strategy '{name}': cannot import module '{module_name}' ({err}); is it installed "
                             "or on PYTHONPATH?") from None
        except Exception as err:  # noqa: BLE001 - the user's module failed while importing
            raise ValueError(f"strategy '{name}': importing '{module_name}' failed: {type(err).__name__}: {err}") \
                from None
        found = module
        for part in attr.split("."):
            if not hasattr(found, part):
                raise ValueError(f"strategy '{name}': module '{module_name}' has no '{attr}'")
            found = getattr(found, part)
        return _as_callable(name, found)
    ep = _entry_point(name)
    if ep is not None:
        try:
            return _as_callable(name, ep.load())
        except ImportError as err:
            raise ValueError(f"strategy '{name}' (entry point {ep.value}) cannot be loaded: {err}") from None
    built_in = ", ".join(f"'{s}'" for s in BUILT_IN[:-1]) + f" or '{BUILT_IN[-1]}'"
    raise ValueError(f"unknown strategy '{name}': expected {built_in}, a 'package.module:function', a name given to "
                     f"splitsim.register_strategy, or an entry point of group '{ENTRY_POINT_GROUP}'")


def is_custom(name: str) -> bool:
    return name not in BUILT_IN

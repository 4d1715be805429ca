"""Reading scenario files: YAML in, a validated `Scenario` or a list of one-line problems out."""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from .checks import CROSS_SECTION_CHECKS  # importing scenarios.checks registers its checks there
from .errors import Problem, ScenarioError
from .schema import Scenario
from .validation import problems_from_validation, unwrap_model

# YAML 1.1 (PyYAML) reads 20e6 and 1e-3 as strings; scenario files use them for Hz and bits.
_FLOAT_RE = re.compile(r"""^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?$""")
_FLOAT_FIRST = list("-+0123456789.")


class _ScenarioLoader(yaml.SafeLoader):
    """SafeLoader that reads 1e3-style numbers as floats and rejects duplicate keys."""


def _construct_float_or_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = str(loader.construct_scalar(node)).replace("_", "")
    if _FLOAT_RE.match(text):
        try:
            return int(text)
        except ValueError:
            return float(text)
    return loader.construct_yaml_float(node)  # .inf, .nan and other YAML 1.1 forms


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_ScenarioLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, _FLOAT_FIRST)
_ScenarioLoader.add_constructor("tag:yaml.org,2002:float", _construct_float_or_int)
_ScenarioLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str, source: str = "") -> dict:
    """Parse scenario YAML text into a mapping; raise `ScenarioError` for anything else."""
    if not text.strip():
        raise ScenarioError(Problem("", "file is empty; expected a mapping of scenario sections", source=source))
    try:
        data = yaml.load(text, Loader=_ScenarioLoader)  # noqa: S506 - a SafeLoader subclass
    except RecursionError:
        raise ScenarioError(Problem("", "YAML nested too deeply to read (a scenario is a few levels deep)",
                                    source=source)) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        what = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ScenarioError(Problem("", f"YAML syntax error{where}: {what}", source=source)) from None
    if data is None:
        raise ScenarioError(Problem("", "file holds no data; expected a mapping of scenario sections", source=source))
    if not isinstance(data, dict):
        raise ScenarioError(Problem("", f"top level must be a mapping of scenario sections, not a {type(data).__name__}",
                                    data, True, source=source))
    _check_size(data, source)
    return data


MAX_VALUES = 1_000_000  # values a scenario may expand to (the largest shipped: a few thousand)
MAX_DEPTH = 64  # nesting a scenario may have (the deepest shipped: 4)


def _check_size(data: Any, source: str) -> None:
    """Refuse data that expands past MAX_VALUES values or MAX_DEPTH levels once YAML aliases are
    followed (a 'billion laughs' file is small as text and astronomical as data): counted without
    expanding anything, stopping at the first value past the budget."""
    count, stack = 0, [(data, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_VALUES:
            raise ScenarioError(Problem("", f"the YAML expands to more than {MAX_VALUES:,} values (aliases that "
                                        "repeat aliases?); a scenario holds a few thousand", source=source))
        if depth > MAX_DEPTH:
            raise ScenarioError(Problem("", f"the YAML is nested more than {MAX_DEPTH} levels deep; a scenario is a "
                                        "few levels deep", source=source))
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def resolve_paths(data: dict, base_dir: str | Path) -> dict:
    """A copy of the mapping with relative file paths made absolute against `base_dir` (the folder of
    the scenario file): model.profile_path, training.data_path (not the hub names),
    simulation.availability_trace, theory.convergence_path, and model.source when it names a folder that exists there or is
    written as a path."""
    from .presets import looks_like_path

    base = Path(base_dir)
    out = _deep_copy(data)

    def fix(section: str, key: str, keep: tuple[str, ...] = (), only_paths: bool = False) -> None:
        node = out.get(section)
        if not isinstance(node, dict) or not isinstance(node.get(key), str):
            return
        value = node[key]
        if value in keep or Path(value).expanduser().is_absolute() or value.startswith("~"):
            return
        candidate = base / value
        if only_paths and not (candidate.exists() or looks_like_path(value)):
            return  # a preset or a hub id
        node[key] = str(candidate.resolve())

    fix("model", "profile_path")
    fix("model", "source", only_paths=True)
    fix("training", "data_path", keep=("glue/mrpc", "cifar100", "hub"))
    fix("simulation", "availability_trace")
    fix("theory", "convergence_path")
    return out


def parse_scenario(data: dict, source: str = "", base_dir: str | Path | None = None) -> Scenario:
    """Validate a mapping into a `Scenario`; raise `ScenarioError` listing every problem.

    Relative paths resolve against `base_dir` (default: the working directory). Besides each
    field, the checks across sections are made (every one in CROSS_SECTION_CHECKS: scenarios.checks'
    own — the model exists and its cuts fit, training settings fit the scheme — and, once
    analysis.studies is imported, as `import splitsim` and the CLI do, what the study needs)."""

    if not isinstance(data, dict):
        raise ScenarioError(Problem("", "a scenario is a mapping of sections", data, True, source=source))
    data = resolve_paths(data, base_dir if base_dir is not None else Path.cwd())
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as err:
        raise ScenarioError(problems_from_validation(err, Scenario, source)) from None
    problems = [p for check in CROSS_SECTION_CHECKS for p in check(scenario)]  # scenarios.checks, the studies
    if problems:
        raise ScenarioError([replace(p, source=source) for p in problems])
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(Problem("", "no such file", source=source)) from None
    except IsADirectoryError:
        raise ScenarioError(Problem("", "is a directory, not a scenario file", source=source)) from None
    except UnicodeDecodeError:
        raise ScenarioError(Problem("", "is not UTF-8 text", source=source)) from None
    return parse_scenario(read_yaml(text, source), source, path.resolve().parent)


def scenario_to_dict(scenario: Scenario) -> dict:
    """The fully resolved scenario (every default filled in) as plain YAML-able data."""
    return scenario.model_dump(mode="json")


def scenario_to_yaml(scenario: Scenario, header: str = "") -> str:
    """The resolved scenario as YAML, optionally preceded by `#` comment lines."""
    body = yaml.safe_dump(scenario_to_dict(scenario), sort_keys=False, default_flow_style=None, width=100)
    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + body


def set_path(data: dict, dotted_path: str, value: Any) -> dict:
    """Return a copy of the mapping `data` with `dotted_path` (e.g. 'cell.users') set to `value`.

    The path must name a field of the schema; raises `ScenarioError` otherwise."""
    parts = dotted_path.split(".")
    model: Any = Scenario
    for i, part in enumerate(parts):
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            parent = ".".join(parts[:i]) or "(scenario)"
            names = list(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []
            close = difflib.get_close_matches(part, names, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise ScenarioError(Problem(dotted_path, f"no field '{part}' in {parent}{hint}"))
        model = unwrap_model(model.model_fields[part].annotation)
    out = _deep_copy(data)
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value
    return out


def _deep_copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data

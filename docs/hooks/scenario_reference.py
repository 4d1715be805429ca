"""MkDocs hook: the scenario reference, generated at build time from the JSON Schema that
`splitsim schema` prints (splitsim.analysis.studies.scenario_json_schema), so it cannot drift from
the code. A page holding the marker `<!-- scenario-reference -->` gets one table per section:
every field with its type, default, bounds, unit (from its name's suffix) and description."""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "<!-- scenario-reference -->"
UNITS = {"_hz": "Hz", "_dbm": "dBm", "_db": "dB", "_m": "m", "_s": "s", "_mps": "m/s", "_j": "J", "_w": "W",
         "_bits": "bit", "_bps": "bit/s", "_bytes": "B", "_khz": "kHz", "_dbm_per_hz": "dBm/Hz", "_j_s2": "J·s²",
         "_pct": "%", "_gib": "GiB", "_mhz": "MHz", "_db_per_decade": "dB/decade", "_db_at_1km": "dB",
         "_flops_per_s": "FLOP/s", "_s2": "s²"}


def _unit(name: str) -> str:
    for suffix in sorted(UNITS, key=len, reverse=True):
        if name.endswith(suffix):
            return UNITS[suffix]
    return ""


def _type(prop: dict, defs: dict) -> str:
    if "$ref" in prop:
        return prop["$ref"].split("/")[-1]
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    for key in ("anyOf", "oneOf"):
        if key in prop:
            return " or ".join(_type(p, defs) for p in prop[key])
    kind = prop.get("type", "")
    if kind == "array":
        return f"list of {_type(prop.get('items', {}), defs)}"
    return kind or "any"


def _bounds(prop: dict) -> str:
    out = []
    for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"),
                      ("minItems", "items ≥"), ("maxItems", "items ≤"), ("pattern", "matches")):
        if key in prop:
            out.append(f"{sign} `{prop[key]}`" if key == "pattern" else f"{sign} {prop[key]:g}"
                       if isinstance(prop[key], float) else f"{sign} {prop[key]}")
    for key in ("anyOf", "oneOf"):
        for alt in prop.get(key, []):
            inner = _bounds(alt)
            if inner:
                out.append(inner)
    return ", ".join(out)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _default(prop: dict) -> str:
    if "default" not in prop:
        return "required"
    value = prop["default"]
    if isinstance(value, dict):
        return "(section defaults)"
    return f"`{json.dumps(value)}`"


def reference(schema: dict) -> str:
    defs = schema.get("$defs", {})
    lines = ["## Top level", "", "| field | type | default | bounds | unit | description |", "| --- | --- | --- | --- | --- | --- |"]
    sections = []
    for name, prop in schema["properties"].items():
        ref = prop.get("$ref") or next((p.get("$ref") for p in prop.get("anyOf", []) if "$ref" in p), None)
        if ref:
            sections.append((name, defs[ref.split("/")[-1]]))
            lines.append(f"| `{name}` | section | | | | {_cell(prop.get('description', defs[ref.split('/')[-1]].get('description', '')))} |")
            continue
        lines.append(f"| `{name}` | {_type(prop, defs)} | {_default(prop)} | {_cell(_bounds(prop))} | {_unit(name)} | "
                     f"{_cell(prop.get('description', ''))} |")
    for section, model in sections:
        lines += ["", f"## `{section}`", "", _cell(model.get("description", "")), "",
                  "| field | type | default | bounds | unit | description |", "| --- | --- | --- | --- | --- | --- |"]
        for name, prop in model.get("properties", {}).items():
            lines.append(f"| `{section}.{name}` | {_cell(_type(prop, defs))} | {_cell(_default(prop))} | "
                         f"{_cell(_bounds(prop))} | {_unit(name)} | {_cell(prop.get('description', ''))} |")
    return "\n".join(lines) + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    if MARKER not in markdown:
        return markdown
    from splitsim.analysis.studies import scenario_json_schema

    return markdown.replace(MARKER, reference(scenario_json_schema()))




def stage_package(root: Path) -> Path:
    """Lay out the installed package's tree for mkdocstrings (griffe reads sources, and the parts
    live in top-level folders that install below `splitsim`): build/docs-src/splitsim holds links to
    splitsim/*.py and to netsim/, learning/, optimizer/, scenarios/, analysis/ (setup.py's mapping).
    Done when MkDocs loads this hook, before mkdocstrings reads its search paths (it drops missing ones)."""
    staged = root / "build" / "docs-src" / "splitsim"
    staged.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in (root / "splitsim").glob("*.py")}
    wanted.update({part: root / part for part in ("netsim", "learning", "optimizer", "scenarios", "analysis")})
    for link in staged.iterdir():
        if link.name not in wanted or not link.is_symlink() or link.resolve() != wanted[link.name].resolve():
            link.unlink()
    for name, target in wanted.items():
        if not (staged / name).is_symlink():
            (staged / name).symlink_to(target)
    return staged


stage_package(Path(__file__).resolve().parents[2])

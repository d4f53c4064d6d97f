"""JSON Schemas (draft 2020-12) generated from the record types that edgezoo validates with.

The dataclasses in :mod:`edgezoo.schemas` are the single source: ``_strict`` loads and checks
files with them, and this module turns the same type hints into the published schemas in
``edgezoo/schemas/json/`` (a test regenerates them and fails when a checked-in file is stale).
Rules a type hint cannot say (a licence must be SPDX, a default version must exist) stay in
each record's ``validate()`` and are not in the schema.

    python -m edgezoo.schemas.jsonschema          # rewrite the checked-in schemas
"""

from __future__ import annotations

import dataclasses
import json
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

HERE = Path(__file__).resolve().parent / "json"


def _records():
    from edgezoo.schemas.baseline import Baseline
    from edgezoo.schemas.card import Card
    from edgezoo.schemas.manifest import Manifest
    from edgezoo.schemas.report import Report
    from edgezoo.schemas.target import Target

    return {"card": Card, "profile": Target, "manifest": Manifest, "report": Report, "baseline": Baseline}


def _schema(tp: Any, defs: dict) -> dict:
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin in (Union, types.UnionType):
        options = [_schema(a, defs) for a in get_args(tp)]
        return {"anyOf": options}
    if tp is type(None):
        return {"type": "null"}
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (list, tuple):
        args = get_args(tp)
        return {"type": "array", "items": _schema(args[0] if args else Any, defs)}
    if origin is dict:
        args = get_args(tp)
        return {"type": "object", "additionalProperties": _schema(args[1] if args else Any, defs)}
    if dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # reserve (records may refer to each other)
            hints = get_type_hints(tp)
            props, required = {}, []
            for f in dataclasses.fields(tp):
                props[f.name] = _schema(hints[f.name], defs)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    required.append(f.name)
            doc = (tp.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            defs[name] = {"type": "object", "properties": props, "required": required, "additionalProperties": False}
            if doc and not doc.startswith(f"{name}("):
                defs[name]["description"] = doc
        return {"$ref": f"#/$defs/{name}"}
    return {float: {"type": "number"}, int: {"type": "integer"}, bool: {"type": "boolean"}, str: {"type": "string"}}[tp]


def generate(kind: str) -> dict:
    record = _records()[kind]
    defs: dict = {}
    ref = _schema(record, defs)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://edgezoo.dev/schemas/{kind}.schema.json",
        "title": f"edgezoo {kind}",
        **ref,
        "$defs": dict(sorted(defs.items())),
    }


def render(kind: str) -> str:
    return json.dumps(generate(kind), indent=2, sort_keys=True) + "\n"


def main() -> None:
    HERE.mkdir(exist_ok=True)
    for kind in _records():
        (HERE / f"{kind}.schema.json").write_text(render(kind), encoding="utf-8")
        print(f"wrote {HERE / f'{kind}.schema.json'}")


if __name__ == "__main__":
    main()

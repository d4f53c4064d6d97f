"""A small strict loader from plain dicts (TOML/JSON) into frozen dataclasses.

Unknown keys fail, missing required keys fail, and types are checked, with the
file and the dotted key path in every message. No defaults are invented for
fields that matter (a card's license has none).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from edgezoo.errors import EdgezooError, SchemaError

T = typing.TypeVar("T")


def _fail(source: str, path: str, msg: str) -> SchemaError:
    where = f"{source}: " if source else ""
    key = f"key '{path}' " if path else ""
    return SchemaError(f"{where}{key}{msg}")


def _convert(tp: Any, value: Any, source: str, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            if type(None) in get_args(tp):
                return None
            raise _fail(source, path, "must not be empty")
        errors = []
        for arg in args:
            try:
                return _convert(arg, value, source, path)
            except SchemaError as exc:
                errors.append(str(exc))
        raise SchemaError(errors[0])
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise _fail(source, path, f"is {value!r}; expected one of {', '.join(map(repr, allowed))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(source, path, f"must be a list, got {type(value).__name__}")
        (item_tp, *rest) = get_args(tp) or (Any,)
        return tuple(_convert(item_tp, v, source, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(source, path, f"must be a table, got {type(value).__name__}")
        _, val_tp = get_args(tp) or (str, Any)
        return {str(k): _convert(val_tp, v, source, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return load(tp, value, source=source, path=path)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(source, path, f"must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(source, path, f"must be an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(source, path, f"must be true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise _fail(source, path, f"must be a string, got {value!r}")
        return value
    raise TypeError(f"unsupported schema type {tp!r}")  # a bug in a schema, not user input


def load(cls: type[T], data: Any, *, source: str = "", path: str = "") -> T:
    """Build ``cls`` from ``data`` strictly; errors name ``source`` and the key path."""
    if not isinstance(data, dict):
        raise _fail(source, path, f"must be a table, got {type(data).__name__}")
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        sub = f"{path}." if path else ""
        raise _fail(source, f"{sub}{unknown[0]}", f"is not known; allowed keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, field in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in data:
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
                raise _fail(source, sub, "is required")
            continue
        kwargs[name] = _convert(hints[name], data[name], source, sub)
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if check is not None:
        try:
            check()
        except (ValueError, EdgezooError) as exc:
            raise _fail(source, path, str(exc)) from exc
    return obj


def dump(obj: Any) -> Any:
    """Dataclass -> plain JSON-able data (tuples become lists, None fields dropped)."""
    if dataclasses.is_dataclass(obj):
        out = {}
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if v is None:
                continue
            out[f.name] = dump(v)
        return out
    if isinstance(obj, (list, tuple)):
        return [dump(v) for v in obj]
    if isinstance(obj, dict):
        return {k: dump(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_toml(path: Path) -> dict:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"{path}: is not valid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise SchemaError(f"{path}: is not UTF-8 text (byte {exc.start}: {exc.object[exc.start:exc.start + 1]!r})",
                          hint="TOML files are UTF-8: save it as UTF-8") from None
    except OSError as exc:
        raise SchemaError(f"{path}: cannot be read: {exc.strerror}") from None

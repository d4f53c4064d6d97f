"""Formats, runtimes, tasks and accelerators by name.

Everything that varies between deployments is a plug-in of one of four kinds, found
through Python entry points. The built-ins register exactly as a third-party package
would, in edgezoo's own ``pyproject.toml``::

    [project.entry-points."edgezoo.formats"]
    onnx = "edgezoo.formats.onnx:OnnxFormat"

A plug-in package adds its own table to its ``pyproject.toml``; after ``pip install`` it
shows up in ``edgezoo formats`` with where it came from. Listing names reads package
metadata only; a plug-in's module is imported the first time it is used, so a broken
plug-in is named when it is asked for and never stops the built-ins from working.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata

from edgezoo.errors import NotFoundError, UsageError

KINDS = {
    "formats": "format",
    "runtimes": "runtime",
    "tasks": "task",
    "accelerators": "accelerator",
}
GROUP = "edgezoo.{kind}"


@dataclass(frozen=True)
class Entry:
    kind: str  # "formats", "runtimes", ...
    name: str
    target: str  # "package.module:Attribute"
    origin: str  # "built-in" or "plug-in from <distribution> <version>"


class PluginError(UsageError):
    """A plug-in that is declared but cannot be imported or built."""


_lock = threading.Lock()
_instances: dict[tuple[str, str], object] = {}
_extra: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
_objects: dict[tuple[str, str], object] = {}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown plug-in kind {kind!r}")  # a programming error, not user input


@lru_cache(maxsize=None)
def _declared(kind: str) -> dict[str, Entry]:
    """Entry points of one kind, by name. Built-ins (edgezoo's own distribution) win over a
    plug-in that reuses their name; the same declaration seen twice (an editable install
    next to its source tree) counts once."""
    found: dict[str, Entry] = {}
    for ep in metadata.entry_points(group=GROUP.format(kind=kind)):
        dist = getattr(ep, "dist", None)
        dist_name = (dist.metadata["Name"] if dist is not None else "") or ""
        builtin = dist_name.lower() == "edgezoo"
        origin = "built-in" if builtin else f"plug-in from {dist_name or 'an unknown package'} {dist.version if dist is not None else ''}".strip()
        entry = Entry(kind, ep.name, ep.value, origin)
        if ep.name in found and found[ep.name].origin == "built-in" and not builtin:
            continue
        found[ep.name] = entry
    return found


def entries(kind: str) -> list[Entry]:
    _check_kind(kind)
    merged = dict(_declared(kind))
    merged.update(_extra[kind])
    return [merged[n] for n in sorted(merged)]


def names(kind: str) -> list[str]:
    return [e.name for e in entries(kind)]


def register(kind: str, name: str, obj: object, origin: str = "registered at run time") -> None:
    """Register an object directly (a notebook, a test, a plug-in loading another)."""
    _check_kind(kind)
    with _lock:
        _extra[kind][name] = Entry(kind, name, f"{type(obj).__module__}:{type(obj).__name__}", origin)
        _objects[(kind, name)] = obj
        _instances.pop((kind, name), None)


def unregister(kind: str, name: str) -> None:
    with _lock:
        _extra[kind].pop(name, None)
        _objects.pop((kind, name), None)
        _instances.pop((kind, name), None)


def require_name(kind: str, name: str, where: str = "") -> None:
    """Refuse a name no plug-in of that kind declares, listing the known ones."""
    known = names(kind)
    if name not in known:
        err = NotFoundError(KINDS[kind], name, known)
        if where:
            err.message = f"{where}: {err.message}"
        raise err


def get(kind: str, name: str):
    """The plug-in object (an instance of its class) registered under ``name``."""
    _check_kind(kind)
    key = (kind, name)
    if key in _instances:
        return _instances[key]
    with _lock:
        if key in _objects:
            obj = _objects[key]
        else:
            declared = {e.name: e for e in entries(kind)}
            if name not in declared:
                raise NotFoundError(KINDS[kind], name, list(declared))
            obj = _load(declared[name])
        _instances[key] = obj
        return obj


def _load(entry: Entry):
    module_name, _, attr = entry.target.partition(":")
    try:
        module = importlib.import_module(module_name)
        obj = module
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
        if isinstance(obj, type):
            obj = obj()
    except Exception as exc:  # a broken plug-in: name it, keep the rest working
        from edgezoo.errors import first_line

        raise PluginError(
            f"the {KINDS[entry.kind]} plug-in {entry.name!r} ({entry.target}, {entry.origin}) failed to load: {first_line(exc)}",
            hint="reinstall or remove the package that declares it; the built-ins keep working",
        ) from exc
    declared_name = getattr(obj, "name", entry.name)
    if declared_name != entry.name:
        raise PluginError(f"the {KINDS[entry.kind]} plug-in {entry.name!r} ({entry.target}) calls itself {declared_name!r}",
                          hint="make the entry point name and the object's 'name' agree")
    return obj


def format(name: str):  # noqa: A001 (the registry's vocabulary)
    return get("formats", name)


def runtime(name: str):
    return get("runtimes", name)


def task(name: str):
    return get("tasks", name)


def accelerator(name: str):
    return get("accelerators", name)

"""Operator reports: per operator type and placement, from the runtimes themselves (each
format asks its runtime; an accelerator rewrites placements), grouped for people."""

from __future__ import annotations

from pathlib import Path

from edgezoo.errors import ModelFileError
from edgezoo.schemas.report import OpSupport

__all__ = ["OpSupport", "group", "unsupported", "require_supported", "report"]


def group(ops: list[dict]) -> list[OpSupport]:
    """Per-operator rows, keeping each (op, placement) pair apart and the first layer of each."""
    order: dict[tuple[str, str], list] = {}
    for o in ops:
        key = (o["op"], o["placement"])
        if key not in order:
            order[key] = [0, o["layer"], o.get("note", ""), o.get("domain", ""), o.get("opset", 0)]
        order[key][0] += 1
    return [OpSupport(op, n, placement != "unsupported", placement, layer, domain=domain, opset=opset, note=note)
            for (op, placement), (n, layer, note, domain, opset) in order.items()]


def unsupported(rows: list[OpSupport]) -> list[OpSupport]:
    return [r for r in rows if not r.supported]


def require_supported(rows: list[OpSupport], target_id: str, runtime: str) -> list[OpSupport]:
    bad = unsupported(rows)
    if bad:
        b = bad[0]
        where = f"{b.domain}::" if b.domain else ""
        more = f" (and {len(bad) - 1} more operator types)" if len(bad) > 1 else ""
        raise ModelFileError(
            f"operator {where}{b.op_type}{f' (opset {b.opset})' if b.opset else ''}, layer {b.first_node!r}, has no {runtime} kernel for target {target_id}{more}",
            hint="re-export the model with standard operators, replace that layer, or choose another --format/--target",
        )
    return rows


def report(fmt: str, path: Path, accelerator: str = "", options: dict | None = None) -> list[OpSupport]:
    """The operator report of a model file in a format (optionally placed on an accelerator),
    outside a build: the same calls the executor makes."""
    from edgezoo import registry
    from edgezoo.formats.base import Artifact

    f = registry.format(fmt)
    ops = f.source_operators(Path(path)) if hasattr(f, "source_operators") else f.operators(None, Artifact("fp32", Path(path), [Path(path)]))
    if accelerator:
        ops = registry.accelerator(accelerator).place(ops, options or {})
    return group(ops)

"""Operator compatibility of an ONNX graph with the target's runtime, from the runtime's own
kernel registry (not a hand-written list): what runs, where, and what cannot."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from edgezoo.errors import ModelFileError, require


@dataclass(frozen=True)
class OpSupport:
    domain: str
    op_type: str
    opset: int
    count: int
    supported: bool
    placement: str  # "CPU" or "unsupported"
    first_node: str


def check_onnx(path: Path, runtime: str = "onnxruntime") -> list[OpSupport]:
    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    from edgezoo.runtimes import onnxruntime as rt

    model = onnx.load(str(path), load_external_data=False)
    opsets = {o.domain if o.domain != "ai.onnx" else "": o.version for o in model.opset_import}
    registry = rt.kernel_registry()
    counts: Counter = Counter()
    first: dict[tuple[str, str], str] = {}
    for node in model.graph.node:
        key = (node.domain if node.domain != "ai.onnx" else "", node.op_type)
        counts[key] += 1
        first.setdefault(key, node.name or node.output[0])
    report = []
    for (domain, op), n in sorted(counts.items()):
        opset = opsets.get(domain, 1)
        ranges = registry.get((domain, op), [])
        placement = "CPU" if any(lo <= opset <= hi for lo, hi in ranges) else "unsupported"
        if placement == "unsupported" and _is_function(onnx, domain, op, opset):
            # onnxruntime inlines operators that ONNX defines as functions of other operators
            placement = "CPU (ONNX function, inlined)"
        report.append(OpSupport(domain or "ai.onnx", op, opset, n, placement != "unsupported", placement, first[(domain, op)]))
    return report


def _is_function(onnx, domain: str, op: str, opset: int) -> bool:
    try:
        schema = onnx.defs.get_schema(op, opset, domain)
    except Exception:  # onnx raises SchemaError for unknown operators
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def require_supported(path: Path, target_id: str, runtime: str = "onnxruntime") -> list[OpSupport]:
    report = check_onnx(path, runtime)
    bad = [r for r in report if not r.supported]
    if bad:
        b = bad[0]
        more = f" (and {len(bad) - 1} more operator types)" if len(bad) > 1 else ""
        raise ModelFileError(
            f"operator {b.domain}::{b.op_type} (opset {b.opset}, layer {b.first_node!r}) has no {runtime} kernel for target {target_id}{more}",
            hint="re-export the model with standard ONNX operators, or replace that layer",
        )
    return report

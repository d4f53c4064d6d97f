"""Operator compatibility of a model with the target's runtime and accelerator.

The tables come from the runtimes themselves wherever one runs here: onnxruntime's CPU
kernel registry, OpenVINO's ``Core.query_model``, the LiteRT interpreter (builtin kernels
and which operators XNNPACK takes). The Edge TPU, which is not attached, uses Coral's
documented operator table kept as data (``edgezoo/compat/edgetpu_ops.toml``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from edgezoo.errors import ModelFileError, require


@dataclass(frozen=True)
class OpSupport:
    op_type: str
    count: int
    supported: bool
    placement: str  # "CPU", "CPU (XNNPACK)", "Edge TPU", "CPU (fallback)", "unsupported", ...
    first_node: str
    domain: str = ""
    opset: int = 0
    note: str = ""


def check_onnx(path: Path) -> list[OpSupport]:
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
        report.append(OpSupport(op, n, placement != "unsupported", placement, first[(domain, op)], domain or "ai.onnx", opset))
    return report


def _is_function(onnx, domain: str, op: str, opset: int) -> bool:
    try:
        schema = onnx.defs.get_schema(op, opset, domain)
    except Exception:  # onnx raises SchemaError for unknown operators
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def check_openvino(path: Path) -> list[OpSupport]:
    """OpenVINO's CPU plugin answers per operator once the model converts; when its ONNX
    frontend has no conversion rule for an operator, the frontend's own report names it."""
    import re

    from edgezoo.runtimes import openvino as ov

    try:
        return _group(ov.operators(path))
    except RuntimeError as exc:
        m = re.search(r"No conversion rule found for operations: ([^\n]+)", str(exc))
        if not m:
            raise ModelFileError(f"OpenVINO cannot read {path.name}: {str(exc).strip().splitlines()[-1][:300]}") from None
        missing = {name.strip() for name in m.group(1).split(",")}
    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    rows = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        full = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        placement = "unsupported" if full in missing else "not checked (conversion stopped)"
        rows.append({"op": node.op_type, "layer": node.name or node.output[0], "placement": placement,
                     "note": "no OpenVINO conversion rule" if full in missing else ""})
    return _group(rows)


def check_tflite(path: Path, accelerator: str = "") -> list[OpSupport]:
    from edgezoo.runtimes import litert

    try:
        ops = litert.operators(path)
    except Exception as exc:  # allocation fails when a builtin kernel is missing
        raise ModelFileError(f"LiteRT cannot prepare {path.name}: {str(exc).strip().splitlines()[-1][:300]}") from None
    if accelerator == "edgetpu":
        _place_on_edgetpu(ops)
    return _group(ops)


def _place_on_edgetpu(ops: list[dict]) -> None:
    """The compiler maps operators in graph order until the first one it cannot map; that
    one and every operator after it run on the host CPU."""
    table = edgetpu_table()
    cut = False
    for i, o in enumerate(ops):
        if o["op"] in ("QUANTIZE", "DEQUANTIZE") and i in (0, len(ops) - 1):
            o["placement"] = "CPU (input/output conversion)"
            continue
        in_table = o["op"] in table["supported"]
        ok = in_table and o["dtype"] in ("int8", "uint8", "int32")
        if not ok and not cut:
            cut = True
            o["note"] = "first operator the Edge TPU cannot run: " + ("not in Coral's supported table" if not in_table else f"{o['dtype']} tensors, not int8")
        if ok and not cut:
            o["placement"] = "Edge TPU"
            if o["op"] in table["notes"]:
                o["note"] = table["notes"][o["op"]]
        else:
            o["placement"] = "CPU (after the Edge TPU graph)" if ok else "CPU (Edge TPU cannot run it)"


@lru_cache(maxsize=1)
def edgetpu_table() -> dict:
    from edgezoo.schemas._strict import read_toml

    data = read_toml(Path(str(resources.files("edgezoo.compat") / "edgetpu_ops.toml")))
    return {"supported": frozenset(data["supported"]), "notes": data.get("notes", {}), "source": data["source"], "compiler": data["compiler"]}


def _group(ops: list[dict]) -> list[OpSupport]:
    """Per-operator rows, keeping each (op, placement) pair apart and the first layer of each."""
    order: dict[tuple[str, str], list] = {}
    for o in ops:
        key = (o["op"], o["placement"])
        if key not in order:
            order[key] = [0, o["layer"], o.get("note", "")]
        order[key][0] += 1
    return [
        OpSupport(op, n, placement != "unsupported", placement, layer, note=note)
        for (op, placement), (n, layer, note) in order.items()
    ]


def unsupported(report: list[OpSupport]) -> list[OpSupport]:
    return [r for r in report if r.placement == "unsupported"]


def require_supported(report: list[OpSupport], target_id: str, runtime: str) -> list[OpSupport]:
    bad = unsupported(report)
    if bad:
        b = bad[0]
        where = f"{b.domain}::" if b.domain else ""
        more = f" (and {len(bad) - 1} more operator types)" if len(bad) > 1 else ""
        raise ModelFileError(
            f"operator {where}{b.op_type}{f' (opset {b.opset})' if b.opset else ''}, layer {b.first_node!r}, has no {runtime} kernel for target {target_id}{more}",
            hint="re-export the model with standard operators, replace that layer, or choose another --format/--target",
        )
    return report

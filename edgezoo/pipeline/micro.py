"""Microcontroller analysis: measured tensor arena, flash/RAM verdicts with the largest
offenders and a labelled latency estimate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.errors import BudgetError, require
from edgezoo.schemas.report import LatencyEstimate, MemoryReport, TensorSize

KB = 1024


def integer_only(model_path: Path) -> None:
    """Refuse models that keep float operators: TFLM's int8 kernels (CMSIS-NN, ESP-NN,
    Ethos-U) cannot run them, and a float fallback on a Cortex-M is not what was asked."""
    from edgezoo.runtimes import litert

    from edgezoo.formats.tflite import readable_layer

    floats = [o for o in litert.operators(model_path) if o["dtype"] == "float32"]
    if floats:
        ops = sorted({o["op"] for o in floats})
        # a compatibility verdict about the model on this board (exit 4), like "does not fit"
        raise BudgetError(
            f"the int8 model keeps {len(floats)} float operator(s) ({', '.join(ops)}; first at layer {readable_layer(floats[0]['layer'])!r}) "
            "that microcontroller int8 kernels cannot run",
            hint="replace those layers (e.g. hard-swish, squeeze-excite) or choose a non-microcontroller target",
        )


def tensor_sizes(model_path: Path) -> tuple[list[dict], list[dict]]:
    """(largest activation tensors, largest constant buffers), biggest first. A constant is
    a tensor no operator produces and the model does not take as input."""
    mod = require("ai_edge_litert.interpreter", package="ai-edge-litert", extra="litert", purpose="reading .tflite models")
    it = mod.Interpreter(model_path=str(model_path), experimental_op_resolver_type=mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
    produced = {int(i) for o in it._get_ops_details() for i in o["outputs"]}
    inputs = {d["index"] for d in it.get_input_details()}
    acts, consts = [], []
    for t in it.get_tensor_details():
        size = int(np.prod(t["shape"])) * np.dtype(t["dtype"]).itemsize
        entry = {"name": t["name"], "shape": [int(d) for d in t["shape"]], "dtype": np.dtype(t["dtype"]).name, "bytes": size}
        (acts if t["index"] in produced or t["index"] in inputs else consts).append(entry)
    acts.sort(key=lambda e: -e["bytes"])
    consts.sort(key=lambda e: -e["bytes"])
    return acts[:5], consts[:5]


def memory_report(model_path: Path, target, arena_bytes: int, flash_model: Path | None = None) -> MemoryReport:
    """``flash_model``: the file the firmware embeds when it is not ``model_path`` (Vela's)."""
    mem = target.memory
    model_bytes = (flash_model or model_path).stat().st_size
    arena_with_headroom = int(np.ceil(arena_bytes * (1 + mem.arena_headroom) / 16) * 16)
    flash = model_bytes + (mem.runtime_flash_kb + mem.app_flash_kb) * KB
    ram = arena_with_headroom + mem.app_ram_kb * KB
    acts, consts = tensor_sizes(model_path)
    from edgezoo.formats.tflite import readable_layer

    return MemoryReport(
        model_bytes=model_bytes,
        arena_measured_bytes=arena_bytes,
        arena_headroom=mem.arena_headroom,
        arena_bytes=arena_with_headroom,
        flash_needed_bytes=flash,
        ram_needed_bytes=ram,
        flash_budget_bytes=mem.flash_kb * KB,
        ram_budget_bytes=mem.ram_kb * KB,
        flash_breakdown={"model": model_bytes, "runtime_allowance": mem.runtime_flash_kb * KB, "application_allowance": mem.app_flash_kb * KB},
        ram_breakdown={"arena_with_headroom": arena_with_headroom, "application_allowance": mem.app_ram_kb * KB},
        fits_flash=flash <= mem.flash_kb * KB,
        fits_ram=ram <= mem.ram_kb * KB,
        # tensor names as a user knows the layers (features.18.0), not torch.export's trace path
        largest_activations=tuple(TensorSize(readable_layer(e["name"]), tuple(e["shape"]), e["dtype"], e["bytes"]) for e in acts),
        largest_constants=tuple(TensorSize(readable_layer(e["name"]), tuple(e["shape"]), e["dtype"], e["bytes"]) for e in consts),
        kernel_library=mem.kernel_library,
        method="arena: smallest size TFLite Micro's AllocateTensors accepts (binary search with the real interpreter), then one inference; flash/RAM allowances from the profile",
    )


def verdict_line(report: MemoryReport, target_id: str) -> str:
    fl, ram = report.flash_needed_bytes / KB, report.ram_needed_bytes / KB
    fb, rb = report.flash_budget_bytes / KB, report.ram_budget_bytes / KB
    head = "fits" if report.fits else "does not fit"
    return f"{head}: needs {fl:.0f} KB flash / {ram:.0f} KB RAM, {target_id} has {fb:.0f} / {rb:.0f}"


def require_fit(report: MemoryReport, target_id: str, allow: bool) -> None:
    if report.fits or allow:
        return
    offenders = []
    if not report.fits_flash and report.largest_constants:
        c = report.largest_constants[0]
        offenders.append(f"largest weights {c.name!r} {c.bytes / KB:.0f} KB")
    if not report.fits_ram and report.largest_activations:
        a = report.largest_activations[0]
        offenders.append(f"largest activation {a.name!r} {list(a.shape)} {a.bytes / KB:.0f} KB")
    raise BudgetError(
        verdict_line(report, target_id) + (f" ({'; '.join(offenders)})" if offenders else ""),
        hint="choose a smaller model or a larger target, or pass --allow-over-budget",
    )


def latency_estimate(card, target, model_path: Path | None = None) -> LatencyEstimate:
    """Cycles from the MAC count (the card's, or counted in the model file when the card
    has none: a user's model) times the profile's cycles per MAC."""
    mem = target.memory
    macs, where = card.macs, "MACs"
    if not macs and model_path is not None:
        macs, where = tflite_macs(model_path), "MACs counted in the model"
    cycles = macs * mem.cycles_per_mac
    return LatencyEstimate(
        estimate_ms=cycles / (target.hardware.clock_mhz * 1e3),
        method=f"estimate, not a measurement: {macs:,} {where} x {mem.cycles_per_mac} cycles/MAC at {target.hardware.clock_mhz} MHz",
        cycles_source=mem.cycles_source,
    )


def tflite_macs(path: Path) -> int:
    """Multiply-accumulates of the convolutions and fully connected layers of a .tflite."""
    mod = require("ai_edge_litert.interpreter", package="ai-edge-litert", extra="litert", purpose="reading .tflite models")
    it = mod.Interpreter(model_path=str(path), experimental_op_resolver_type=mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    shapes = {t["index"]: [int(d) for d in t["shape"]] for t in it.get_tensor_details()}
    total = 0
    for op in it._get_ops_details():
        name, ins, outs = op["op_name"], [int(i) for i in op["inputs"]], [int(i) for i in op["outputs"]]
        if len(ins) < 2 or not outs or ins[1] not in shapes or outs[0] not in shapes:
            continue
        out_elems, w = int(np.prod(shapes[outs[0]])), shapes[ins[1]]
        if name == "CONV_2D" and len(w) == 4:  # weights O x H x W x I
            total += out_elems * w[1] * w[2] * w[3]
        elif name == "DEPTHWISE_CONV_2D" and len(w) == 4:  # 1 x H x W x C
            total += out_elems * w[1] * w[2]
        elif name == "FULLY_CONNECTED" and len(w) == 2:  # O x I
            total += out_elems * w[1]
    return total


def tflite_op_names(path: Path) -> list[str]:
    """Operator names of a .tflite (builtin or custom) read from its flatbuffer with LiteRT's
    schema reader, for models the host interpreter cannot run (Vela's ethos-u custom op)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = set()
    for oc in model.operatorCodes:
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        name = builtin.get(code, str(code))
        names.add(oc.customCode.decode() if name == "CUSTOM" and oc.customCode else name)
    return sorted(names)

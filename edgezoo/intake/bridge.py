"""ONNX -> PyTorch, so an ONNX file reaches the formats built from PyTorch (LiteRT, TFLite
Micro, ExecuTorch). onnx2torch rebuilds the graph as a torch.fx GraphModule; the result
is checked against onnxruntime on the user's samples before anything is built from it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, PipelineError, first_line, require
from edgezoo.hashing import sha256_file
from edgezoo.stages import Step

RTOL = 1e-3  # max abs diff allowed, relative to the largest reference output magnitude
BRIDGE_OPSET = 17  # onnx2torch 1.5 converts the operator set up to opset 17 (Reduce* with axes inputs are 18+)


def prepare_graph(src: Path, out: Path) -> list[str]:
    """Rewrite a simplified graph into the form onnx2torch converts, without changing what
    it computes; returns a note per rewrite:
    - opsets above 17 (the dynamo exporter writes 18+) are converted down to 17;
    - ``Constant`` nodes become initializers (onnx2torch reads weights from initializers);
    - ``Reshape(allowzero=1)`` with a constant shape holding no zero is the same as allowzero=0."""
    import onnx
    from onnx import numpy_helper, version_converter

    model = onnx.load(str(src))
    notes = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset > BRIDGE_OPSET:
        try:
            model = version_converter.convert_version(model, BRIDGE_OPSET)
        except Exception as exc:
            raise ModelFileError(f"opset {opset} cannot be converted to {BRIDGE_OPSET} for the ONNX -> PyTorch bridge: {first_line(exc)[:160]}",
                                 hint="re-export at opset 17 (torch.onnx.export(..., opset_version=17)), or use a format built from ONNX") from exc
        for node in model.graph.node:
            # the 18 -> 17 adapter leaves opset 18's attribute behind; its default (0) is opset 17's behaviour
            if node.op_type.startswith("Reduce"):
                extra = [a for a in node.attribute if a.name == "noop_with_empty_axes"]
                if extra and extra[0].i == 0:
                    node.attribute.remove(extra[0])
        notes.append(f"opset {opset} converted to {BRIDGE_OPSET} (onnx2torch's operator set)")
    unrolled = unroll_loops(model)
    if unrolled:
        notes.append(f"{unrolled} Loop(s) with a constant trip count unrolled (onnx2torch has no Loop)")
    inits = {i.name: i for i in model.graph.initializer}
    consts = [n for n in model.graph.node if n.op_type == "Constant" and n.domain in ("", "ai.onnx")]
    for node in consts:
        attr = {a.name: a for a in node.attribute}
        if "value" not in attr:
            continue
        tensor = onnx.TensorProto()
        tensor.CopyFrom(attr["value"].t)
        tensor.name = node.output[0]
        model.graph.initializer.append(tensor)
        inits[tensor.name] = tensor
        model.graph.node.remove(node)
    if consts:
        notes.append(f"{len(consts)} Constant node(s) turned into initializers")
    relaxed = 0
    for node in model.graph.node:
        if node.op_type == "Reshape" and len(node.input) > 1 and node.input[1] in inits:
            allow = [a for a in node.attribute if a.name == "allowzero"]
            if allow and allow[0].i == 1 and 0 not in numpy_helper.to_array(inits[node.input[1]]).tolist():
                node.attribute.remove(allow[0])
                relaxed += 1
    if relaxed:
        notes.append(f"allowzero dropped on {relaxed} Reshape node(s) whose shape has no zero (same result)")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelFileError(f"the graph prepared for the ONNX -> PyTorch bridge is invalid: {first_line(exc)[:200]}",
                             hint="re-export at opset 17, or use a format built from ONNX") from exc
    onnx.save(model, str(out))
    return notes


def onnx_to_torch(onnx_path: Path, feeds: list[np.ndarray], *, target_id: str, onnx_formats: list[str]):
    """(module, Step) for a simplified fp32 ONNX graph; refuses with the operator the
    converter lacks and the formats that take the ONNX file directly."""
    require("torch", extra="torch", purpose="bridging ONNX to PyTorch")
    onnx2torch = require("onnx2torch", extra="bridge", purpose="converting ONNX to PyTorch (LiteRT, TFLite Micro, ExecuTorch from an ONNX file)")
    import warnings

    other = (" or ".join(f"--format {f}" for f in onnx_formats) + f" (target {target_id})") if onnx_formats else "a target whose format is ONNX or OpenVINO"
    prepared = onnx_path.with_name(onnx_path.stem + "-bridge.onnx")
    notes = prepare_graph(onnx_path, prepared)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = onnx2torch.convert(str(prepared))
    except NotImplementedError as exc:
        m = re.search(r"operation_type='([^']+)', version=(\d+)", str(exc))
        op = f"{m.group(1)} (opset {m.group(2)})" if m else first_line(exc)[:120]
        raise ModelFileError(f"the ONNX -> PyTorch bridge (onnx2torch) cannot convert operator {op}",
                             hint=f"export for {other}, or give the PyTorch model (module.py:factory or .pt2)") from exc
    except Exception as exc:
        raise PipelineError(f"onnx2torch failed on {onnx_path.name}: {first_line(exc)[:200]}",
                            hint=f"export for {other}, or give the PyTorch model (module.py:factory or .pt2)") from exc
    module.eval()
    fixed = _static_reshapes(module)
    if fixed:
        notes.append(f"{fixed} Reshape(s) with constant shapes made static (torch.export cannot trace a shape read from a tensor)")
    diff, scale = compare_with_onnxruntime(module, onnx_path, feeds)
    if diff > RTOL * max(1.0, scale):
        raise PipelineError(f"the PyTorch graph rebuilt from {onnx_path.name} differs from onnxruntime by {diff:.3g} (outputs up to {scale:.3g})",
                            hint=f"export for {other}, or give the PyTorch model (module.py:factory or .pt2)")
    step = Step("onnx-to-torch", "onnx2torch", _version("onnx2torch"), {"checked_samples": int(min(8, len(feeds[0])))},
                sha256_file(onnx_path), "in-memory", (*notes, f"max abs diff against onnxruntime {diff:.3g}"))
    return module, step


MAX_UNROLL = 64


def unroll_loops(model) -> int:
    """Inline ``Loop`` nodes whose trip count and initial condition are constants, whose body
    passes its condition through unchanged and which have no scan outputs: the body is
    copied once per iteration (the iteration number becomes a constant). Loops that depend
    on data are left, and onnx2torch then names them."""
    import onnx
    from onnx import helper, numpy_helper

    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes, count = [], 0
    for node in g.node:
        body = next((a.g for a in node.attribute if a.name == "body"), None)
        trip, cond = (node.input[0], node.input[1]) if len(node.input) > 1 else ("", "")
        carried = list(node.input[2:])
        ok = node.op_type == "Loop" and body is not None and trip in inits and (not cond or cond in inits) and len(node.output) == len(carried)
        if ok:
            trips = int(numpy_helper.to_array(inits[trip]))
            start = bool(numpy_helper.to_array(inits[cond])) if cond else True
            b_iter, b_cond = body.input[0].name, body.input[1].name
            producer = {o: n for n in body.node for o in n.output}
            cond_out = body.output[0].name
            passthrough = producer.get(cond_out)
            ok = 0 <= trips <= MAX_UNROLL and (cond_out == b_cond or (passthrough is not None and passthrough.op_type == "Identity"
                                                                       and passthrough.input[0] == b_cond))
            ok = ok and not any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for n in body.node for a in n.attribute)
        if not ok:
            nodes.append(node)
            continue
        current = carried
        tag = f"{node.name or 'loop'}_unrolled{count}"
        for k in range(trips if start else 0):
            prefix = f"{tag}_{k}/"
            rename = {b_cond: cond or b_cond}
            it = numpy_helper.from_array(np.array(k, dtype=np.int64), prefix + "iteration")
            g.initializer.append(it)
            rename[b_iter] = it.name
            for bi, cur in zip(body.input[2:], current):
                rename[bi.name] = cur
            for init in body.initializer:
                copy = onnx.TensorProto()
                copy.CopyFrom(init)
                copy.name = prefix + init.name
                g.initializer.append(copy)
                rename[init.name] = copy.name
            for bn in body.node:
                if bn is passthrough:
                    continue
                nn = onnx.NodeProto()
                nn.CopyFrom(bn)
                nn.name = prefix + (bn.name or bn.output[0])
                del nn.input[:]
                nn.input.extend(rename.get(i, i) for i in bn.input)
                del nn.output[:]
                for o in bn.output:
                    rename[o] = prefix + o
                    nn.output.append(rename[o])
                nodes.append(nn)
            current = [rename.get(o.name, o.name) for o in body.output[1 : 1 + len(carried)]]
        for cur, out in zip(current, node.output):
            nodes.append(helper.make_node("Identity", [cur], [out], name=f"{tag}/out_{out}"))
        count += 1
    if count:
        del g.node[:]
        g.node.extend(nodes)
    return count


def _static_reshapes(gm) -> int:
    """onnx2torch reshapes by a shape *tensor* (a buffer), which torch.export treats as
    data-dependent; with a constant shape, reshape by the Python tuple instead."""
    import torch

    count = 0
    for node in list(gm.graph.nodes):
        if node.op != "call_module" or type(gm.get_submodule(node.target)).__name__ != "OnnxReshape" or len(node.args) < 2:
            continue
        shape_node = node.args[1]
        if getattr(shape_node, "op", None) != "get_attr":
            continue
        shape = [int(v) for v in _attr(gm, shape_node.target).tolist()]
        if 0 in shape:
            continue
        with gm.graph.inserting_after(node):
            new = gm.graph.call_function(torch.reshape, (node.args[0], tuple(shape)))
        node.replace_all_uses_with(new)
        gm.graph.erase_node(node)
        count += 1
    if count:
        gm.graph.eliminate_dead_code()
        gm.recompile()
    return count


def _attr(gm, target: str):
    obj = gm
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def compare_with_onnxruntime(module, onnx_path: Path, feeds: list[np.ndarray], n: int = 8) -> tuple[float, float]:
    import torch

    from edgezoo.runtimes.base import run_batch
    from edgezoo.runtimes.onnxruntime import OnnxRuntime

    probe = [f[:n] for f in feeds]
    ref = run_batch(OnnxRuntime().open(onnx_path, 1), probe)
    with torch.no_grad():
        outs = [module(*[torch.from_numpy(f[i : i + 1]) for f in probe]) for i in range(len(probe[0]))]
    outs = [o if isinstance(o, (tuple, list)) else (o,) for o in outs]
    got = [np.concatenate([o[k].numpy() for o in outs]) for k in range(len(ref))]
    diff = max(float(np.max(np.abs(a - b))) for a, b in zip(ref, got))
    scale = max(float(np.max(np.abs(a))) for a in ref)
    return diff, scale


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"

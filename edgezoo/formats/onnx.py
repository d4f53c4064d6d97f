"""ONNX for onnxruntime (and TensorRT on Jetson): torch.onnx export + onnxsim, then
onnxruntime's quantizers in the scheme the CPU needs."""

from __future__ import annotations

import abc
from pathlib import Path

from edgezoo.formats.base import Artifact, Context, Format


class OnnxSourced(Format):
    """Formats converted from an fp32 ONNX graph (ONNX itself, OpenVINO IR)."""

    built_from = "onnx"

    def opset(self, spec) -> int:
        return spec.opset

    def source_steps(self, plan_source: str) -> list[str]:
        if plan_source == "onnx-file":
            return ["load-onnx", "normalise-onnx", "check-compatibility", "simplify"]
        return (["load-torch"] if plan_source != "zoo" else []) + ["export-onnx", "check-compatibility", "simplify"]

    def prepare(self, ctx: Context):
        """The raw ONNX graph, checked operator by operator before onnxsim runs it: the
        user's normalised file (the executor wrote it), or the PyTorch model exported."""
        plan = ctx.plan
        if ctx.tflite_source is not None:  # OpenVINO reads TFLite with its own frontend
            return self.source_operators(ctx.tflite_source)
        if ctx.onnx_source is None:
            from edgezoo.stages import torch_to_onnx

            raw = ctx.work / "source.onnx"
            cfg = torch_to_onnx.ExportConfig(opset=plan.opset, input_names=tuple(i.name for i in plan.card.inputs),
                                             output_names=plan.card.output_names or ("logits",))
            ctx.lineage.append(torch_to_onnx.export_onnx(ctx.torch_model, plan.card, raw, cfg, ctx.weights_sha))
            ctx.onnx_source = raw
        return self.source_operators(ctx.onnx_source)

    @abc.abstractmethod
    def source_operators(self, raw: Path) -> list[dict]:
        """The raw graph's operators as this format's runtime sees them (each asks its own)."""

    def simplified(self, ctx: Context) -> Path:
        """The fp32 graph the format converts: simplified ONNX, or a TFLite source as it is."""
        if ctx.tflite_source is not None:
            ctx.onnx_fp32 = ctx.tflite_source
        if ctx.onnx_fp32 is None:
            from edgezoo.stages.simplify import simplify

            ctx.onnx_fp32 = ctx.work / "fp32.onnx"
            ctx.lineage.append(simplify(ctx.onnx_source, ctx.onnx_fp32))
        return ctx.onnx_fp32


class OnnxFormat(OnnxSourced):
    name = "onnx"
    runtime = "onnxruntime"
    model_file = "model.onnx"
    precisions = ("fp32", "fp16", "int8", "dynamic-int8")
    tools = {
        "fp32": "torch.onnx (TorchScript exporter) + onnxsim",
        "fp16": "onnxconverter float16, float32 I/O",
        "int8": "onnxruntime quantize_static, scheme from the profile and ISA",
        "dynamic-int8": "onnxruntime quantize_dynamic",
    }
    dynamic_int8_note = "runs as ConvInteger in onnxruntime"
    description = "ONNX graph run by onnxruntime (or built into a TensorRT engine on the device)"

    def steps(self, precision, spec):
        return {"fp32": [], "fp16": ["convert-fp16"], "int8": ["calibrate", "quantize-static-int8"],
                "dynamic-int8": ["quantize-dynamic-int8"]}[precision]

    def default_quantization(self, target, spec):
        from edgezoo.schemas.target import Quantization

        if target.hardware.arch == "x86_64":
            vnni = any(flag in target.hardware.isa for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))
            return Quantization(
                activation_type="uint8", weight_type="int8", format="qdq", per_channel=True, reduce_range=not vnni,
                rationale=("derived: onnxruntime on x86_64 runs QDQ int8 convolutions as fused integer kernels "
                           "only with uint8 activations and int8 weights (U8S8); "
                           + ("VNNI present, full 8-bit weights" if vnni else "no VNNI, 7-bit weights (reduce_range) to avoid saturation")),
                tool="onnxruntime.quantization")
        return Quantization(activation_type="int8", weight_type="int8", format="qdq", per_channel=True, reduce_range=False,
                            rationale="derived: onnxruntime on ARM recommends int8 activations and weights (S8S8) in QDQ form",
                            tool="onnxruntime.quantization")

    def source_operators(self, raw):
        return check_onnx(raw)

    def fp32(self, ctx):
        path = self.simplified(ctx)
        return Artifact("fp32", path, [path])

    def operators(self, ctx, art):
        return check_onnx(art.path)

    def variant(self, ctx, fp32, precision):
        from edgezoo.stages import quantize_onnx as qo

        out = ctx.work / f"{precision}.onnx"
        if precision == "int8":
            q = ctx.plan.quantization
            cfg = qo.StaticConfig(q.activation_type, q.weight_type, q.format, q.per_channel, q.reduce_range,
                                  ctx.plan.calibration_method, ctx.calib_sha, int(len(ctx.x_cal[0])),
                                  nodes_to_exclude=tuple(ctx.keep_float), nodes_to_quantize=tuple(ctx.quantize_only))
            ctx.lineage.append(qo.quantize_static(fp32.path, out, ctx.x_cal, cfg))
        elif precision == "dynamic-int8":
            ctx.lineage.append(qo.quantize_dynamic(fp32.path, out))
        else:
            ctx.lineage.append(qo.convert_fp16(fp32.path, out))
        return Artifact(precision, out, [out])

    def tensor_specs(self, model_path, card):
        return onnx_tensor_specs(model_path, card)


def check_onnx(path: Path) -> list[dict]:
    """Per node: does onnxruntime's CPU kernel registry have it at the model's opset?

    Graph-level operators that onnxruntime folds or inlines at load time are not kernels:
    ``Constant`` becomes an initializer and ONNX functions are expanded into their body. A
    model onnxruntime loads is never reported unsupported: when a node has no registry
    entry, the model is opened in onnxruntime, and only a load failure confirms it."""
    from edgezoo.errors import require
    from edgezoo.runtimes import onnxruntime as rt

    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    model = onnx.load(str(path), load_external_data=False)
    opsets = {o.domain if o.domain != "ai.onnx" else "": o.version for o in model.opset_import}
    registry = rt.kernel_registry()
    rows = []
    for node in model.graph.node:
        domain = node.domain if node.domain != "ai.onnx" else ""
        opset = opsets.get(domain, 1)
        if node.op_type == "Constant" and domain == "":
            placement = "graph constant (folded at load)"
        elif any(lo <= opset <= hi for lo, hi in registry.get((domain, node.op_type), [])):
            placement = "CPU"
        elif _is_function(onnx, domain, node.op_type, opset):
            placement = "CPU (ONNX function, inlined)"
        else:
            placement = "unsupported"
        rows.append({"op": node.op_type, "layer": node.name or node.output[0], "placement": placement,
                     "domain": domain or "ai.onnx", "opset": opset})
    if any(r["placement"] == "unsupported" for r in rows):
        reason = rt.loads(path)
        for r in rows:
            if r["placement"] == "unsupported":
                if reason is None:
                    r["placement"], r["note"] = "CPU", "no registry entry, but onnxruntime loads the model (rewritten at load)"
                else:
                    r["note"] = reason[:200]
    return rows


def _is_function(onnx, domain: str, op: str, opset: int) -> bool:
    try:
        schema = onnx.defs.get_schema(op, opset, domain)
    except Exception:  # onnx raises SchemaError for unknown operators
        return False
    return bool(schema.has_function or schema.has_context_dependent_function)


def onnx_tensor_specs(model_path: Path, card) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs with quantization parameters where the I/O is first quantized (QDQ)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    inits = {i.name: i for i in model.graph.initializer}
    g = model.graph

    def dims(vi):
        return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]

    def qparams(node):
        scale = numpy_helper.to_array(inits[node.input[1]]).reshape(-1) if node.input[1] in inits else None
        zp = numpy_helper.to_array(inits[node.input[2]]).reshape(-1) if len(node.input) > 2 and node.input[2] in inits else None
        if scale is None:
            return None
        return {"scale": [float(s) for s in scale], "zero_point": [int(z) for z in zp] if zp is not None else [0],
                "dtype": str(zp.dtype) if zp is not None else "int8", "where": f"{node.op_type} {node.name}"}

    def spec(vi, producer_op, layout=""):
        out = {"name": vi.name, "shape": dims(vi), "dtype": onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name}
        if layout:
            out["layout"] = layout
        if producer_op == "QuantizeLinear":
            q = next((qparams(n) for n in g.node if n.op_type == producer_op and n.input[0] == vi.name), None)
        else:
            q = next((qparams(n) for n in g.node if n.op_type == producer_op and n.output[0] == vi.name), None)
        if q is not None:
            out["quantization"] = q
        return out

    layouts = {i.name: i.layout for i in card.inputs}
    inputs = [spec(vi, "QuantizeLinear", layouts.get(vi.name, card.input.layout)) for vi in g.input if vi.name not in inits]
    outputs = [spec(vi, "DequantizeLinear") for vi in g.output]
    return inputs, outputs

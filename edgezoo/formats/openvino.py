"""OpenVINO IR: converted from the fp32 ONNX graph, NNCF for int8, the CPU plugin's
inference precision pinned (an fp32 IR runs in bf16 by default on CPUs that have it)."""

from __future__ import annotations

import re

from edgezoo.formats.base import Artifact
from edgezoo.formats.onnx import OnnxSourced


class OpenvinoFormat(OnnxSourced):
    name = "openvino"
    runtime = "openvino"
    model_file = "model.xml"
    precisions = ("fp32", "fp16", "bf16", "int8")
    tools = {
        "fp32": "openvino.convert_model from the ONNX export",
        "fp16": "openvino.convert_model, compress_to_fp16",
        "bf16": "the fp32 IR run with INFERENCE_PRECISION_HINT=bf16",
        "int8": "nncf.quantize (ranges: minmax = NNCF's min-max, percentile = mean quantile, entropy = histogram)",
    }
    description = "OpenVINO IR (.xml + .bin) run by the OpenVINO CPU plugin"

    def steps(self, precision, spec):
        return ["convert-openvino"] + {"fp32": [], "bf16": ["pin-bf16-inference"], "fp16": ["convert-fp16"],
                                       "int8": ["calibrate", "quantize-static-int8"]}[precision]

    def default_quantization(self, target, spec):
        from edgezoo.schemas.target import Quantization

        from edgezoo.host import VNNI_FLAGS

        no_vnni = target.hardware.arch == "x86_64" and not any(f in target.hardware.isa for f in VNNI_FLAGS)
        return Quantization(
            activation_type="int8" if "amx_int8" in target.hardware.isa else "uint8", weight_type="int8", format="fakequantize",
            per_channel=True, reduce_range=no_vnni,
            rationale="derived: NNCF post-training quantization, performance preset, lowered by the OpenVINO CPU plugin; "
                      + ("no VNNI: NNCF's overflow fix on every layer (7-bit weights), as u8 x s8 products saturate without it"
                         if no_vnni else "overflow fix on the first layer only (NNCF's default)"),
            tool="nncf.quantize")

    def source_operators(self, raw):
        return openvino_operators(raw)

    def fp32(self, ctx):
        from edgezoo.runtimes.openvino import PRECISION_HINT
        from edgezoo.stages import onnx_to_openvino as ovs

        src = self.simplified(ctx)
        out = ctx.work / "fp32" / "model.xml"
        out.parent.mkdir()
        ctx.lineage.append(ovs.convert(src, out, compress_to_fp16=False))
        return Artifact("fp32", out, [out, out.with_suffix(".bin")], {"INFERENCE_PRECISION_HINT": PRECISION_HINT["fp32"]})

    def operators(self, ctx, art):
        from edgezoo.runtimes import openvino as ov

        return ov.operators(art.path)

    def variant(self, ctx, fp32, precision):
        from edgezoo.runtimes.openvino import PRECISION_HINT
        from edgezoo.stages import onnx_to_openvino as ovs

        hint = {"INFERENCE_PRECISION_HINT": PRECISION_HINT[precision]}
        if precision == "bf16":
            # same fp32 IR, computed in bf16 by the CPU plugin: a precision of its own
            return Artifact("bf16", fp32.path, list(fp32.files), hint)
        out = ctx.work / precision / "model.xml"
        out.parent.mkdir()
        if precision == "fp16":
            ctx.lineage.append(ovs.convert(ctx.onnx_fp32, out, compress_to_fp16=True))
        else:
            ignored = tuple(ctx.keep_float)
            if ctx.quantize_only:  # a sensitivity probe: every other weighted layer stays in float
                from edgezoo.pipeline.sensitivity import weighted_layers

                ignored = tuple(n for n, _ in weighted_layers(ctx.onnx_fp32, activations=True) if n not in ctx.quantize_only)
            q = ctx.plan.quantization
            ctx.lineage.append(ovs.quantize_nncf(ctx.onnx_fp32, out, ctx.x_cal, ctx.calib_sha,
                                                 transformer="transformer" in ctx.plan.card.tags, keep_float=ignored,
                                                 overflow_fix="enable" if q is not None and q.reduce_range else "first_layer",
                                                 calibration_method=ctx.plan.calibration_method))
        return Artifact(precision, out, [out, out.with_suffix(".bin")], hint)

    def tensor_specs(self, model_path, card):
        from edgezoo.runtimes.openvino import _ov

        ov = _ov()

        model = ov.Core().read_model(str(model_path))

        def spec(port, layout=""):
            out = {"name": port.get_any_name(), "shape": [int(d) for d in port.get_partial_shape().to_shape()],
                   "dtype": port.get_element_type().to_dtype().name}
            if layout:
                out["layout"] = layout
            return out

        layouts = {i.name: i.layout for i in card.inputs}
        return [spec(p, layouts.get(p.get_any_name(), card.input.layout)) for p in model.inputs], [spec(p) for p in model.outputs]


def openvino_operators(path) -> list[dict]:
    """OpenVINO's CPU plugin answers per operator once the model converts; when its ONNX
    frontend has no conversion rule for an operator, the frontend's own report names it."""
    from edgezoo.errors import ModelFileError, last_line, require
    from edgezoo.runtimes import openvino as ov

    try:
        return ov.operators(path)
    except RuntimeError as exc:
        m = re.search(r"No conversion rule found for operations: ([^\n]+)", str(exc))
        if not m:
            raise ModelFileError(f"OpenVINO cannot read {path.name}: {last_line(exc)[:300]}") from exc
        missing = {name.strip() for name in m.group(1).split(",")}
    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    rows = []
    for node in onnx.load(str(path), load_external_data=False).graph.node:
        full = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") else node.op_type
        placement = "unsupported" if full in missing else "not checked (conversion stopped)"
        rows.append({"op": node.op_type, "layer": node.name or node.output[0], "placement": placement,
                     "note": "no OpenVINO conversion rule" if full in missing else ""})
    return rows

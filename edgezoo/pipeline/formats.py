"""Per-format builders: how each format's fp32 model and each precision variant are made.

A builder works in the build's private folder, appends lineage steps, and returns
:class:`Artifact` records (the model's files plus the runtime configuration it must be
run with, e.g. OpenVINO's pinned inference precision)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgezoo.errors import UsageError


@dataclass
class Artifact:
    precision: str
    path: Path  # the file a runtime opens
    files: list[Path]  # every file of the model (OpenVINO: .xml and .bin)
    config: dict = field(default_factory=dict)

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


@dataclass
class Context:
    plan: object
    work: Path
    lineage: list
    x_cal: np.ndarray
    calib_sha: str
    torch_model: object = None
    onnx_fp32: Path | None = None  # simplified fp32 ONNX (onnx and openvino formats)
    weights_sha: str = ""


class OnnxBuilder:
    ext = "onnx"

    def fp32(self, ctx: Context) -> Artifact:
        return Artifact("fp32", ctx.onnx_fp32, [ctx.onnx_fp32])

    def variant(self, ctx: Context, fp32: Artifact, precision: str) -> Artifact:
        from edgezoo.stages import quantize_onnx as qo

        out = ctx.work / f"{precision}.onnx"
        if precision == "int8":
            q = ctx.plan.quantization
            cfg = qo.StaticConfig(q.activation_type, q.weight_type, q.format, q.per_channel, q.reduce_range,
                                  ctx.plan.calibration_method, ctx.calib_sha, int(len(ctx.x_cal)))
            ctx.lineage.append(qo.quantize_static(fp32.path, out, ctx.x_cal, cfg))
        elif precision == "dynamic-int8":
            ctx.lineage.append(qo.quantize_dynamic(fp32.path, out))
        elif precision == "fp16":
            ctx.lineage.append(qo.convert_fp16(fp32.path, out))
        else:
            raise UsageError(f"onnx does not offer precision {precision!r}")
        return Artifact(precision, out, [out])


class TfliteBuilder:
    ext = "tflite"

    def fp32(self, ctx: Context) -> Artifact:
        from edgezoo.stages import torch_to_litert as tl

        out = ctx.work / "fp32.tflite"
        ctx.lineage.append(tl.convert_fp32(ctx.torch_model, ctx.plan.card, out, ctx.weights_sha))
        return Artifact("fp32", out, [out])

    def variant(self, ctx: Context, fp32: Artifact, precision: str) -> Artifact:
        from edgezoo.stages import torch_to_litert as tl

        out = ctx.work / f"{precision}.tflite"
        if precision == "int8":
            if ctx.plan.tflite_quantizer == "aeq":
                ctx.lineage.append(tl.quantize_aeq_static(fp32.path, out, ctx.x_cal, ctx.calib_sha))
            else:
                ctx.lineage.append(tl.quantize_pt2e(ctx.torch_model, ctx.plan.card, out, ctx.x_cal, ctx.calib_sha))
        elif precision == "dynamic-int8":
            ctx.lineage.append(tl.quantize_aeq_dynamic(fp32.path, out))
        elif precision == "fp16":
            ctx.lineage.append(tl.convert_fp16(fp32.path, out))
        else:
            raise UsageError(f"tflite does not offer precision {precision!r}")
        return Artifact(precision, out, [out])


class OpenvinoBuilder:
    ext = "xml"

    def fp32(self, ctx: Context) -> Artifact:
        from edgezoo.runtimes.openvino import PRECISION_HINT
        from edgezoo.stages import onnx_to_openvino as ovs

        out = ctx.work / "fp32" / "model.xml"
        out.parent.mkdir()
        ctx.lineage.append(ovs.convert(ctx.onnx_fp32, out, compress_to_fp16=False))
        return Artifact("fp32", out, [out, out.with_suffix(".bin")], {"INFERENCE_PRECISION_HINT": PRECISION_HINT["fp32"]})

    def variant(self, ctx: Context, fp32: Artifact, precision: str) -> Artifact:
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
        elif precision == "int8":
            ctx.lineage.append(ovs.quantize_nncf(ctx.onnx_fp32, out, ctx.x_cal, ctx.calib_sha, ctx.plan.card.input.name))
        else:
            raise UsageError(f"openvino does not offer precision {precision!r}")
        return Artifact(precision, out, [out, out.with_suffix(".bin")], hint)


BUILDERS = {"onnx": OnnxBuilder(), "tflite": TfliteBuilder(), "openvino": OpenvinoBuilder()}

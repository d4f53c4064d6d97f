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
    runtime: str | None = None  # when not the format's runtime (the fp32 reference of a tflm build)

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
            choice = ctx.plan.tflite_quantizer
            if choice == "auto" and ctx.plan.quantization is not None and ctx.plan.quantization.integer_io:
                choice = "pt2e"  # int8 inputs and outputs: AI Edge Quantizer keeps float I/O
            if choice == "aeq":
                ctx.lineage.append(tl.quantize_aeq_static(fp32.path, out, ctx.x_cal, ctx.calib_sha))
            elif choice == "pt2e":
                ctx.lineage.append(tl.quantize_pt2e(ctx.torch_model, ctx.plan.card, out, ctx.x_cal, ctx.calib_sha))
            else:
                ctx.lineage.append(self._best_of_both(ctx, fp32, out))
        elif precision == "dynamic-int8":
            ctx.lineage.append(tl.quantize_aeq_dynamic(fp32.path, out))
        elif precision == "fp16":
            ctx.lineage.append(tl.convert_fp16(fp32.path, out))
        else:
            raise UsageError(f"tflite does not offer precision {precision!r}")
        return Artifact(precision, out, [out])


    @staticmethod
    def _best_of_both(ctx: Context, fp32: Artifact, out: Path):
        """Build both LiteRT int8 quantizers and keep the one whose outputs stay closer to
        fp32 on the calibration samples (never the eval split). Measured in
        benchmarks/all_formats.py: neither wins everywhere (AEQ on mobilenet_v2 by 0.6 dB,
        PT2E on resnet18 by 4 dB and mobilenet_v3_small by 10 dB) and both run at the same
        speed in XNNPACK."""
        import shutil
        from dataclasses import replace

        from edgezoo import runtimes
        from edgezoo.bench.accuracy import sqnr_db
        from edgezoo.stages import torch_to_litert as tl

        rt = runtimes.get("litert")
        probe = ctx.x_cal[: min(32, len(ctx.x_cal))]
        ref = runtimes.run_batch(rt.open(fp32.path, 1), probe)
        cands = {"pt2e": ctx.work / "int8-pt2e.tflite", "aeq": ctx.work / "int8-aeq.tflite"}
        steps = {
            "pt2e": tl.quantize_pt2e(ctx.torch_model, ctx.plan.card, cands["pt2e"], ctx.x_cal, ctx.calib_sha),
            "aeq": tl.quantize_aeq_static(fp32.path, cands["aeq"], ctx.x_cal, ctx.calib_sha),
        }
        scores = {k: sqnr_db(ref, runtimes.run_batch(rt.open(p, 1), probe)) for k, p in cands.items()}
        score = {k: (v if v is not None else float("inf")) for k, v in scores.items()}
        best = max(score, key=lambda k: (score[k], k == "pt2e"))
        shutil.copyfile(cands[best], out)
        note = (f"auto: SQNR against fp32 on {len(probe)} calibration samples: "
                + ", ".join(f"{k} {score[k]:.2f} dB" for k in ("pt2e", "aeq")) + f"; kept {best}")
        return replace(steps[best], notes=(*steps[best].notes, note))


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


class TflmBuilder(TfliteBuilder):
    """TensorFlow Lite Micro: the LiteRT fp32 model as the reference (run in LiteRT: it is not
    deployed, and TFLM's float path is not what the board runs), and a full-integer int8 model
    (int8 inputs and outputs) whose tensor arena is measured with the TFLM interpreter."""

    def fp32(self, ctx: Context) -> Artifact:
        art = super().fp32(ctx)
        art.runtime = "litert"
        return art

    def variant(self, ctx: Context, fp32: Artifact, precision: str) -> Artifact:
        from edgezoo.pipeline import micro
        from edgezoo.runtimes import tflite_micro
        from edgezoo.stages import torch_to_litert as tl

        if precision != "int8":
            raise UsageError(f"microcontroller targets take int8 only, not {precision!r}")
        out = ctx.work / "int8.tflite"
        ctx.lineage.append(tl.quantize_pt2e(ctx.torch_model, ctx.plan.card, out, ctx.x_cal, ctx.calib_sha))
        micro.integer_only(out)
        return Artifact("int8", out, [out], {"arena_bytes": tflite_micro.min_arena(out.read_bytes())})


BUILDERS = {"onnx": OnnxBuilder(), "tflite": TfliteBuilder(), "openvino": OpenvinoBuilder(), "tflm": TflmBuilder()}

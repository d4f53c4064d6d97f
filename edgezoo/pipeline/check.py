"""``edgezoo check``: the operator compatibility report of a model on a target, before export.

Zoo models are checked with seeded random weights (the operator set does not depend on
the weights, and nothing is downloaded); the model is lowered to the target's format just
far enough for the runtime to say what it can run: ONNX for onnxruntime and OpenVINO, the
fp32 .tflite for LiteRT, and for the Edge TPU the int8 .tflite it would compile."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgezoo.pipeline import compat


@dataclass
class CheckResult:
    model: str
    target: str
    format: str
    runtime: str
    accelerator: str
    operators: list[compat.OpSupport]
    source: str
    memory: dict | None = None  # microcontrollers: the flash/RAM verdict with the measured arena

    @property
    def fits(self) -> bool:
        return self.memory is None or (self.memory["fits_flash"] and self.memory["fits_ram"])

    @property
    def ok(self) -> bool:
        return not compat.unsupported(self.operators) and self.fits

    @property
    def fallbacks(self) -> list[compat.OpSupport]:
        """Operators that leave the Edge TPU for the host CPU (Ethos-U placement is Vela's, at export)."""
        if self.accelerator != "edgetpu":
            return []
        return [o for o in self.operators if o.placement.startswith("CPU") and "input/output" not in o.placement]


def check(plan, progress=None) -> CheckResult:
    from edgezoo.stages import torch_to_onnx

    card = plan.card
    work = Path(tempfile.mkdtemp(prefix="edgezoo-check-"))
    try:
        accel = plan.target.formats[plan.format].accelerator
        if plan.source == "onnx-file":
            onnx_path = plan.source_path
            source = f"{plan.source_path.name} as given"
        else:
            if progress:
                progress("build model (random weights: the operator set does not depend on them)")
            model = torch_to_onnx.load_model(card, None)
            source = f"{card.architecture} with seeded random weights"
            if plan.format not in ("tflite", "tflm"):
                onnx_path = work / "model.onnx"
                if progress:
                    progress("export onnx")
                torch_to_onnx.export_onnx(model, card, onnx_path, torch_to_onnx.ExportConfig(opset=plan.opset, input_name=card.input.name), "check")
        if progress:
            progress(f"ask {plan.runtime}")
        if plan.format == "tflm":
            from edgezoo.pipeline import micro
            from edgezoo.runtimes import tflite_micro
            from edgezoo.stages import torch_to_litert as tl

            tfl = work / "model.tflite"
            calib = np.random.default_rng(0).standard_normal((16, *card.input.shape[1:])).astype(np.float32)
            if progress:
                progress("quantize to full int8 (16 noise samples: sizes do not depend on calibration)")
            tl.quantize_pt2e(model, card, tfl, calib, "check")
            ops = compat.check_tflite(tfl)
            micro.integer_only(tfl)
            if progress:
                progress("measure the tensor arena with TensorFlow Lite Micro")
            flash_model = None
            if accel.startswith("ethos-u"):
                flash_model, _ = micro.run_vela(tfl, accel, work / "vela")
            memory = micro.memory_report(tfl, plan.target, tflite_micro.min_arena(tfl.read_bytes()), flash_model=flash_model)
            return CheckResult(card.id, plan.target_id, plan.format, plan.runtime, accel, ops, source, memory)
        if plan.format == "onnx":
            ops = compat.check_onnx(onnx_path)
        elif plan.format == "openvino":
            ops = compat.check_openvino(onnx_path)
        else:
            from edgezoo.stages import torch_to_litert as tl

            tfl = work / "model.tflite"
            if accel:
                # the accelerator compiles the int8 model: quantize with a few samples of noise
                calib = np.random.default_rng(0).standard_normal((8, *card.input.shape[1:])).astype(np.float32)
                tl.quantize_pt2e(model, card, tfl, calib, "check")
            else:
                tl.convert_fp32(model, card, tfl, "check")
            ops = compat.check_tflite(tfl, accel)
        return CheckResult(card.id, plan.target_id, plan.format, plan.runtime, accel, ops, source)
    finally:
        shutil.rmtree(work, ignore_errors=True)

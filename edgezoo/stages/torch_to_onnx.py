"""Build a zoo model in PyTorch, load its weights, and export it to ONNX."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgezoo.errors import PipelineError, first_line, require
from edgezoo.hashing import sha256_file
from edgezoo.stages import Step

SEED = 0


@dataclass(frozen=True)
class ExportConfig:
    opset: int = 17
    input_names: tuple[str, ...] = ("input",)
    output_names: tuple[str, ...] = ("logits",)


def load_model(card, weights_path: Path | None, recalib: np.ndarray | None = None):
    """The card's architecture with verified weights, or seeded random weights.

    With random weights, BatchNorm statistics are re-estimated on ``recalib`` (the
    calibration inputs) so activations have realistic ranges: otherwise int8 fidelity
    figures for a random model would say nothing about a trained one.
    """
    torch = require("torch", extra="torch", purpose="building zoo models")
    from edgezoo.zoo import models

    torch.manual_seed(SEED)
    if card.architecture == "tflite-graph":  # a TFLite-only model: its graph is the weights file
        return _tflite_graph(card, weights_path)
    model = models.build(card.architecture)
    if weights_path is not None:
        stored_as = card.version().weights.format
        if stored_as == "safetensors":
            from safetensors.torch import load_file

            state = load_file(str(weights_path))
        elif stored_as == "onnx":
            state = models.onnx_state_dict(card.architecture, weights_path)
        elif stored_as == "h5":
            from edgezoo.zoo import keras

            keras.load_h5(model, weights_path)  # arrays read by h5py, checked against the architecture's shapes
            state = model.state_dict()
        else:
            # weights_only refuses pickled code: a checkpoint can carry tensors, nothing else
            state = torch.load(str(weights_path), map_location="cpu", weights_only=True)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise PipelineError(f"weights do not fit the {card.architecture} architecture: {first_line(exc)}") from exc
    elif recalib is not None:
        _reestimate_batchnorm(model, recalib)
    model.eval()
    return model


def _tflite_graph(card, weights_path: Path | None):
    """The card's .tflite rebuilt in PyTorch (edgezoo.intake.tflite_torch), its fp16-stored
    weights made float32 first; there are no random weights for a graph that is its file."""
    import shutil
    import tempfile

    from edgezoo.errors import UsageError
    from edgezoo.intake import tflite_file, tflite_torch

    if weights_path is None:
        raise UsageError(f"{card.id} is a TFLite graph: its weights are the file itself", hint="drop --weights random")
    with tempfile.TemporaryDirectory(prefix="edgezoo-tflite-") as tmp:
        local = Path(tmp) / "model.tflite"
        shutil.copyfile(weights_path, local)
        tflite_file.float16_weights_to_float32(local)
        return tflite_torch.build(local).eval()


def _reestimate_batchnorm(model, x: np.ndarray, batch: int = 16) -> None:
    import torch

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over all batches
    model.train()
    with torch.no_grad():
        for i in range(0, len(x), batch):
            model(torch.from_numpy(x[i : i + batch]))
    model.eval()


def export_onnx(model, card, out: Path, cfg: ExportConfig, weights_sha: str) -> Step:
    torch = require("torch", extra="torch", purpose="exporting to ONNX")
    dummies = tuple(torch.zeros(tuple(i.shape), dtype=getattr(torch, i.dtype)) for i in card.inputs)
    # The TorchScript exporter gives the classic operator set (GlobalAveragePool, Flatten,
    # Gemm) that onnxruntime's quantizer and int8 kernels fuse best, is deterministic and
    # exports in well under a second; the torch.export-based one (dynamo=True) takes ~5 s
    # for mobilenet_v3_small and emits ReduceMean/Reshape that stay in float after int8 QDQ.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                model,
                dummies,
                str(out),
                input_names=list(cfg.input_names),
                output_names=list(cfg.output_names),
                opset_version=cfg.opset,
                dynamo=False,
                do_constant_folding=True,
            )
        except Exception as exc:
            raise PipelineError(f"ONNX export of {card.id} failed: {first_line(exc)}",
                                hint="the TorchScript exporter could not trace the model; try another format or export the .onnx yourself") from exc
    return Step(
        stage="export-onnx",
        tool="torch.onnx (TorchScript exporter)",
        tool_version=torch.__version__,
        params={"opset": cfg.opset, "inputs": list(cfg.input_names), "outputs": list(cfg.output_names), "batch": 1},
        input_sha256=weights_sha,
        output_sha256=sha256_file(out),
    )

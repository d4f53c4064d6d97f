"""Quantization with onnxruntime's quantization package: static int8 (QDQ or operator form,
calibrated), dynamic int8 (weights only, activations quantized at run time) and fp16."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from edgezoo.errors import PipelineError, UsageError, first_line, require
from edgezoo.hashing import sha256_file
from edgezoo.stages import Step


@dataclass(frozen=True)
class StaticConfig:
    activation_type: str  # "int8" | "uint8"
    weight_type: str
    format: str  # "qdq" | "qoperator"
    per_channel: bool
    reduce_range: bool
    calibration_method: str  # "minmax" | "entropy" | "percentile"
    calibration_sha256: str
    calibration_samples: int
    nodes_to_exclude: tuple[str, ...] = ()
    nodes_to_quantize: tuple[str, ...] = ()  # empty: every node the quantizer supports


def _quant():
    return require("onnxruntime.quantization", package="onnxruntime", extra="onnx", purpose="onnxruntime quantization")


class _QuietRoot:
    """The quantizer logs advice through the root logger ("consider pre-processing"; we
    measured that pre-processing does not help these models): silence it for the call
    only, leaving the caller's logging configuration as it was."""

    def __enter__(self):
        import logging

        self.logger = logging.getLogger()
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc):
        self.logger.setLevel(self.level)


def _qtype(q, name: str):
    return {"int8": q.QuantType.QInt8, "uint8": q.QuantType.QUInt8}[name]


class _Reader:
    """Feeds calibration samples one at a time (the models have batch size 1)."""

    def __init__(self, input_names: list[str], feeds: list[np.ndarray]):
        self._it = iter([{n: f[i : i + 1] for n, f in zip(input_names, feeds)} for i in range(len(feeds[0]))])

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # the entropy/percentile calibrators may ask
        pass


def _input_names(path: Path) -> list[str]:
    onnx = require("onnx", extra="onnx", purpose="loading ONNX models")
    model = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in inits]


def quantize_static(src: Path, out: Path, calib: list[np.ndarray], cfg: StaticConfig) -> Step:
    q = _quant()
    if not len(calib) or len(calib[0]) == 0:
        raise UsageError("static int8 needs calibration data, and none was given", hint="pass --calib-data, or choose --precision fp32/fp16/dynamic-int8")
    method = {
        "minmax": q.CalibrationMethod.MinMax,
        "entropy": q.CalibrationMethod.Entropy,
        "percentile": q.CalibrationMethod.Percentile,
    }[cfg.calibration_method]
    formats = {"qdq": q.QuantFormat.QDQ, "qoperator": q.QuantFormat.QOperator}
    if cfg.format not in formats:  # a scheme meant for another runtime must not slip through as QOperator
        raise PipelineError(f"onnxruntime quantization has no {cfg.format!r} format", hint="use a qdq or qoperator scheme for ONNX")
    fmt = formats[cfg.format]
    reader = _Reader(_input_names(src), calib)
    with tempfile.TemporaryDirectory(prefix="edgezoo-calib-") as tmp:
        # the calibrator writes an augmented copy of the model next to its cache; keep it private
        try:
            with _QuietRoot():
                q.quantize_static(
                    str(src),
                    str(out),
                    reader,
                    quant_format=fmt,
                    per_channel=cfg.per_channel,
                    reduce_range=cfg.reduce_range,
                    activation_type=_qtype(q, cfg.activation_type),
                    weight_type=_qtype(q, cfg.weight_type),
                    calibrate_method=method,
                    nodes_to_exclude=list(cfg.nodes_to_exclude) or None,
                    nodes_to_quantize=list(cfg.nodes_to_quantize) or None,
                    extra_options={"CalibTensorRangeSymmetric": False},
                    calibration_cache_path=Path(tmp) / "calibration.cache" if _supports_cache(q) else None,
                )
        except UsageError:
            raise
        except Exception as exc:
            raise PipelineError(f"onnxruntime static quantization failed: {first_line(exc)}") from exc
    params = asdict(cfg)
    params["nodes_to_exclude"] = list(cfg.nodes_to_exclude)
    params["nodes_to_quantize"] = list(cfg.nodes_to_quantize)
    return Step(
        stage="quantize-static-int8",
        tool="onnxruntime.quantization.quantize_static",
        tool_version=_ort_version(),
        params=params,
        input_sha256=sha256_file(src),
        output_sha256=sha256_file(out),
    )


def _supports_cache(q) -> bool:
    import inspect

    return "calibration_cache_path" in inspect.signature(q.quantize_static).parameters


def quantize_dynamic(src: Path, out: Path, weight_type: str = "int8") -> Step:
    q = _quant()
    try:
        with _QuietRoot():
            q.quantize_dynamic(str(src), str(out), weight_type=_qtype(q, weight_type), per_channel=False)
    except Exception as exc:
        raise PipelineError(f"onnxruntime dynamic quantization failed: {first_line(exc)}") from exc
    return Step(
        stage="quantize-dynamic-int8",
        tool="onnxruntime.quantization.quantize_dynamic",
        tool_version=_ort_version(),
        params={"weight_type": weight_type, "per_channel": False},
        input_sha256=sha256_file(src),
        output_sha256=sha256_file(out),
    )


def convert_fp16(src: Path, out: Path) -> Step:
    onnx = require("onnx", extra="onnx", purpose="loading ONNX models")
    f16 = require("onnxruntime.transformers.float16", package="onnxruntime", extra="onnx", purpose="fp16 conversion")
    model = onnx.load(str(src))
    try:
        # keep_io_types: the bundle still takes and returns float32, so the runner is unchanged
        converted = f16.convert_float_to_float16(model, keep_io_types=True)
    except Exception as exc:
        raise PipelineError(f"fp16 conversion failed: {first_line(exc)}") from exc
    onnx.save(converted, str(out))
    return Step(
        stage="convert-fp16",
        tool="onnxruntime.transformers.float16.convert_float_to_float16",
        tool_version=_ort_version(),
        params={"keep_io_types": True},
        input_sha256=sha256_file(src),
        output_sha256=sha256_file(out),
    )


def _ort_version() -> str:
    return require("onnxruntime", extra="onnx", purpose="onnxruntime").__version__

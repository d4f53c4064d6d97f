"""OpenVINO runtime, CPU plugin, with the inference precision pinned."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, first_line, require
from edgezoo.runtimes.base import Runtime, Session, TensorInfo

NAME = "openvino"
# What each edgezoo precision asks of the CPU plugin. An fp32 or fp16 IR is run in f32:
# left to its default, the plugin runs it in bf16 on CPUs with AVX512_BF16/AMX.
PRECISION_HINT = {"fp32": "f32", "fp16": "f32", "bf16": "bf16", "int8": "f32"}


def _ov():
    decline_telemetry()  # before openvino's import, which may start its telemetry
    return require("openvino", extra="openvino", purpose="running OpenVINO models")


def decline_telemetry() -> None:
    """edgezoo reaches nothing but package registries: decline OpenVINO's usage telemetry for
    this process. openvino_telemetry sends events to Google Analytics by default when no
    consent file exists (from a forked process, which also warns and can deadlock beside
    JAX's threads). Only its consent check is answered "declined"; the user's consent file
    is not read or written."""
    try:
        from openvino_telemetry.utils import opt_in_checker
    except ImportError:  # OpenVINO then uses its own stub
        return
    declined = opt_in_checker.ConsentCheckResult.DECLINED
    opt_in_checker.OptInChecker.check = lambda self, *args, **kwargs: declined
    from openvino_telemetry import Telemetry

    existing = getattr(Telemetry, "_SingletonMetaClass__single_instance", None)
    if existing is not None:  # started before edgezoo was asked (an import elsewhere)
        existing.consent = False


def _info(port) -> TensorInfo:
    shape = port.get_partial_shape()
    dims = tuple(d.get_length() if d.is_static else -1 for d in shape) if shape.rank.is_static else ()
    return TensorInfo(port.get_any_name(), dims, port.get_element_type().to_dtype().name)


class OpenvinoSession(Session):
    def __init__(self, compiled):
        self.compiled = compiled
        self.request = compiled.create_infer_request()
        self.inputs = [_info(p) for p in compiled.inputs]
        self.outputs = [_info(p) for p in compiled.outputs]

    def _run(self, feeds):
        self.request.infer({i: x for i, x in enumerate(feeds)})
        return [np.array(self.request.get_output_tensor(i).data) for i in range(len(self.outputs))]

    def effective_precision(self) -> str:
        return effective_precision(self)


class Openvino(Runtime):
    def __init__(self):
        super().__init__(name=NAME, distribution="openvino", extra="openvino", runner_module="edgezoo.runtimes.run_openvino",
                         runner_requires=("numpy", "openvino"), description="OpenVINO runtime, CPU plugin, inference precision pinned")

    def version(self) -> str:
        return _ov().__version__

    def open(self, path: Path, threads: int = 1, config: dict | None = None) -> OpenvinoSession:
        ov = _ov()
        cfg = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}
        cfg.update(config or {})
        try:
            compiled = ov.Core().compile_model(str(path), "CPU", cfg)
        except Exception as exc:  # OpenVINO raises RuntimeError with a long multi-line text
            raise ModelFileError(f"OpenVINO cannot load {Path(path).name}: {first_line(exc)[:300]}") from exc
        return OpenvinoSession(compiled)


def effective_precision(runner: OpenvinoSession) -> str:
    """The precision the CPU plugin compiled the model to run in: "f32" or "bf16"."""
    return _type_name(runner.compiled.get_property("INFERENCE_PRECISION_HINT"))


def default_precision() -> str:
    """What the CPU plugin would pick for an fp32 model if nobody pinned it."""
    return _type_name(_ov().Core().get_property("CPU", "INFERENCE_PRECISION_HINT"))


def _type_name(value) -> str:
    return value.get_type_name() if hasattr(value, "get_type_name") else str(value)


def host_supports_bf16() -> bool:
    ov = _ov()
    caps = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    return "BF16" in caps


def operators(model_path: Path) -> list[dict]:
    """Per-operator support from the CPU plugin itself (``Core.query_model``)."""
    ov = _ov()
    core = ov.Core()
    model = core.read_model(str(model_path))
    supported = core.query_model(model, "CPU")
    out = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        if kind in ("Parameter", "Result", "Constant"):
            continue
        name = op.get_friendly_name()
        out.append({"op": kind, "layer": name, "placement": "CPU" if name in supported else "unsupported"})
    return out

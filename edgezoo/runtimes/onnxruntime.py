"""onnxruntime, CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, require

NAME = "onnxruntime"


def _ort():
    return require("onnxruntime", extra="onnx", purpose="running ONNX models")


def version() -> str:
    return _ort().__version__


class Runner:
    def __init__(self, sess):
        self.sess = sess
        self.input_name = sess.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.sess.run(None, {self.input_name: x})[0]


def open(path: Path, threads: int = 1, config: dict | None = None) -> Runner:  # noqa: A001 (mirrors the other adapters)
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: graph clean-up notices are not the user's business
    try:
        return Runner(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))
    except Exception as exc:  # onnxruntime raises its own exception types per failure
        raise ModelFileError(f"onnxruntime cannot load {path.name}: {str(exc).splitlines()[0][:300]}") from None


def kernel_registry() -> dict[tuple[str, str], list[tuple[int, int]]]:
    """(domain, op) -> opset version ranges, from onnxruntime's own CPU kernel registry."""
    _ort()
    from onnxruntime.capi import _pybind_state as C

    table: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for k in C.get_all_opkernel_def():
        if k.provider == "CPUExecutionProvider":
            domain = "" if k.domain in ("", "ai.onnx") else k.domain
            table.setdefault((domain, k.op_name), []).append(tuple(k.version_range))
    return table

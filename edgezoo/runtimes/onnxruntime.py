"""onnxruntime CPU execution provider."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, require

NAME = "onnxruntime"


def _ort():
    return require("onnxruntime", extra="onnx", purpose="running ONNX models")


def is_available() -> bool:
    try:
        _ort()
        return True
    except Exception:
        return False


def version() -> str:
    return _ort().__version__


def session(path: Path, threads: int = 1):
    ort = _ort()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # errors only: graph clean-up notices are not the user's business
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types per failure
        raise ModelFileError(f"onnxruntime cannot load {path}: {str(exc).splitlines()[0]}") from None


def run_batch(sess, x: np.ndarray) -> np.ndarray:
    """Run samples one at a time (the bundles are exported with batch size 1)."""
    name = sess.get_inputs()[0].name
    outs = [sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))]
    return np.concatenate(outs, axis=0)


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

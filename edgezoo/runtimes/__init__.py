"""Runtime adapters: onnxruntime, LiteRT, OpenVINO. Each module offers ``version()``,
``open(path, threads, config) -> Runner`` (float32 batch-of-one in, float32 out, with
integer I/O quantized and dequantized by the adapter) and ``operators(path)`` for the
compatibility report. The runtime itself is imported inside those functions."""

from __future__ import annotations

import importlib

import numpy as np

NAMES = ("onnxruntime", "litert", "openvino", "tflite-micro")


def get(name: str):
    if name not in NAMES:
        from edgezoo.errors import NotFoundError

        raise NotFoundError("runtime", name, list(NAMES))
    return importlib.import_module(f"edgezoo.runtimes.{name.replace('-', '_')}")


def run_batch(runner, x: np.ndarray) -> np.ndarray:
    """Run samples one at a time (bundles are exported with batch size 1)."""
    return np.concatenate([runner.run(x[i : i + 1]) for i in range(len(x))], axis=0)

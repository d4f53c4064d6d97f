"""What a runtime plug-in provides.

A :class:`Runtime` opens a model file into a :class:`Session` that takes float32 inputs
and returns float32 outputs, one array per model input and output, batch of one. Models
with integer inputs or outputs (full-integer int8 for accelerators and microcontrollers)
are quantized and dequantized here, once, with each tensor's own scale and zero point.

The bundle's ``run.py`` is assembled from a runner core, the runtime's ``runner_module``
(a small standalone file defining ``class Session``) and the task's runner part, so a new
runtime brings its on-device code with it and no existing file changes.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # -1 for a dynamic dimension
    dtype: str  # numpy dtype name as the runtime sees it ("float32", "int8", ...)
    scale: float = 0.0  # quantization of an integer tensor; 0.0 when float
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        return self.dtype in ("int8", "uint8") and self.scale > 0

    def concrete_shape(self) -> tuple[int, ...]:
        return tuple(d if d > 0 else 1 for d in self.shape)


def quantize(x: np.ndarray, info: TensorInfo) -> np.ndarray:
    """float32 -> the tensor's integer type with its own scale and zero point (clipped)."""
    if not info.quantized:
        return np.asarray(x, dtype=np.dtype(info.dtype))
    lim = np.iinfo(np.dtype(info.dtype))
    return np.clip(np.round(np.asarray(x, np.float32) / info.scale + info.zero_point), lim.min, lim.max).astype(info.dtype)


def dequantize(y: np.ndarray, info: TensorInfo) -> np.ndarray:
    if not info.quantized:
        return np.asarray(y, dtype=np.float32)
    return ((np.asarray(y).astype(np.float32) - info.zero_point) * info.scale).astype(np.float32)


class Session(abc.ABC):
    """An opened model. Subclasses implement ``_run`` on native arrays."""

    inputs: list[TensorInfo]
    outputs: list[TensorInfo]

    def run(self, feeds: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
        if isinstance(feeds, np.ndarray):
            feeds = [feeds]
        if len(feeds) != len(self.inputs):
            from edgezoo.errors import ModelFileError

            raise ModelFileError(f"the model takes {len(self.inputs)} inputs ({', '.join(i.name for i in self.inputs)}); {len(feeds)} were given")
        native = [quantize(x, info) for x, info in zip(feeds, self.inputs)]
        return [dequantize(y, info) for y, info in zip(self._run(native), self.outputs)]

    @abc.abstractmethod
    def _run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Run one sample on native (already quantized) arrays."""

    def effective_precision(self) -> str:
        """The precision the runtime actually computes in, when it may differ from the
        model's (OpenVINO's CPU plugin runs fp32 in bf16 unless pinned); "" when it cannot."""
        return ""


@dataclass
class Runtime(abc.ABC):
    """A runtime plug-in. ``name`` is its registry name; ``distribution`` the package whose
    version is recorded in manifests; ``runner_module`` the standalone file whose ``Session``
    class the bundle's run.py embeds; ``runner_requires`` what the device must install."""

    name: str = ""
    distribution: str = ""
    extra: str = ""
    runner_module: str = ""
    runner_requires: tuple[str, ...] = ()
    description: str = ""

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(self.distribution)
        except PackageNotFoundError:
            return "not installed"

    @abc.abstractmethod
    def open(self, path: Path, threads: int = 1, config: dict | None = None) -> Session:
        """The model opened for inference with ``threads`` intra-op threads."""

    def runner_source(self) -> str:
        from edgezoo.bundle.runner import module_source

        return module_source(self.runner_module)


def run_batch(session: Session, feeds: Sequence[np.ndarray] | np.ndarray) -> list[np.ndarray]:
    """Run N samples one at a time (bundles are exported with batch size 1); returns one
    array per model output, each with N rows."""
    if isinstance(feeds, np.ndarray):
        feeds = [feeds]
    n = len(feeds[0])
    per_sample = [session.run([f[i : i + 1] for f in feeds]) for i in range(n)]
    return [np.concatenate([s[k] for s in per_sample], axis=0) for k in range(len(session.outputs))]

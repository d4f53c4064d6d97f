"""Target profiles: hardware facts, runtime, precisions, quantization scheme and budgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PRECISIONS = ("fp32", "fp16", "int8", "dynamic-int8")
Precision = Literal["fp32", "fp16", "int8", "dynamic-int8"]


@dataclass(frozen=True)
class Hardware:
    arch: Literal["x86_64", "arm64", "armv7"]
    cpu: str
    cores: int
    clock_mhz: int
    isa: tuple[str, ...]
    ram_mb: int
    storage: str
    accelerator: str = ""

    def validate(self) -> None:
        if self.cores < 1:
            raise ValueError("hardware.cores must be at least 1")
        if self.ram_mb < 1:
            raise ValueError("hardware.ram_mb must be positive")


@dataclass(frozen=True)
class Runtime:
    name: Literal["onnxruntime"]
    format: Literal["onnx"]
    precisions: tuple[Precision, ...]
    default_precision: Precision
    threads: int
    opset: int = 17

    def validate(self) -> None:
        if self.default_precision not in self.precisions:
            raise ValueError(f"runtime.default_precision {self.default_precision!r} is not in runtime.precisions")
        if self.threads < 1:
            raise ValueError("runtime.threads must be at least 1")
        if self.opset < 17:
            raise ValueError("runtime.opset must be 17 or newer")


@dataclass(frozen=True)
class Quantization:
    """The int8 scheme the runtime runs fastest and correctly on this ISA.

    Absent from a profile, it is derived from the runtime and the ISA
    (see :func:`edgezoo.targets.quant_scheme`), and the derivation is recorded.
    """

    activation_type: Literal["int8", "uint8"]
    weight_type: Literal["int8", "uint8"]
    format: Literal["qdq", "qoperator"]
    per_channel: bool
    reduce_range: bool
    rationale: str


@dataclass(frozen=True)
class Calibration:
    method: Literal["minmax", "entropy", "percentile"] = "minmax"
    samples: int = 128

    def validate(self) -> None:
        if self.samples < 1:
            raise ValueError("calibration.samples must be at least 1")


@dataclass(frozen=True)
class Budgets:
    max_model_mb: float | None = None
    max_latency_ms: float | None = None
    max_accuracy_drop: float | None = None


@dataclass(frozen=True)
class Target:
    schema_version: int
    id: str
    name: str
    description: str
    hardware: Hardware
    runtime: Runtime
    budgets: Budgets
    calibration: Calibration = Calibration()
    quantization: Quantization | None = None
    notes: str = ""

    def validate(self) -> None:
        if self.schema_version != 1:
            raise ValueError(f"schema_version {self.schema_version} is not supported (this edgezoo reads 1)")

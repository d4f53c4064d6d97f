"""The bundle manifest: what was built, from what, how. Reproducible content only: no
timestamps, no timings (those live in report.json), so a rebuild gives identical bytes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MANIFEST_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ModelRef:
    id: str
    version: str
    name: str
    license: str
    license_notes: str
    weights: str  # "pretrained" | "random" | "local"
    weights_source: str
    weights_sha256: str
    task: str = "image-classification"  # manifests before the task registry were all image classifiers
    weights_license: str = "NOASSERTION"  # manifests before the zoo issue recorded the code's licence only
    commercial_use: bool = True


@dataclass(frozen=True)
class TargetRef:
    id: str
    name: str
    arch: str
    threads: int
    profile_sha256: str


@dataclass(frozen=True)
class RuntimeRef:
    name: str
    version: str
    format: str
    opset: int  # ONNX opset; 0 for other formats
    config: dict[str, Any]  # settings the runner must apply (OpenVINO's inference precision)
    accelerator: str = ""
    proxy: str = ""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str = ""
    quantization: dict[str, Any] | None = None


@dataclass(frozen=True)
class LineageStep:
    stage: str
    tool: str
    tool_version: str
    params: dict[str, Any]
    input_sha256: str
    output_sha256: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Manifest:
    schema_version: int
    edgezoo_version: str
    bundle: str
    model: ModelRef
    target: TargetRef
    runtime: RuntimeRef
    precision: str
    model_file: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    preprocess: dict[str, Any]
    labels: tuple[str, ...]
    files: dict[str, str]
    lineage: tuple[LineageStep, ...]
    quantization: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    deploy: tuple[str, ...] = ()
    task_options: dict[str, float] = field(default_factory=dict)  # the card's settings for the task's runner (a threshold)
    signature: dict[str, str] | None = None  # written by `edgezoo sign`: key id, scheme, envelope file

    def validate(self) -> None:
        if self.schema_version != MANIFEST_SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not supported (this edgezoo reads {MANIFEST_SCHEMA_VERSION})")
        if self.model_file not in self.files:
            raise ValueError(f"model_file {self.model_file!r} has no checksum in 'files'")

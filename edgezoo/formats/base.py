"""What a format plug-in provides.

A :class:`Format` turns the source model (a PyTorch module, or an ONNX graph for formats
built from ONNX) into its fp32 file and into each precision it offers, each step a lineage
entry; lists the model's operators with where they run; describes the model's tensors for
the manifest; and says what to do with the file on the device. The executor
(:mod:`edgezoo.pipeline.executor`) sequences these calls; nothing else knows which format
it is handling.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Artifact:
    precision: str
    path: Path  # the file a runtime opens
    files: list[Path]  # every file of the model (OpenVINO: .xml and .bin)
    config: dict = field(default_factory=dict)  # settings the runtime must be opened with
    runtime: str = ""  # the runtime that runs it ("" = the format's own)

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


@dataclass
class Context:
    """What the stages of one build share: the plan, its private folder, the lineage, the
    calibration samples and the source model in the forms formats are built from."""

    plan: object
    work: Path
    lineage: list
    x_cal: list[np.ndarray]  # calibration samples, one array per model input
    calib_sha: str
    _torch_model: object = None  # the PyTorch source (``torch_model``), or built on first use by ``torch_loader``
    torch_loader: object = None  # zoo models: built only when a stage needs them (a cached export may not)
    onnx_source: Path | None = None  # the raw ONNX graph (exported from PyTorch or the user's file)
    onnx_fp32: Path | None = None  # simplified fp32 ONNX, shared by formats built from ONNX
    tflite_source: Path | None = None  # a float .tflite the user (or a zoo card) brought: no PyTorch module, no ONNX
    weights_sha: str = ""
    check_only: bool = False  # `edgezoo check`: build only what the operator and memory reports need
    keep_float: tuple[str, ...] = ()  # fp32 ONNX node names the int8 build leaves in float
    quantize_only: tuple[str, ...] = ()  # sensitivity probes: quantize these weighted layers, keep the others in float

    @property
    def spec(self):
        return self.plan.target.formats[self.plan.format]

    @property
    def torch_model(self):
        if self._torch_model is None and self.torch_loader is not None:
            self._torch_model = self.torch_loader()
        return self._torch_model

    @torch_model.setter
    def torch_model(self, model) -> None:
        self._torch_model, self.torch_loader = model, None

    @property
    def has_torch(self) -> bool:
        """Whether the source is a PyTorch module (built or still to build)."""
        return self._torch_model is not None or self.torch_loader is not None


class Format(abc.ABC):
    """Subclasses set the class attributes and implement the build methods."""

    name: str = ""
    runtime: str = ""  # registry name of the runtime that runs it
    model_file: str = ""  # file name in the bundle
    built_from: str = "torch"  # "torch" or "onnx": what the fp32 file is converted from
    precisions: tuple[str, ...] = ()  # every precision this format can build
    tools: dict[str, str] = {}  # precision -> how it is built (for `edgezoo formats` and plans)
    description: str = ""
    check_builds_variant: bool = False  # the operator/memory report needs the quantized model
    dynamic_int8_note: str = ""  # what dynamic int8 does to a CNN on this format's runtime (plan warning)
    serial_fp32: bool = False  # the fp32 build keeps one core busy for seconds (a converter tracing in Python)

    def validate_spec(self, target, spec) -> None:
        """Raise ValueError for a profile entry this format cannot serve."""
        bad = [p for p in spec.precisions if p not in self.precisions]
        if bad:
            raise ValueError(f"format {self.name} cannot build precision {bad[0]!r} (it builds {', '.join(self.precisions)})")

    @abc.abstractmethod
    def steps(self, precision: str, spec) -> list[str]:
        """The plan's steps from the source model to the chosen variant (without the common
        load/evaluate/benchmark/bundle steps)."""

    @abc.abstractmethod
    def default_quantization(self, target, spec):
        """The int8 scheme this format's runtime needs on the target, when the profile names none."""

    def opset(self, spec) -> int:
        return 0

    def prepare(self, ctx: Context):
        """Work before the fp32 conversion; may return an operator report of the source
        (ONNX formats check the raw graph before onnxsim runs it)."""
        return None

    @abc.abstractmethod
    def fp32(self, ctx: Context) -> Artifact:
        """The fp32 model file built from the source model (a lineage entry in ``ctx``)."""

    @abc.abstractmethod
    def variant(self, ctx: Context, fp32: Artifact, precision: str) -> Artifact:
        """The model file of ``precision`` (fp16, int8, ...), built from ``fp32`` or the source."""

    @abc.abstractmethod
    def operators(self, ctx: Context, art: Artifact) -> list[dict]:
        """Every operator of ``art`` as the runtime sees it: dicts with op, layer, placement
        (and dtype, note where known)."""

    def operator_warnings(self, report) -> list[str]:
        """Plain statements about the grouped operator report (e.g. operators the fast path
        does not take, and what that costs); shown in the CLI and the bundle's report."""
        return []

    def finish(self, ctx: Context, art: Artifact):
        """After the variant is built: format-specific verdicts and extra bundle files
        (microcontroller memory, firmware). Returns a record for the report, or None."""
        return None

    @abc.abstractmethod
    def tensor_specs(self, model_path: Path, card) -> tuple[list[dict], list[dict]]:
        """The model's inputs and outputs for the manifest (shape, dtype, quantization)."""

    def deploy_notes(self, plan) -> list[str]:
        return []

    def summary(self, plan) -> dict:
        """Extra plan lines (`export --dry-run`)."""
        return {}

"""Target profiles: hardware facts, the formats and runtimes the target deploys, their
precisions and quantization scheme, and budgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from typing import Any

PRECISIONS = ("fp32", "fp16", "bf16", "int8", "dynamic-int8")
Precision = Literal["fp32", "fp16", "bf16", "int8", "dynamic-int8"]


@dataclass(frozen=True)
class Hardware:
    # application processors: x86_64, arm64, armv7 (32-bit Cortex-A); microcontrollers: armv7e-m
    # (Cortex-M4/M7), armv8.1-m (Cortex-M55/M85), xtensa (ESP32)
    arch: Literal["x86_64", "arm64", "armv7", "armv7e-m", "armv8.1-m", "xtensa"]
    cpu: str
    cores: int
    clock_mhz: int
    isa: tuple[str, ...]
    ram_mb: float  # a microcontroller's on-chip SRAM is a fraction of a MB (the nRF52840's 256 KB: 0.25)
    storage: str
    accelerator: str = ""

    def validate(self) -> None:
        if self.cores < 1:
            raise ValueError("hardware.cores must be at least 1")
        if self.ram_mb <= 0:
            raise ValueError("hardware.ram_mb must be positive")


@dataclass(frozen=True)
class Quantization:
    """The int8 scheme a runtime runs fastest and correctly on this ISA.

    Absent from a profile, it is derived from the format's runtime and the ISA
    (see :func:`edgezoo.targets.quant_scheme`), and the derivation is recorded.
    """

    activation_type: Literal["int8", "uint8"]
    weight_type: Literal["int8", "uint8"]
    format: Literal["qdq", "qoperator", "tflite", "fakequantize"]
    per_channel: bool
    reduce_range: bool
    rationale: str
    tool: str = ""
    integer_io: bool = False  # int8 input/output tensors (Edge TPU, microcontrollers)


@dataclass(frozen=True)
class FormatSpec:
    """One deployable format on this target and the runtime that runs it. Format, runtime
    and accelerator names are those of registered plug-ins (`edgezoo formats`)."""

    runtime: str
    precisions: tuple[Precision, ...]
    default_precision: Precision
    opset: int = 17
    quantization: Quantization | None = None
    accelerator: str = ""
    accelerator_options: dict[str, Any] = field(default_factory=dict)
    proxy: str = ""  # how host measurements relate to the device, when the device runs another runtime
    rationale: str = ""
    deploy: dict[str, str] = field(default_factory=dict)  # precision (or "*") -> what to run on the device

    def validate(self) -> None:
        if self.default_precision not in self.precisions:
            raise ValueError(f"default_precision {self.default_precision!r} is not in precisions {list(self.precisions)}")
        if self.opset < 17:
            raise ValueError("opset must be 17 or newer")

    def deploy_notes(self, precision: str) -> list[str]:
        return [n for n in (self.deploy.get("*"), self.deploy.get(precision)) if n]


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
class Memory:
    """A microcontroller's memory and what the firmware around the model needs.

    flash: model bytes + ``runtime_flash_kb`` (TFLite Micro and its kernels) + ``app_flash_kb``
    must fit ``flash_kb``. RAM: the measured tensor arena plus ``arena_headroom`` (a fraction)
    + ``app_ram_kb`` (stack, heap, buffers) must fit ``ram_kb``.
    """

    flash_kb: int
    ram_kb: int
    runtime_flash_kb: int
    app_flash_kb: int
    app_ram_kb: int
    arena_headroom: float
    kernel_library: Literal["cmsis-nn", "esp-nn", "reference", "ethos-u"]
    cycles_per_mac: float  # for the labelled latency estimate of the kernel library
    cycles_source: str
    compiler_cpu: str = "cortex-m4"  # -mcpu for arm-none-eabi-gcc compile checks of the firmware sources

    def validate(self) -> None:
        if min(self.flash_kb, self.ram_kb) <= 0:
            raise ValueError("memory.flash_kb and memory.ram_kb must be positive")
        if not 0 <= self.arena_headroom < 1:
            raise ValueError("memory.arena_headroom is a fraction in [0, 1)")
        if self.cycles_per_mac <= 0:
            raise ValueError("memory.cycles_per_mac must be positive")


@dataclass(frozen=True)
class Target:
    schema_version: int
    id: str
    name: str
    description: str
    hardware: Hardware
    threads: int
    default_format: str
    formats: dict[str, FormatSpec]
    budgets: Budgets
    calibration: Calibration = field(default_factory=Calibration)
    memory: Memory | None = None
    notes: str = ""

    def validate(self) -> None:
        if self.schema_version != 2:
            raise ValueError(f"schema_version {self.schema_version} is not supported (this edgezoo reads 2)")
        if self.threads < 1:
            raise ValueError("threads must be at least 1")
        from edgezoo import registry

        for name, spec in self.formats.items():
            registry.require_name("formats", name, f"formats.{name}")
            plugin = registry.format(name)
            if spec.runtime != plugin.runtime:
                raise ValueError(f"formats.{name}.runtime must be {plugin.runtime!r} (the runtime of format {name})")
            plugin.validate_spec(self, spec)
            if spec.accelerator:
                registry.require_name("accelerators", spec.accelerator, f"formats.{name}.accelerator")
                registry.accelerator(spec.accelerator).validate_options(spec.accelerator_options)
        if self.default_format not in self.formats:
            raise ValueError(f"default_format {self.default_format!r} has no [formats.{self.default_format}] table")

    def format(self, name: str | None = None) -> tuple[str, FormatSpec]:
        name = name or self.default_format
        if name not in self.formats:
            from edgezoo import registry
            from edgezoo.errors import UsageError

            registry.require_name("formats", name)

            raise UsageError(f"target {self.id} does not deploy format {name!r}", hint=f"it deploys {', '.join(self.formats)}")
        return name, self.formats[name]

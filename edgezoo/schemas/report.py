"""What an export measured: report.json, written from these records and read back with
the strict loader. Timings live here, never in the manifest (which must rebuild byte for
byte)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REPORT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Quality:
    """Scores of one variant's outputs against the reference outputs (and labels, if any)."""

    samples: int
    gate_metric: str  # the task metric that gates the accuracy budget ("top1", ...)
    metrics: dict[str, float] = field(default_factory=dict)  # task metrics on labelled data; empty without labels
    agreement: float = 100.0  # percent of samples whose task result equals the reference's
    cosine: float = 1.0  # mean cosine similarity of the raw outputs with the reference's
    sqnr_db: float | None = None  # signal-to-quantization-noise ratio against the reference; None when identical
    max_abs_diff: float = 0.0
    top1: float | None = None  # image classification's gate metric, kept under its historical key

    @property
    def gate_value(self) -> float | None:
        return self.metrics.get(self.gate_metric)


@dataclass(frozen=True)
class Latency:
    runtime: str
    threads: int
    warmup: int
    runs: int
    p50_ms: float
    p90_ms: float
    mean_ms: float
    min_ms: float
    peak_rss_mb: float
    load_ms: float
    round_p50_ms: tuple[float, ...] = ()  # the median of each of 5 consecutive rounds (the noise)
    quantiles_ms: dict[str, float] = field(default_factory=dict)  # percentile ("1", "10", ... "99") -> ms

    @property
    def spread(self) -> float:
        """Relative spread of the round medians, (max - min) / median; 0 when not recorded."""
        r = sorted(self.round_p50_ms)
        return (r[-1] - r[0]) / r[len(r) // 2] if len(r) > 1 and r[len(r) // 2] > 0 else 0.0


@dataclass(frozen=True)
class OpSupport:
    op_type: str
    count: int
    supported: bool
    placement: str  # "CPU", "CPU (XNNPACK)", "Edge TPU", "TFLite Micro (cmsis-nn)", "unsupported", ...
    first_node: str
    domain: str = ""
    opset: int = 0
    note: str = ""


@dataclass(frozen=True)
class TensorSize:
    name: str
    shape: tuple[int, ...]
    dtype: str
    bytes: int


@dataclass(frozen=True)
class MemoryReport:
    """A microcontroller's flash and RAM verdict with the measured tensor arena."""

    model_bytes: int
    arena_measured_bytes: int
    arena_headroom: float
    arena_bytes: int
    flash_needed_bytes: int
    ram_needed_bytes: int
    flash_budget_bytes: int
    ram_budget_bytes: int
    flash_breakdown: dict[str, int]
    ram_breakdown: dict[str, int]
    fits_flash: bool
    fits_ram: bool
    largest_activations: tuple[TensorSize, ...]
    largest_constants: tuple[TensorSize, ...]
    kernel_library: str
    method: str

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_ram


@dataclass(frozen=True)
class LatencyEstimate:
    estimate_ms: float
    method: str
    cycles_source: str


@dataclass(frozen=True)
class VelaSummary:
    """Arm Vela's own summary of a model compiled for an Ethos-U NPU."""

    accelerator: str
    system_config: str
    memory_mode: str
    vela_version: str
    npu_operators: int | None
    cpu_operators: int | None
    cpu_placed: tuple[str, ...]
    sram_bytes: float
    flash_bytes: float
    npu_cycles: float | None
    total_cycles: float | None
    inference_time_ms: float
    macs: float | None
    method: str
    tool: str = "ethos-u-vela"

    @property
    def tool_version(self) -> str:
        return self.vela_version

    @property
    def stage(self) -> str:
        return "compile-vela"

    def params(self) -> dict:
        return {"accelerator": self.accelerator, "system_config": self.system_config, "memory_mode": self.memory_mode}

    def latency_estimate(self) -> LatencyEstimate:
        return LatencyEstimate(self.inference_time_ms, f"Vela's estimate for {self.accelerator} ({self.total_cycles or 0:.0f} cycles)", self.method)


@dataclass(frozen=True)
class MicroReport:
    memory: MemoryReport
    latency_estimate: LatencyEstimate
    vela: VelaSummary | None = None
    compile: dict[str, Any] = field(default_factory=dict)
    resolver_ops: tuple[str, ...] = ()
    firmware_model: str = ""


@dataclass(frozen=True)
class VariantReport:
    runtime: str
    runtime_config: dict[str, Any]
    size_bytes: int
    quality: Quality | None = None
    latency: Latency | None = None
    effective_precision: str | None = None


@dataclass(frozen=True)
class StageProfile:
    """Where an export's time and memory went, per stage: CPU seconds of the exporting process
    and of the child processes it waited for (latency workers), and the process's peak
    resident memory when the stage ended."""

    cpu_s: float
    children_cpu_s: float
    peak_rss_mb: float


@dataclass(frozen=True)
class PruneCompare:
    """One measure of the pruned export beside the same export of the unpruned model."""

    measure: str  # "params (PyTorch)", "MACs (PyTorch)", "MACs (exported ONNX)", "file bytes", "gzip bytes", "p50 ms", a metric
    unpruned: float
    pruned: float
    ratio: float | None  # pruned / unpruned (None when unpruned is 0)


@dataclass(frozen=True)
class Pruning:
    """What pruning (and fine-tuning) did, and whether it survived the export: the unpruned
    model built the same way (format, precision, runtime) is measured beside the pruned one."""

    method: str  # "structured" | "unstructured" | "" (fine-tuning only)
    ratio: float
    layers: dict[str, float]
    weight_sparsity: float  # fraction of zero weights in the convolutions and linear layers
    compare: tuple[PruneCompare, ...]
    survived: bool  # the exported file is smaller, or faster, in the way the method promises
    verdict: str
    finetune: dict[str, Any] | None = None  # epochs, samples, learning rate, history


@dataclass(frozen=True)
class HostInfo:
    machine: str
    processor: str
    cpus: int
    python: str
    note: str
    isa: str = ""  # the host's instruction set as edgezoo reads it ("x86_64 AVX2+FMA, no VNNI"): int8 figures depend on it


@dataclass(frozen=True)
class Report:
    schema_version: int
    model: str
    target: str
    format: str
    runtime: str
    precision: str
    weights: str
    task: str
    metric: str
    eval_data: str
    variants: dict[str, VariantReport]
    size_ratio_vs_fp32: float
    verdicts: tuple[str, ...]
    warnings: tuple[str, ...]
    stage_seconds: dict[str, float]
    host: HostInfo
    operators: tuple[OpSupport, ...] = ()
    speedup_vs_fp32: float | None = None  # only between variants on the same runtime
    export_check: Quality | None = None  # the fp32 export against PyTorch
    microcontroller: MicroReport | None = None
    stage_profile: dict[str, StageProfile] = field(default_factory=dict)  # CPU and memory per stage (wall time: stage_seconds)
    pruning: Pruning | None = None
    keep_float: tuple[str, ...] = ()  # layers left in float in the quantized variant (--keep-float)
    keep_float_reason: str = ""
    cache_hits: tuple[str, ...] = ()  # stages whose result came from the stage cache (edgezoo cache info)

    def validate(self) -> None:
        if self.schema_version != REPORT_SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not supported (this edgezoo reads {REPORT_SCHEMA_VERSION})")
        if self.precision not in self.variants:
            raise ValueError(f"precision {self.precision!r} has no entry in 'variants'")

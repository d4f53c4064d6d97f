"""A gate's baseline: the numbers a bundle was accepted with, and where they were measured.

A small JSON file meant to be committed beside the code (``baselines/MODEL-TARGET.json``);
``edgezoo gate --update-baseline`` writes it, ``edgezoo gate`` compares a new bundle with it.
"""

from __future__ import annotations

from dataclasses import dataclass

BASELINE_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Environment:
    """Where the latency was measured: comparing figures from different machines is a warning."""

    measured_on: str  # "host" (a proxy for the device) or "device"
    machine: str
    processor: str
    cpus: int
    python: str
    runtime: str  # "litert 2.3.0"
    edgezoo_version: str
    threads: int


@dataclass(frozen=True)
class Baseline:
    """Accepted figures of one model on one target, format and precision."""

    schema_version: int
    model: str
    model_version: str
    target: str
    format: str
    precision: str
    task: str
    metric: str  # the metric the accuracy checks read ("top1", "auc", ...; "agreement" without labels)
    accuracy: float | None  # that metric for this precision, in the report's units (percent for top1)
    fp32_accuracy: float | None
    size_bytes: int
    p50_ms: float | None
    p90_ms: float | None
    environment: Environment
    round_p50_ms: tuple[float, ...] = ()  # medians of repeated rounds: the noise of p50_ms
    latency_source: str = "measured"  # "measured" (host), "device" (bench --device) or "estimate" (microcontroller cycles)
    created: str = ""  # ISO 8601 date the baseline was accepted
    notes: str = ""

    def validate(self) -> None:
        if self.schema_version != BASELINE_SCHEMA_VERSION:
            raise ValueError(f"schema_version {self.schema_version} is not supported (this edgezoo reads {BASELINE_SCHEMA_VERSION})")
        if self.size_bytes <= 0:
            raise ValueError("size_bytes must be positive")
        if self.p50_ms is not None and self.p50_ms <= 0:
            raise ValueError("p50_ms must be positive")

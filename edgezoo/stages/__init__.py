"""Pipeline stages: each is file in -> file out with a typed config, and returns a lineage
record (what ran, with which parameters and tool versions, on which input hash)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """One lineage entry: reproducible fields only (no timestamps, no wall times)."""

    stage: str
    tool: str
    tool_version: str
    params: dict
    input_sha256: str
    output_sha256: str
    notes: tuple[str, ...] = field(default=())

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


def example_args(card):
    """Zero tensors of every model input (batch of one): what exporters trace with."""
    import torch

    return tuple(torch.zeros(tuple(i.shape), dtype=getattr(torch, i.dtype)) for i in card.inputs)


def sample_args(feeds, i: int):
    """Sample ``i`` of every input as torch tensors (batch of one)."""
    import torch

    return tuple(torch.from_numpy(f[i : i + 1]) for f in feeds)


def count(feeds) -> int:
    return int(len(feeds[0])) if len(feeds) else 0

"""Accuracy on labelled data and fidelity of a variant's outputs against the fp32 reference."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Quality:
    samples: int
    top1: float | None  # percent, when labels exist
    agreement: float  # percent of samples whose top-1 class equals fp32's
    cosine: float  # mean cosine similarity of logits with fp32's
    sqnr_db: float | None  # signal-to-quantization-noise ratio against fp32's; None when identical
    max_abs_diff: float


def top1(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels) * 100.0)


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float | None:
    noise = np.sum((ref.astype(np.float64) - out.astype(np.float64)) ** 2)
    signal = np.sum(ref.astype(np.float64) ** 2)
    if noise == 0:
        return None  # identical outputs (JSON has no infinity)
    return float(10.0 * np.log10(signal / noise))


def compare(ref: np.ndarray, out: np.ndarray, labels: np.ndarray | None) -> Quality:
    ref = ref.reshape(len(ref), -1)
    out = out.reshape(len(out), -1)
    num = np.sum(ref * out, axis=1)
    den = np.linalg.norm(ref, axis=1) * np.linalg.norm(out, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)
    return Quality(
        samples=len(ref),
        top1=top1(out, labels) if labels is not None else None,
        agreement=float(np.mean(np.argmax(ref, 1) == np.argmax(out, 1)) * 100.0),
        cosine=float(np.mean(cos)),
        sqnr_db=sqnr_db(ref, out),
        max_abs_diff=float(np.max(np.abs(ref - out))),
    )

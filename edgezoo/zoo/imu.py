"""Accelerometer gestures made here (truth by construction): two seconds of 3-axis
acceleration in g at 50 Hz, as a wrist or handheld device would record it, with gravity,
a random device orientation, sensor noise and bias. Train and evaluation use disjoint seeds
and the evaluation uses wider ranges of speed and strength (people who move differently).

Gestures: idle, wave (side to side), circle, punch (a sharp jab forward), shake, flip (the
device turned over).
"""

from __future__ import annotations

import numpy as np

RATE = 50
SAMPLES = 100
GESTURES = ("idle", "wave", "circle", "punch", "shake", "flip")
SPLITS = {"train": (150, 1, 1.0), "calib": (10, 2, 1.0), "eval": (40, 3, 1.3)}  # per gesture, seed, range widening


def _rotation(rng) -> np.ndarray:
    q = rng.standard_normal(4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def gesture(kind: str, rng, widen: float = 1.0) -> np.ndarray:
    t = np.arange(SAMPLES) / RATE
    def span(lo, hi):
        mid, half = (lo + hi) / 2, (hi - lo) / 2 * widen
        return float(rng.uniform(max(1e-3, mid - half), mid + half))

    motion = np.zeros((SAMPLES, 3))
    gravity = np.tile([0.0, 0.0, 1.0], (SAMPLES, 1))
    start = int(rng.integers(0, 30))
    active = (np.arange(SAMPLES) >= start) & (np.arange(SAMPLES) < start + int(span(50, 70)))
    if kind == "wave":
        f, a = span(1.5, 3.0), span(0.5, 1.5)
        motion[:, 0] = a * np.sin(2 * np.pi * f * t + rng.uniform(0, 6.28)) * active
    elif kind == "circle":
        f, a, ph = span(0.8, 1.6), span(0.4, 1.0), rng.uniform(0, 6.28)
        motion[:, 0] = a * np.cos(2 * np.pi * f * t + ph) * active
        motion[:, 1] = a * np.sin(2 * np.pi * f * t + ph) * active
    elif kind == "punch":
        c, w, a = start + int(rng.integers(10, 40)), span(2.0, 4.0), span(1.5, 3.5)
        n = np.arange(SAMPLES)
        motion[:, 1] = a * np.exp(-0.5 * ((n - c) / w) ** 2) - 0.6 * a * np.exp(-0.5 * ((n - c - 2.5 * w) / w) ** 2)
    elif kind == "shake":
        a = span(0.8, 2.0)
        motion = rng.standard_normal((SAMPLES, 3)) * a * active[:, None]
        motion = np.convolve(motion[:, 0], np.ones(2) / 2, "same")[:, None] * np.array([1.0, 0.6, 0.4]) + \
            rng.standard_normal((SAMPLES, 3)) * 0.3 * a * active[:, None]
    elif kind == "flip":
        c, d = start + int(rng.integers(10, 40)), span(10, 25)
        angle = np.pi / (1 + np.exp(-(np.arange(SAMPLES) - c) / (d / 6)))
        gravity = np.stack([np.zeros(SAMPLES), np.sin(angle), np.cos(angle)], axis=1)
    x = (gravity + motion) @ _rotation(rng).T
    x += rng.standard_normal((SAMPLES, 3)) * span(0.01, 0.05) + rng.uniform(-0.05, 0.05, 3)
    return x.astype(np.float32)


def make_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    per, seed, widen = SPLITS[split]
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for _ in range(per):
        for label, kind in enumerate(GESTURES):
            xs.append(gesture(kind, rng, widen))
            ys.append(label)
    return np.stack(xs), np.array(ys, np.int64)

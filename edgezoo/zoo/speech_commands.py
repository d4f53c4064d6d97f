"""Spoken keywords made here: the ten Speech Commands keywords, other words ("unknown") and
noise ("silence"), spoken by espeak-ng and flite voices at several speeds and pitches,
placed at random in one second of noise. Training, calibration and evaluation use disjoint
voices, so the evaluation measures how the model copes with voices it never heard.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero", "one", "two", "three",
           "four", "five", "six", "seven", "eight", "nine", "forward", "backward", "follow", "learn", "visual")
LABELS = (*KEYWORDS, "_unknown_", "_silence_")
VOICES = {
    "train": ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "kal16", "awb"),
    "calib": ("en-us", "awb"),
    "eval": ("en-029", "en-gb-x-gbcwmd", "rms", "slt"),  # never heard in training
}
SPEEDS = {"train": (120, 150, 180, 210), "calib": (140, 190), "eval": (135, 170, 200)}
PITCHES = {"train": (25, 50, 75), "calib": (50,), "eval": (40, 65)}
SEEDS = {"train": 1, "calib": 2, "eval": 3}


def make_split(split: str) -> tuple[np.ndarray, np.ndarray]:
    """(audio N x 16000 float32, labels N) for a split."""
    from edgezoo.zoo.audio import RATE, speak

    rng = np.random.default_rng(SEEDS[split])
    clips, labels = [], []
    with tempfile.TemporaryDirectory(prefix="edgezoo-kws-") as tmp:
        for voice in VOICES[split]:
            flite = voice in ("kal16", "awb", "rms", "slt")
            for speed in SPEEDS[split]:
                for pitch in PITCHES[split][:1] if flite else PITCHES[split]:
                    unknown = [UNKNOWN[int(i)] for i in rng.choice(len(UNKNOWN), 3, replace=False)]
                    for label, word in [(LABELS.index(k), k) for k in KEYWORDS] + [(10, u) for u in unknown]:
                        u = speak(word, voice, speed, pitch, Path(tmp))[:RATE]
                        clip = np.zeros(RATE, np.float32)
                        start = int(rng.integers(0, RATE - len(u) + 1))
                        clip[start : start + len(u)] = u * float(rng.uniform(0.2, 0.9))
                        clips.append(clip)
                        labels.append(label)
        for _ in range(max(4, len(clips) // 12)):  # silence: noise alone
            clips.append(np.zeros(RATE, np.float32))
            labels.append(11)
    audio = np.stack(clips)
    for i in range(len(audio)):
        speech = audio[i]
        rms = float(np.sqrt(np.mean(speech[speech != 0] ** 2))) if np.any(speech) else 0.05
        noise = rng.standard_normal(RATE).astype(np.float32)
        level = rms / (10 ** (float(rng.uniform(10, 30)) / 20)) if np.any(speech) else float(rng.uniform(0.001, 0.05))
        audio[i] = np.clip(speech + noise * level, -1, 1)
    return audio, np.array(labels, np.int64)


def load(split: str) -> tuple[np.ndarray, np.ndarray]:
    from edgezoo.zoo.audio import require_synthesisers
    from edgezoo.zoo.sources import cache_subdir

    tools = require_synthesisers()
    key = hashlib.sha256(repr((sorted(tools.items()), VOICES[split], SPEEDS[split], PITCHES[split], SEEDS[split], LABELS, "v1"))
                         .encode()).hexdigest()[:16]
    path = cache_subdir("data") / f"speech-commands-synth-{split}-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["audio"], z["labels"]
    audio, labels = make_split(split)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as fh:
        np.savez_compressed(fh, audio=audio, labels=labels)
    Path(fh.name).replace(path)
    return audio, labels

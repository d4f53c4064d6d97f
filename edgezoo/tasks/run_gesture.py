"""The gesture part of a bundle's run.py (everything below the marker is embedded)."""

import numpy as np

from edgezoo.bundle.runner import InputError

# --- run.py ---
# Task: gesture recognition. Reads accelerometer samples (a CSV with columns ax, ay, az in g,
# one row per sample at the model's rate, or an N x 3 .npy), takes the last window the model
# needs, and prints the gesture with its probability.
def read_input(path, manifest):
    import csv

    if not path.is_file():
        raise InputError(f"no such input file: {path}")
    if path.suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{path} is not a readable .npy array: {exc}") from None
    else:
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8-sig").splitlines()) if r]
        try:
            float(rows[0][0])
        except (ValueError, IndexError):
            rows = rows[1:]  # a header
        try:
            x = np.array([[float(v) for v in r[:3]] for r in rows], np.float32)
        except ValueError:
            raise InputError(f"{path}: rows must be three numbers (ax, ay, az in g)") from None
    channels, samples = manifest["inputs"][0]["shape"][1:]
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != channels:
        raise InputError(f"{path} holds {list(x.shape)} values; this model takes rows of {channels} axes")
    if len(x) < samples:
        raise InputError(f"{path} has {len(x)} samples; this model needs {samples} (2 s at 50 Hz)")
    return [x[-samples:].T[None].astype(np.float32)]


def add_arguments(parser):
    parser.add_argument("--top", type=int, default=3, help="how many gestures to print (default 3)")


def present(outputs, manifest, args):
    z = np.asarray(outputs[0], np.float64).reshape(-1)
    p = np.exp(z - z.max())
    p /= p.sum()
    labels = manifest["labels"]
    order = np.argsort(-p, kind="stable")[: max(1, args.top)]
    return {"top": [{"label": labels[i], "probability": float(p[i])} for i in order]}


def render(result):
    return "\n".join(f"{t['label']:>12}  {t['probability']:.4f}" for t in result["top"])

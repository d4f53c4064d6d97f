"""The image-classification part of a bundle's run.py (everything below the marker is
embedded). edgezoo's own scoring imports ``top1_index`` from here, so accuracy is measured
through exactly what the runner prints."""

import numpy as np

# --- run.py ---
# Task: image classification. Prints the top classes with softmax scores.
def top1_index(logits):
    return np.argmax(np.asarray(logits).reshape(len(logits), -1), axis=1)


def add_arguments(parser):
    parser.add_argument("--top", type=int, default=3, help="how many classes to print (default 3)")


def present(outputs, manifest, args):
    z = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
    e = np.exp(z - z.max())
    probs = e / e.sum()
    labels = manifest["labels"]
    order = np.argsort(-probs, kind="stable")[: max(1, args.top)]
    return {"top": [{"index": int(i), "label": labels[i] if i < len(labels) else str(i), "score": float(probs[i])} for i in order]}


def render(result):
    return "\n".join(f"{t['label']:>24}  {t['score']:.4f}" for t in result["top"])

"""The tabular part of a bundle's run.py (everything below the marker is embedded).
edgezoo's own scoring imports ``predicted_class`` and ``predicted_value`` from here, so
accuracy is measured through exactly what the runner prints."""

import numpy as np

# --- run.py ---
# Task: tabular. Prints the predicted class (with probabilities) or the predicted value.
def predicted_class(logits):
    return np.argmax(np.asarray(logits).reshape(len(logits), -1), axis=1)


def predicted_value(values):
    return np.asarray(values, dtype=np.float64).reshape(len(values), -1)[:, 0]


def add_arguments(parser):
    parser.add_argument("--top", type=int, default=3, help="classification: how many classes to print (default 3)")


def present(outputs, manifest, args):
    y = np.asarray(outputs[0], dtype=np.float64).reshape(-1)
    if manifest["model"]["task"] == "tabular-regression":
        return {"value": float(y[0])}
    e = np.exp(y - y.max())
    probs = e / e.sum()
    labels = manifest["labels"]
    order = np.argsort(-probs, kind="stable")[: max(1, args.top)]
    return {"top": [{"index": int(i), "label": labels[i] if i < len(labels) else str(i), "probability": float(probs[i])} for i in order]}


def render(result):
    if "value" in result:
        return f"predicted value: {result['value']:.4g}"
    return "\n".join(f"{t['label']:>24}  {t['probability']:.4f}" for t in result["top"])

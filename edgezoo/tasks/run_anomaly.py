"""The anomaly-detection part of a bundle's run.py (everything below the marker is embedded).
edgezoo's scoring imports ``scores`` and ``is_anomaly`` from here, so the reported AUC is
computed as the runner computes its verdict."""

import numpy as np

# --- run.py ---
# Task: anomaly detection. The model reconstructs its input; the anomaly score is the mean
# squared reconstruction error divided by the card's threshold (manifest.json, task_options),
# so 1.0 is the threshold chosen on normal training data.
def scores(inputs, reconstruction, threshold):
    x = np.asarray(inputs, np.float64).reshape(len(inputs), -1)
    y = np.asarray(reconstruction, np.float64).reshape(len(reconstruction), -1)
    return ((x - y) ** 2).mean(axis=1) / float(threshold)


def is_anomaly(score):
    return np.asarray(score) >= 1.0


def add_arguments(parser):
    pass


def infer(session, feeds, manifest):
    recon = session.run(feeds)[0]
    return [scores(feeds[0], recon, manifest["task_options"]["threshold"])[:, None], recon]


def present(outputs, manifest, args):
    score = float(np.asarray(outputs[0]).reshape(-1)[0])
    return {"score": score, "anomaly": bool(is_anomaly(score))}


def render(result):
    return f"anomaly score {result['score']:.3f} (threshold 1.0): {'ANOMALY' if result['anomaly'] else 'normal'}"

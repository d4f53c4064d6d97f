"""Anomaly detection: an autoencoder reconstructs its input; the score is the reconstruction
error over the card's threshold (task_options.threshold, set on normal training data), so
>= 1.0 is an anomaly. Gate: ROC AUC (%) of the scores, anomalies against
normal samples; also balanced accuracy (%) at the threshold. Agreement = same verdict as
the reference."""

from __future__ import annotations

import numpy as np

from edgezoo.tasks import run_anomaly as post
from edgezoo.tasks.base import Quality, Task, fidelity


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    pos, neg = scores[positive], scores[~positive]
    if not len(pos) or not len(neg):
        return 0.0
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)) * 100.0)


class AnomalyDetection(Task):
    name = "anomaly-detection"
    description = "a sample in, its reconstruction out; the anomaly score (>= 1.0: anomaly) is computed beside the model; the runner prints it"
    outputs = ("reconstruction",)
    gate_metric = "auc"
    metric_description = "ROC AUC (%) of the anomaly scores (labels: 1 = anomaly); balanced accuracy (%) at the threshold; agreement = same verdict"
    runner_module = "edgezoo.tasks.run_anomaly"

    def infer(self, run_one, feeds, labels, options=None):
        # the score needs the input beside the reconstruction: computed here as the runner does
        recon = np.concatenate([np.asarray(run_one([f[i : i + 1] for f in feeds])[0]) for i in range(len(feeds[0]))])
        return [post.scores(feeds[0], recon, (options or {})["threshold"])[:, None], recon]

    def compare(self, ref, out, labels):
        s, r = np.asarray(out[0])[:, 0], np.asarray(ref[0])[:, 0]
        metrics = {}
        if labels is not None:
            positive = np.asarray(labels).astype(bool)
            metrics["auc"] = auc(s, positive)
            flagged = post.is_anomaly(s)
            metrics["balanced_accuracy"] = float((np.mean(flagged[positive]) + np.mean(~flagged[~positive])) / 2 * 100.0)
        agreement = float(np.mean(post.is_anomaly(s) == post.is_anomaly(r)) * 100.0)
        # fidelity of the model's own output, the reconstruction (the score squares its noise)
        return Quality(samples=len(s), gate_metric=self.gate_metric, metrics=metrics, agreement=agreement, **fidelity(ref[1:], out[1:]))

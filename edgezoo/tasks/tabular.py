"""Tabular models: one row of numeric features in.

- ``tabular-classification``: class scores out; accuracy (%) on the labelled evaluation
  rows gates; agreement = same predicted class as the reference.
- ``tabular-regression``: one value out, in the target's own units; R² (in points, i.e.
  x100) gates, MAE is reported; agreement = prediction within 2 % of the evaluation
  targets' standard deviation of the reference's.
"""

from __future__ import annotations

import numpy as np

from edgezoo.tasks import run_tabular as post
from edgezoo.tasks.base import Quality, Task, fidelity
from edgezoo.tasks.classification import Classification

REGRESSION_AGREE = 0.02  # of the targets' standard deviation


class TabularClassification(Classification):
    name = "tabular-classification"
    description = "one row of numeric features in, class scores out; the runner prints the class and its probability"
    gate_metric = "accuracy"
    metric_description = "accuracy (%) on the card's labelled evaluation rows; agreement = same class as the reference"
    runner_module = "edgezoo.tasks.run_tabular"

    @staticmethod
    def predict(logits):
        return post.predicted_class(logits)


class TabularRegression(Task):
    name = "tabular-regression"
    description = "one row of numeric features in, one value out (in the target's units); the runner prints it"
    outputs = ("value",)
    gate_metric = "r2"
    metric_description = ("R² x100 (points) on the card's labelled evaluation rows, MAE in the target's units; agreement = "
                          f"prediction within {REGRESSION_AGREE:.0%} of the targets' standard deviation of the reference's")
    runner_module = "edgezoo.tasks.run_tabular"

    def compare(self, ref, out, labels):
        y_ref, y = post.predicted_value(ref[0]), post.predicted_value(out[0])
        metrics = {}
        spread = float(np.std(labels)) if labels is not None and len(labels) > 1 else float(np.std(y_ref)) or 1.0
        if labels is not None:
            t = np.asarray(labels, dtype=np.float64)
            ss_res = float(np.sum((t - y) ** 2))
            ss_tot = float(np.sum((t - t.mean()) ** 2)) or 1.0
            metrics["r2"] = (1.0 - ss_res / ss_tot) * 100.0
            metrics["mae"] = float(np.mean(np.abs(t - y)))
        agreement = float(np.mean(np.abs(y - y_ref) <= REGRESSION_AGREE * spread) * 100.0)
        return Quality(samples=len(out[0]), gate_metric=self.gate_metric, metrics=metrics, agreement=agreement, **fidelity(ref, out))


class GestureRecognition(TabularClassification):
    name = "gesture-recognition"
    description = "a window of accelerometer samples in, gesture scores out; the runner reads a CSV of ax, ay, az and prints the gesture"
    metric_description = "accuracy (%) on the card's labelled evaluation windows; agreement = same gesture as the reference"
    runner_module = "edgezoo.tasks.run_gesture"

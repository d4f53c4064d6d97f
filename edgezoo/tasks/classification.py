"""Image classification: one output of class scores; top-1 accuracy gates."""

from __future__ import annotations

import numpy as np

from edgezoo.tasks import run_classification as post
from edgezoo.tasks.base import Quality, Task, fidelity


class Classification(Task):
    name = "image-classification"
    trainable = True
    description = "one image in, class scores (logits) out; the runner prints the top classes"
    outputs = ("logits",)
    gate_metric = "top1"
    metric_description = "top-1 accuracy (%) on the card's labelled evaluation split; agreement = same top-1 class as the reference"
    runner_module = "edgezoo.tasks.run_classification"

    @staticmethod
    def predict(logits):
        """The class each sample's scores give, by the runner's own code."""
        return post.top1_index(logits)

    def compare(self, ref, out, labels):
        pred_ref, pred = self.predict(ref[0]), self.predict(out[0])
        metrics = {}
        if labels is not None:
            metrics[self.gate_metric] = float(np.mean(pred == labels) * 100.0)
        return Quality(samples=len(out[0]), gate_metric=self.gate_metric, metrics=metrics,
                       agreement=float(np.mean(pred_ref == pred) * 100.0), top1=metrics.get("top1"), **fidelity(ref, out))

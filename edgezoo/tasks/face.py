"""Face detection: a window classifier with box regression (MTCNN's output network) slid
over the image at several sizes, boxes corrected and overlaps suppressed, by the runner's
own code (``run_face.detect``).

Gate: F1 (%) of detections against the true face boxes at IoU >= 0.4, one-to-one; also
precision and recall. Agreement = reference detections the variant also finds (IoU >= 0.5).
Fidelity (cosine, SQNR) is measured on the model's outputs for every window.
"""

from __future__ import annotations

import numpy as np

from edgezoo.tasks import run_face as post
from edgezoo.tasks.base import Quality, Task, fidelity

IOU_MATCH = 0.4


def _matches(pred: list, truth: list, threshold: float) -> int:
    used, hits = set(), 0
    for t in truth:
        best = max(((j, post.iou(p, t)) for j, p in enumerate(pred) if j not in used), key=lambda x: x[1], default=(None, 0.0))
        if best[0] is not None and best[1] >= threshold:
            used.add(best[0])
            hits += 1
    return hits


class FaceDetection(Task):
    name = "face-detection"
    description = ("an image in (48x48 windows slid over it, or letterboxed for an anchor-based detector), face scores, boxes "
                   "and landmarks out; the runner prints the faces")
    outputs = ("logits", "box", "landmarks")
    gate_metric = "f1"
    metric_description = (f"F1 (%) of detections at IoU >= {IOU_MATCH} with the true face boxes, precision, recall; agreement = "
                          "reference detections found again (IoU >= 0.5); fidelity on every window's outputs")
    runner_module = "edgezoo.tasks.run_face"

    def dataset_inputs(self, split, card):
        """Evaluation images as they are (the task slides its windows over them, or letterboxes
        them for a single-shot detector); labels are boxes (image index, x1, y1, x2, y2)."""
        if card.task_options.get("anchors"):
            return [split.raw]
        return [split.raw] if split.raw.ndim == 4 and split.raw.shape[1] != card.input.shape[2] else None

    def infer(self, run_one, feeds, labels, options=None):
        dets, logits, regs = [], [], []
        size = int((options or {}).get("input_size", 128))
        for i, image in enumerate(feeds[0]):
            if (options or {}).get("anchors"):
                rg, lg, geom = post.ssd_outputs(run_one, image, size)
                found = post.ssd_detections(rg, lg, geom, size)
            else:
                wins, lg, rg, mk = post.window_outputs(run_one, image)
                found = post.detections(wins, lg, rg, mk)
                rg = np.concatenate([rg, mk], axis=1)
            dets += [[i, *d["box"], d["score"]] for d in found]
            logits.append(lg)
            regs.append(rg)
        return [np.array(dets, np.float64).reshape(-1, 6), np.concatenate(logits), np.concatenate(regs)]

    def compare(self, ref, out, labels):
        d_out, d_ref = out[0], ref[0]
        images = sorted(set(d_out[:, 0].astype(int)) | set(d_ref[:, 0].astype(int)) | (set(labels[:, 0].astype(int)) if labels is not None else set()))
        metrics = {}
        if labels is not None:
            tp = n_pred = n_true = 0
            for i in images:
                pred = [list(b[1:5]) for b in d_out if int(b[0]) == i]
                truth = [list(b[1:5]) for b in labels if int(b[0]) == i]
                tp += _matches(pred, truth, IOU_MATCH)
                n_pred += len(pred)
                n_true += len(truth)
            precision = tp / n_pred if n_pred else 1.0
            recall = tp / n_true if n_true else 1.0
            metrics.update(precision=precision * 100, recall=recall * 100,
                           f1=(2 * precision * recall / (precision + recall) * 100) if precision + recall else 0.0)
        found = sum(_matches([list(b[1:5]) for b in d_out if int(b[0]) == i], [list(b[1:5]) for b in d_ref if int(b[0]) == i], 0.5)
                    for i in images)
        agreement = found / len(d_ref) * 100.0 if len(d_ref) else (100.0 if not len(d_out) else 0.0)
        return Quality(samples=len(out[1]), gate_metric=self.gate_metric, metrics=metrics, agreement=float(agreement),
                       **fidelity(ref[1:], out[1:]))

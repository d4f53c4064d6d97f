"""Voice activity detection: a recurrent model that classifies 32 ms chunks of 16 kHz audio,
its state fed back with every chunk. Evaluated clip by clip, streaming exactly as the
bundle's runner does (the runner's ``stream`` and ``speech_segments`` are the code used).

Gate: segment F1 (%): a true speech segment counts as found when one predicted segment
overlaps it with IoU >= 0.5 (one-to-one). Also: chunk accuracy (%) against the per-chunk
truth, and agreement = chunks whose speech/no-speech decision equals the reference's.
"""

from __future__ import annotations

import numpy as np

from edgezoo.tasks import run_vad as post
from edgezoo.tasks.base import Quality, Task, fidelity

IOU_MATCH = 0.5
TRUTH_MERGE_S = post.MIN_SILENCE_S  # pauses shorter than the runner's minimum silence are inside one segment


def truth_segments(speech: np.ndarray) -> list[tuple[float, float]]:
    step = post.CHUNK / post.RATE
    segs = []
    for i, s in enumerate(speech):
        if not s:
            continue
        t = i * step
        if segs and t - segs[-1][1] < TRUTH_MERGE_S + 1e-9:
            segs[-1] = (segs[-1][0], t + step)
        else:
            segs.append((t, t + step))
    return segs


def _iou(a, b) -> float:
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else 0.0


def match(pred: list, truth: list) -> int:
    used, hits = set(), 0
    for t in truth:
        best = max(((j, _iou(p, t)) for j, p in enumerate(pred) if j not in used), key=lambda x: x[1], default=(None, 0.0))
        if best[0] is not None and best[1] >= IOU_MATCH:
            used.add(best[0])
            hits += 1
    return hits


def _clips(labels, n):
    ids = labels[:, 0] if labels is not None else np.zeros(n, np.int64)
    return [np.flatnonzero(ids == c) for c in dict.fromkeys(ids.tolist())]


class VoiceActivity(Task):
    name = "voice-activity"
    description = "16 kHz mono audio in (32 ms chunks, state fed back), speech probability out; the runner prints speech segments"
    outputs = ("speech_prob", "state_out")
    gate_metric = "segment_f1"
    metric_description = (f"segment F1 (%) at IoU >= {IOU_MATCH} on synthesised speech in noise (truth known by construction), "
                          "streaming clip by clip as the runner does; chunk accuracy (%); agreement = same speech decision per chunk")
    runner_module = "edgezoo.tasks.run_vad"
    streams = True

    def infer(self, run_one, feeds, labels, options=None):
        probs = np.zeros((len(feeds[0]), 1), np.float32)
        state_shape = (1, *feeds[1].shape[1:])
        for idx in _clips(labels, len(feeds[0])):
            probs[idx, 0] = post.stream(run_one, feeds[0][idx], state_shape)
        return [probs]

    def calibration_inputs(self, get_model, x_cal, count):
        # the states the fp32 model reaches while listening to the calibration audio, in order,
        # then ``count`` windows spread evenly over all of it (every clip, speech and noise)
        from edgezoo.pipeline.executor import torch_runner

        run = torch_runner(get_model())
        state = np.zeros((1, *x_cal[1].shape[1:]), np.float32)
        states = np.zeros_like(x_cal[1])
        for i in range(len(x_cal[0])):
            states[i] = state[0]
            state = run([x_cal[0][i : i + 1], state])[1].reshape(state.shape)
        pick = np.unique(np.linspace(0, len(x_cal[0]) - 1, min(count, len(x_cal[0]))).round().astype(int))
        return [x_cal[0][pick], states[pick]]

    def compare(self, ref, out, labels):
        p_ref, p = ref[0][:, 0], out[0][:, 0]
        metrics = {}
        if labels is not None:
            speech = labels[:, 1].astype(bool)
            metrics["chunk_accuracy"] = float(np.mean((p >= post.THRESHOLD) == speech) * 100.0)
            tp = n_pred = n_true = 0
            for idx in _clips(labels, len(p)):
                pred = post.speech_segments(p[idx])
                truth = truth_segments(speech[idx])
                tp += match(pred, truth)
                n_pred += len(pred)
                n_true += len(truth)
            precision = tp / n_pred if n_pred else 1.0
            recall = tp / n_true if n_true else 1.0
            metrics["segment_precision"] = precision * 100.0
            metrics["segment_recall"] = recall * 100.0
            metrics["segment_f1"] = (2 * precision * recall / (precision + recall) * 100.0) if precision + recall else 0.0
        agreement = float(np.mean((p >= post.THRESHOLD) == (p_ref >= post.THRESHOLD)) * 100.0)
        return Quality(samples=len(p), gate_metric=self.gate_metric, metrics=metrics, agreement=agreement, **fidelity(ref, out))

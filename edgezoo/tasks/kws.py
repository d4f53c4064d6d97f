"""Keyword spotting: one second of audio (as log-mel frames) in, scores over the keywords,
"_unknown_" (other words) and "_silence_" out.

Gate: accuracy (%) over all windows. Also: false rejection rate (FRR, %: keyword windows not
reported as that keyword) and false acceptance rate (FAR, %: non-keyword windows reported
as a keyword), both with the runner's own decision (``decide``: top class and its
probability >= MIN_SCORE). Agreement = same top class as the reference.
"""

from __future__ import annotations

import numpy as np

from edgezoo.tasks import run_kws as post
from edgezoo.tasks.base import Quality, Task, fidelity


class KeywordSpotting(Task):
    name = "keyword-spotting"
    trainable = True
    description = "one second of 16 kHz audio in (log-mel frames), keyword scores out; the runner prints the keywords heard in a WAV file"
    outputs = ("logits",)
    gate_metric = "accuracy"
    metric_description = (f"accuracy (%) over 1 s windows; FRR and FAR (%) with the runner's decision (top class, probability >= "
                          f"{post.MIN_SCORE}); agreement = same top class as the reference")
    runner_module = "edgezoo.tasks.run_kws"

    def compare(self, ref, out, labels):
        o, r = np.asarray(out[0]).reshape(len(out[0]), -1), np.asarray(ref[0]).reshape(len(ref[0]), -1)
        metrics = {}
        if labels is not None:
            from edgezoo.zoo.speech_commands import KEYWORDS, LABELS

            names = list(LABELS)
            decided = [post.decide(z, names, KEYWORDS) for z in o]
            truth_kw = np.array([names[int(t)] in KEYWORDS for t in labels])
            hit = np.array([d[2] and d[0] == names[int(t)] for d, t in zip(decided, labels)])
            accepted = np.array([d[2] for d in decided])
            metrics["accuracy"] = float(np.mean(o.argmax(1) == labels) * 100.0)
            metrics["frr"] = float(np.mean(~hit[truth_kw]) * 100.0) if truth_kw.any() else 0.0
            metrics["far"] = float(np.mean(accepted[~truth_kw]) * 100.0) if (~truth_kw).any() else 0.0
        return Quality(samples=len(o), gate_metric=self.gate_metric, metrics=metrics,
                       agreement=float(np.mean(o.argmax(1) == r.argmax(1)) * 100.0), **fidelity(ref, out))

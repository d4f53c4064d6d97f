"""Sentence embeddings: token ids and mask in, a unit-length embedding out.

Gate: pair AUC (%): over sentence pairs written for this purpose (paraphrases and
unrelated pairs, edgezoo.zoo.text), how often a paraphrase pair has the higher cosine
similarity than an unrelated one. Also: the mean cosine of each embedding with the
reference's (the fp32 model), and agreement = embeddings keeping cosine >= 0.99 with it.
"""

from __future__ import annotations

import numpy as np

from edgezoo.tasks import run_embedding as post
from edgezoo.tasks.base import Quality, Task, fidelity

AGREE_COSINE = 0.99


class SentenceEmbedding(Task):
    name = "sentence-embedding"
    description = "a sentence in (token ids and mask), a unit-length embedding out; the runner prints embeddings and similarities"
    outputs = ("embedding",)
    gate_metric = "pair_auc"
    metric_description = ("pair AUC (%): paraphrase pairs scored above unrelated pairs by cosine similarity; "
                          f"cosine with the reference's embeddings; agreement = embeddings with cosine >= {AGREE_COSINE}")
    runner_module = "edgezoo.tasks.run_embedding"

    def compare(self, ref, out, labels):
        r, o = np.asarray(ref[0], np.float64), np.asarray(out[0], np.float64)
        per = np.array([post.cosine(a, b) for a, b in zip(r, o)])
        metrics = {"embedding_cosine": float(per.mean())}
        if labels is not None:  # (pair id, paraphrase?) per sentence; a pair's two sentences are consecutive rows
            sims, para = [], []
            for pid in dict.fromkeys(labels[:, 0].tolist()):
                idx = np.flatnonzero(labels[:, 0] == pid)
                sims.append(post.cosine(o[idx[0]], o[idx[1]]))
                para.append(bool(labels[idx[0], 1]))
            sims, para = np.array(sims), np.array(para)
            pos, neg = sims[para], sims[~para]
            wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
            metrics["pair_auc"] = float(wins / max(1, len(pos) * len(neg)) * 100.0)
            metrics["paraphrase_cosine"] = float(pos.mean())
            metrics["unrelated_cosine"] = float(neg.mean())
        return Quality(samples=len(o), gate_metric=self.gate_metric, metrics=metrics,
                       agreement=float(np.mean(per >= AGREE_COSINE) * 100.0), **fidelity(ref, out))

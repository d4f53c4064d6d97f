"""Any model, judged on its raw outputs: the task of a user's model that is not one of the
families edgezoo knows. With labels, nothing can be scored (there is no known
post-processing); with reference outputs (``--eval-data`` with one array per output) the
variants are compared with them as well as with fp32."""

from __future__ import annotations

import numpy as np

from edgezoo.tasks.base import Quality, Task, fidelity

AGREE_COSINE = 0.99  # a sample "agrees" when every output keeps this cosine similarity with the reference's


def per_sample_cosine(ref: list[np.ndarray], out: list[np.ndarray]) -> np.ndarray:
    worst = None
    for r, o in zip(ref, out):
        r2 = r.reshape(len(r), -1).astype(np.float64)
        o2 = o.reshape(len(o), -1).astype(np.float64)
        den = np.linalg.norm(r2, axis=1) * np.linalg.norm(o2, axis=1)
        same = np.all(np.isclose(r2, o2, rtol=1e-5, atol=1e-6), axis=1)
        cos = np.where(den > 0, np.sum(r2 * o2, axis=1) / np.maximum(den, 1e-30), np.where(same, 1.0, 0.0))
        worst = cos if worst is None else np.minimum(worst, cos)
    return worst


class Generic(Task):
    name = "generic"
    description = "any tensors in, any tensors out; judged on output fidelity; the runner prints every output"
    outputs = ()
    gate_metric = ""  # no accuracy without a known post-processing: budgets see SQNR and agreement only
    metric_description = (f"no task accuracy; agreement (%) = samples whose every output keeps cosine >= {AGREE_COSINE} "
                          "with the reference's, plus SQNR and max abs diff")
    runner_module = "edgezoo.tasks.run_generic"

    def compare(self, ref, out, labels):
        cos = per_sample_cosine(ref, out)
        agreement = float(np.mean(cos >= AGREE_COSINE) * 100.0)
        return Quality(samples=len(out[0]), gate_metric=self.gate_metric, metrics={},
                       agreement=agreement, **fidelity(ref, out))

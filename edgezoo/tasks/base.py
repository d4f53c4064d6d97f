"""What a task plug-in provides.

A :class:`Task` knows the outputs a model of its family has, how outputs are scored
against labelled data and against a reference (fp32, or PyTorch), which metric gates an
export's accuracy budget, and the part of the bundle's ``run.py`` that turns outputs into
a printed result. Accuracy is always measured through the same post-processing the
runner uses (``runner_module`` holds it, and the task imports it)."""

from __future__ import annotations

import abc

import numpy as np

from edgezoo.schemas.report import Quality


def sqnr_db(ref: np.ndarray, out: np.ndarray) -> float | None:
    noise = np.sum((ref.astype(np.float64) - out.astype(np.float64)) ** 2)
    signal = np.sum(ref.astype(np.float64) ** 2)
    if noise == 0:
        return None  # identical outputs (JSON has no infinity)
    return float(10.0 * np.log10(signal / max(noise, 1e-300)))


def fidelity(ref: list[np.ndarray], out: list[np.ndarray]) -> dict:
    """Task-independent closeness of every output to the reference's (flattened per sample)."""
    r = np.concatenate([a.reshape(len(a), -1) for a in ref], axis=1).astype(np.float64)
    o = np.concatenate([a.reshape(len(a), -1) for a in out], axis=1).astype(np.float64)
    num = np.sum(r * o, axis=1)
    den = np.linalg.norm(r, axis=1) * np.linalg.norm(o, axis=1)
    cos = np.where(den > 0, num / np.maximum(den, 1e-30), 1.0)
    return {"cosine": float(np.mean(cos)), "sqnr_db": sqnr_db(r, o), "max_abs_diff": float(np.max(np.abs(r - o))) if r.size else 0.0}


class Task(abc.ABC):
    """Subclasses set the class attributes and implement ``score``."""

    name: str = ""
    description: str = ""
    outputs: tuple[str, ...] = ()  # names of the model outputs this family produces
    gate_metric: str = ""
    metric_description: str = ""
    runner_module: str = ""  # standalone file with add_arguments(parser), present(outputs, manifest, args), render(result)
    trainable: bool = False  # outputs are class scores: fine-tuning trains them with cross-entropy on labels
    streams: bool = False  # a recurrent model whose state goes back in: evaluated by ``infer``, sequence by sequence

    def infer(self, run_one, feeds: list[np.ndarray], labels: np.ndarray | None, options: dict | None = None) -> list[np.ndarray]:
        """Outputs for N samples; ``run_one`` maps one sample's inputs (batch of one) to its
        outputs. A task overrides this when its result needs more than the model's outputs: a
        streaming model's state carried as the runner does, a score computed from the input
        (``options``: the card's task_options)."""
        per_sample = [run_one([f[i : i + 1] for f in feeds]) for i in range(len(feeds[0]))]
        return [np.concatenate([np.asarray(s[k]) for s in per_sample], axis=0) for k in range(len(per_sample[0]))]

    def calibration_inputs(self, get_model, x_cal: list[np.ndarray], count: int) -> list[np.ndarray]:
        """The calibration samples a quantizer sees (``x_cal`` holds ``count`` of them, or for a
        streaming task the whole calibration sequence, from which it picks ``count`` with the
        states the fp32 model reaches there; ``get_model()`` gives the PyTorch model)."""
        return x_cal

    def dataset_inputs(self, split, card) -> list[np.ndarray] | None:
        """The evaluation feeds, when the task's ``infer`` consumes something else than the
        model's preprocessed inputs (whole images a detector slides over); None: the card's
        preprocessing makes them."""
        return None

    @property
    def drives_model(self) -> bool:
        """True when the task overrides ``infer`` (the executor then evaluates through it)."""
        return type(self).infer is not Task.infer

    @abc.abstractmethod
    def compare(self, ref: list[np.ndarray], out: list[np.ndarray], labels: np.ndarray | None) -> Quality:
        """Score ``out`` against the reference outputs (and labels, when given)."""

    def runner_source(self) -> str:
        from edgezoo.bundle.runner import module_source

        return module_source(self.runner_module)

"""The source model's own outputs on the evaluation inputs: the reference an fp32 export must
match (the report's export check).

For a large zoo model this is seconds of PyTorch (resnet50: 100 crops in about 6.5 s on a
2-core host), and some formats spend longer still converting on a single core (litert-torch
and ExecuTorch trace the model in Python). :func:`reference` then runs the first two batches here,
and when the rest would take longer than :data:`BACKGROUND_AFTER_S`, hands it to a worker
process (``python -m edgezoo.pipeline.reference``) that runs on the idle core while the
conversion runs on the other; the executor collects it before evaluating. The worker
rebuilds the architecture and loads the model's weights from a safetensors file, so only
tensors cross the process boundary, never pickles.

A worker costs about 3 s of its own before it computes anything (importing torch and
torchvision): it starts them while this process writes its inputs. Starting it before the
model is built was tried: on this 2-core host the export took as long (57.7-60.3 s for
resnet50 raspberrypi against 59.3-59.9), the contention only moving from the int8 build to
the model build and the conversion.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BATCH = 4
BACKGROUND_AFTER_S = 3.0  # the worker's own start (importing torch, building the model) costs about this


def torch_outputs(model, feeds: list[np.ndarray], batch: int = BATCH) -> list[np.ndarray]:
    """The model's outputs on N samples; ``batch=1`` for models fixed to a batch of one (a
    user's .pt2 or factory module). Small batches keep eager PyTorch's activations in the
    CPU's caches: on this 2-core host, 96 crops through mobilenet_v2 take 2.3 s in batches
    of 4 and 4.1 s in batches of 32; resnet50 7.9 s and 11.9 s."""
    import torch

    chunks = []
    n = len(feeds[0])
    with torch.inference_mode():
        for i in range(0, n, batch):
            y = model(*[torch.from_numpy(f[i : i + batch]) for f in feeds])
            chunks.append([t.detach().numpy() for t in (y if isinstance(y, (tuple, list)) else (y,))])
    return [np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0]))]


class Worker:
    """A worker process for one architecture: started (and importing) now, given the weights
    and the inputs (:meth:`give`) as soon as they are written, its outputs read by :class:`Pending`."""

    def __init__(self, architecture: str):
        self.folder = Path(tempfile.mkdtemp(prefix="edgezoo-reference-"))
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
        try:
            with open(self.folder / "stderr.txt", "wb") as err:
                self.proc = subprocess.Popen([sys.executable, "-m", "edgezoo.pipeline.reference", architecture, str(self.folder)],
                                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def give(self, model, feeds: list[np.ndarray]) -> None:
        """The model's weights and the inputs to run: the worker starts on them."""
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(self.folder / "state.safetensors"))
        arrays = {}
        for k, f in enumerate(feeds):  # each as it lies in memory (images are channels-last under an NCHW view:
            order = np.argsort(f.strides, kind="stable")[::-1]  # PyTorch keeps that layout, and its convolutions run faster on it)
            arrays[f"i{k}"], arrays[f"order{k}"] = np.ascontiguousarray(f.transpose(order)), order
        np.savez(self.folder / "inputs.npz", **arrays)
        (self.folder / "go").touch()

    def outputs(self) -> tuple[list[np.ndarray] | None, str]:
        """Wait for the worker: its outputs, or None and why it failed."""
        try:
            code = self.proc.wait()
            if code == 0 and (self.folder / "outputs.npz").exists():
                with np.load(self.folder / "outputs.npz", allow_pickle=False) as d:
                    return [d[f"o{i}"] for i in range(len(d.files))], ""
            err = self.folder / "stderr.txt"
            lines = err.read_text(errors="replace").strip().splitlines() if err.exists() else []
            return None, lines[-1] if lines else f"exit code {code}"
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def cancel(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class Pending:
    """Reference outputs a worker process is computing. :meth:`result` waits for them (once)
    and joins them to the batches computed here; if the worker failed, the rest is
    computed here instead (the outputs are the same, only later). :meth:`cancel` stops it."""

    def __init__(self, head: list[np.ndarray], worker: Worker, model, feeds: list[np.ndarray]):
        self.head, self.worker = head, worker
        self._model, self._feeds = model, feeds  # for the fallback
        self._value: list[np.ndarray] | None = None
        self._then = []
        self.worker_failed = ""  # the worker's last stderr line when it failed

    def then(self, fn) -> Pending:
        """Call ``fn(outputs)`` once the outputs are in (the stage cache stores them)."""
        self._then.append(fn)
        return self

    def result(self) -> list[np.ndarray]:
        if self._value is None:
            tail, self.worker_failed = self.worker.outputs()
            if tail is None:
                tail = torch_outputs(self._model, [f[len(self.head[0]) :] for f in self._feeds])
            self._value = [np.concatenate([h, t]) for h, t in zip(self.head, tail)]
            self._model = self._feeds = None
            for fn in self._then:
                fn(self._value)
        return self._value

    def cancel(self) -> None:
        if self._value is None:
            self.worker.cancel()


def resolve(ref):
    """Reference outputs, waiting for a worker's when they are still :class:`Pending`."""
    return ref.result() if isinstance(ref, Pending) else ref


def reference(model, architecture: str, feeds: list[np.ndarray], beside: bool) -> list[np.ndarray] | Pending:
    """The outputs of ``model`` (the zoo ``architecture`` with its weights) on ``feeds``.
    ``beside``: the next stage keeps one core busy on its own (a serial conversion), so a
    long rest of the computation goes to a worker process on the other core."""
    n, done = len(feeds[0]), 2 * BATCH
    if not beside or n <= done or (os.cpu_count() or 1) < 2:
        return torch_outputs(model, feeds)
    first = torch_outputs(model, [f[:BATCH] for f in feeds])  # PyTorch's first call sets up: not timed
    t0 = time.perf_counter()
    second = torch_outputs(model, [f[BATCH:done] for f in feeds])
    rest_s = (time.perf_counter() - t0) * (n - done) / BATCH
    head = [np.concatenate([a, b]) for a, b in zip(first, second)]
    if rest_s < BACKGROUND_AFTER_S:
        return [np.concatenate([h, t]) for h, t in zip(head, torch_outputs(model, [f[done:] for f in feeds]))]
    worker = Worker(architecture)
    try:
        worker.give(model, [f[done:] for f in feeds])
    except BaseException:
        worker.cancel()
        raise
    return Pending(head, worker, model, feeds)


def _worker(architecture: str, folder: Path) -> None:
    import torch
    from safetensors.torch import load_file

    from edgezoo.zoo import models

    parent = os.getppid()
    torch.set_num_threads(1)  # the other core is the conversion's
    with torch.device("meta"):  # imports what the architecture needs; no random initialisation to overwrite
        model = models.build(architecture)
    while not (folder / "go").exists():  # the exporting process is still writing the weights and inputs
        if os.getppid() != parent:  # it is gone
            return
        time.sleep(0.02)
    state = load_file(str(folder / "state.safetensors"))
    model.load_state_dict(state, strict=True, assign=True)
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):  # a buffer outside the state dict
        model = models.build(architecture)
        model.load_state_dict(state, strict=True)
    model.eval()
    with np.load(folder / "inputs.npz", allow_pickle=False) as d:
        feeds = [d[f"i{k}"].transpose(np.argsort(d[f"order{k}"])) for k in range(len(d.files) // 2)]
    outputs = torch_outputs(model, feeds)
    np.savez(folder / "outputs.tmp.npz", **{f"o{k}": o for k, o in enumerate(outputs)})
    os.replace(folder / "outputs.tmp.npz", folder / "outputs.npz")


if __name__ == "__main__":
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the whole process group: end quietly
    _worker(sys.argv[1], Path(sys.argv[2]))

"""The source model's own outputs on the evaluation inputs: the reference an fp32 export must
match (the report's export check).

For a large zoo model this is seconds of PyTorch (resnet50: 100 crops in about 6.5 s on a
2-core host), and some formats spend longer still converting on a single core (litert-torch
and ExecuTorch trace the model in Python). :func:`reference` then runs the first two batches
here, and when the rest would take longer than :data:`BACKGROUND_AFTER_S`, hands it to a
child process forked from this one, which runs it at one thread on the idle core while the
conversion runs on the other; the executor collects it before evaluating.

The child is a fork, so it starts with the model and the inputs already in memory: no
imports, no weights written and read back, nothing pickled. (The first worker was a fresh
interpreter that rebuilt the architecture and loaded safetensors: 3 s of imports before it
computed anything, which on a 2-core host came out of the export's own time.) A fork of a
process that has run threads is only safe for what the child then does, so the child runs
PyTorch at one thread (no OpenMP team), writes its outputs with numpy and leaves with
``os._exit``: it never prints, never imports anything new and never returns into the caller.
It dies with the exporting process (``PR_SET_PDEATHSIG``), and one that has not finished by
its deadline (:data:`TIMEOUT_S`, or twenty times its projected time) is killed and its part
computed here. Hosts without a safe ``fork`` (Windows; macOS, where forking a process that
has loaded system frameworks is not) compute the reference in process.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import numpy as np

BATCH = 4
BACKGROUND_AFTER_S = 1.0  # a shorter rest is not worth a process (forking a large one takes tens of ms)
TIMEOUT_S = 120.0  # at least this long before a child that has not finished is given up


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


def can_fork() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork")


class Worker:
    """A forked child computing ``torch_outputs(model, feeds)`` at one thread; its outputs are
    read by :class:`Pending`."""

    def __init__(self, model, feeds: list[np.ndarray], timeout_s: float = TIMEOUT_S):
        self.folder = Path(tempfile.mkdtemp(prefix="edgezoo-reference-"))
        self.deadline = time.monotonic() + timeout_s
        self.code: int | None = None  # the child's exit code once reaped
        import torch  # already loaded: the child must not import anything (another thread may hold an import lock)

        try:
            libc = ctypes.CDLL(None, use_errno=True)
        except OSError:
            libc = None
        sys.stdout.flush(), sys.stderr.flush()  # nothing buffered here is written twice
        parent = os.getpid()
        try:
            with warnings.catch_warnings():  # JAX (litert-torch loads it) warns of any fork; the child never touches it
                warnings.simplefilter("ignore", RuntimeWarning)
                warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12's warning for a fork with threads
                self.pid = os.fork()
        except BaseException:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        if self.pid == 0:  # the child: never returns
            _child(torch, libc, parent, model, feeds, self.folder)

    def _wait(self, block: bool) -> bool:
        """Reap the child if it has ended (if ``block``, waiting for it up to the deadline)."""
        while self.code is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored): only its files tell
                self.code = 0 if (self.folder / "done").exists() else -1
                break
            if pid:
                self.code = os.waitstatus_to_exitcode(status)
                break
            if not block or time.monotonic() > self.deadline:
                return False
            time.sleep(0.01)
        return True

    def outputs(self) -> tuple[list[np.ndarray] | None, str]:
        """Wait for the child: its outputs, or None and why it failed."""
        try:
            if not self._wait(block=True):
                self.cancel()
                return None, "timed out"
            done = self.folder / "done"
            if self.code == 0 and done.exists():
                return [np.load(self.folder / f"o{k}.npy", allow_pickle=False) for k in range(int(done.read_text()))], ""
            err = self.folder / "error.txt"
            lines = err.read_text(errors="replace").strip().splitlines() if err.exists() else []
            return None, lines[-1] if lines else f"exit code {self.code}"
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def cancel(self) -> None:
        if not self._wait(block=False):
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.deadline = float("inf")
            self._wait(block=True)
        shutil.rmtree(self.folder, ignore_errors=True)


def _child(torch, libc, parent: int, model, feeds: list[np.ndarray], folder: Path) -> None:
    """The forked child's whole life: compute, write, ``os._exit``. It imports nothing (the
    modules it needs come from the parent), and locks another thread may have held at the
    fork (a print, the progress display) are never touched: the standard streams are new
    objects on /dev/null, and warnings are off."""
    code = 1
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        sys.stdin = sys.stdout = sys.stderr = open(null, "w", closefd=False)  # noqa: SIM115 - lives until _exit
        warnings.simplefilter("ignore")
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C reaches the whole process group: end quietly
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if libc is not None:  # die with the exporting process, however it ends
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # it ended before that took hold
            return
        torch.set_num_threads(1)  # the other core is the conversion's; one thread runs no OpenMP team
        outputs = torch_outputs(model, feeds)
        for k, o in enumerate(outputs):  # .npy: numpy's own format module, already loaded (npz would import zipfile)
            np.save(folder / f"o{k}.npy", o, allow_pickle=False)
        (folder / "done.tmp").write_text(str(len(outputs)))
        os.replace(folder / "done.tmp", folder / "done")
        code = 0
    except BaseException as exc:  # noqa: BLE001 - whatever it was, the parent computes instead
        try:
            (folder / "error.txt").write_text("".join(traceback.format_exception(exc)))
        except BaseException:  # noqa: BLE001
            pass
    finally:
        os._exit(code)


class Pending:
    """Reference outputs a child process is computing. :meth:`result` waits for them (once)
    and joins them to the batches computed here; if the child failed, the rest is
    computed here instead (the outputs are the same, only later). :meth:`cancel` stops it."""

    def __init__(self, head: list[np.ndarray], worker: Worker, model, feeds: list[np.ndarray]):
        self.head, self.worker = head, worker
        self._model, self._feeds = model, feeds  # for the fallback
        self._value: list[np.ndarray] | None = None
        self._then = []
        self.worker_failed = ""  # why the child failed ("timed out", or its exception's last line)

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
    """Reference outputs, waiting for a child's when they are still :class:`Pending`."""
    return ref.result() if isinstance(ref, Pending) else ref


def reference(model, feeds: list[np.ndarray], beside: bool) -> list[np.ndarray] | Pending:
    """The outputs of ``model`` on ``feeds``. ``beside``: the next stage keeps one core busy
    on its own (a serial conversion), so a long rest of the computation goes to a child
    process on the other core."""
    n, done = len(feeds[0]), 2 * BATCH
    if not beside or n <= done or (os.cpu_count() or 1) < 2 or not can_fork():
        return torch_outputs(model, feeds)
    first = torch_outputs(model, [f[:BATCH] for f in feeds])  # PyTorch's first call sets up: not timed
    t0 = time.perf_counter()
    second = torch_outputs(model, [f[BATCH:done] for f in feeds])
    rest_s = (time.perf_counter() - t0) * (n - done) / BATCH
    head = [np.concatenate([a, b]) for a, b in zip(first, second)]
    if rest_s < BACKGROUND_AFTER_S:
        return [np.concatenate([h, t]) for h, t in zip(head, torch_outputs(model, [f[done:] for f in feeds]))]
    try:  # at one thread the child takes about twice the projection (made at this process's threads)
        worker = Worker(model, [f[done:] for f in feeds], timeout_s=max(TIMEOUT_S, 20 * rest_s))
    except OSError:  # no process to be had (a process or memory limit): compute the rest here
        return [np.concatenate([h, t]) for h, t in zip(head, torch_outputs(model, [f[done:] for f in feeds]))]
    return Pending(head, worker, model, feeds)

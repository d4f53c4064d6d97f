"""TensorFlow Lite Micro: the real TFLM interpreter (the ``tflite-micro`` package) on the host.

Used for accuracy of microcontroller bundles and to measure the tensor arena: the arena
is found by searching for the smallest size the interpreter itself accepts, then checked
by running an inference."""

from __future__ import annotations

import builtins
import contextlib
import os
from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, require
from edgezoo.runtimes.base import Runtime, Session, TensorInfo

NAME = "tflite-micro"
ALIGN = 16


def _tflm():
    return require("tflite_micro", package="tflite-micro", extra="micro", purpose="running TensorFlow Lite Micro")


@contextlib.contextmanager
def _silence_stderr():
    """TFLM's C++ logs allocation failures on file descriptor 2; the search expects many."""
    saved = os.dup(2)
    with builtins.open(os.devnull, "w") as null:  # this module defines its own open()
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _interpreter(data: bytes, arena: int):
    tflm = _tflm()
    return tflm.runtime.Interpreter.from_bytes(data, arena_size=arena)


def _info(d) -> TensorInfo:
    q = d["quantization_parameters"]
    scale = float(q["scales"][0]) if len(q["scales"]) else 0.0
    zero = int(q["zero_points"][0]) if len(q["zero_points"]) else 0
    return TensorInfo(str(d.get("name", "")), tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name, scale, zero)


class TflmSession(Session):
    def __init__(self, interpreter, arena: int, n_in: int, n_out: int):
        self.it = interpreter
        self.arena = arena
        self.inputs = [_info(interpreter.get_input_details(i)) for i in range(n_in)]
        self.outputs = [_info(interpreter.get_output_details(i)) for i in range(n_out)]

    def _run(self, feeds):
        for i, x in enumerate(feeds):
            self.it.set_input(x, i)
        self.it.invoke()
        return [np.array(self.it.get_output(i)) for i in range(len(self.outputs))]


class TfliteMicro(Runtime):
    def __init__(self):
        super().__init__(name=NAME, distribution="tflite-micro", extra="micro", runner_module="edgezoo.runtimes.run_tflite_micro",
                         runner_requires=("numpy", "tflite-micro (the host build of the interpreter; the firmware/ folder is for the board)"),
                         description="TensorFlow Lite Micro interpreter (the tflite-micro package) on the host")

    def open(self, path: Path, threads: int = 1, config: dict | None = None) -> TflmSession:
        data = Path(path).read_bytes()
        arena = int((config or {}).get("arena_bytes") or 0) or min_arena(data)
        try:
            with _silence_stderr():
                it = _interpreter(data, arena)
        except RuntimeError as exc:
            raise ModelFileError(f"TensorFlow Lite Micro cannot load {Path(path).name} in {arena} bytes: {exc}") from exc
        n_in, n_out = io_counts(data)
        return TflmSession(it, arena, n_in, n_out)


def io_counts(data: bytes) -> tuple[int, int]:
    """Number of inputs and outputs of the main subgraph, read from the flatbuffer."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytearray(data), 0)
    sub = model.Subgraphs(0)
    return sub.InputsLength(), sub.OutputsLength()


def _probe(path: str, arena: int, invoke: bool = False) -> bool:
    """Does TFLM allocate (and optionally run) the model in ``arena`` bytes? Asked in a child
    process: TFLM has crashed (SIGSEGV) instead of failing cleanly on some too-small arenas,
    and a crash must mean "does not fit", not take the caller down."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "edgezoo.runtimes.tflite_micro", path, str(arena), "invoke" if invoke else "allocate"],
                          capture_output=True, text=True)
    if proc.returncode == 1:
        _missing_ops(proc.stdout)  # an operator TFLM lacks fails at any arena size: say so now
    return proc.returncode == 0 and proc.stdout.strip() == "ok"


def _missing_ops(log: str) -> None:
    import re

    missing = sorted(set(re.findall(r"Didn't find op for builtin opcode '([A-Z0-9_]+)'", log)))
    if missing:
        raise ModelFileError(
            f"TensorFlow Lite Micro has no kernel for {', '.join(missing)}",
            hint="replace that layer, or choose a target with a larger runtime (LiteRT)",
        )


def min_arena(data: bytes, limit: int = 64 << 20) -> int:
    """The smallest arena (a multiple of 16 bytes) TFLM accepts for this model: a binary search
    over the interpreter's own AllocateTensors, which plans every tensor and scratch buffer,
    then one inference in that arena to confirm it."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".tflite") as tmp:
        tmp.write(data)
        tmp.flush()
        hi = 4096
        while not _probe(tmp.name, hi):
            if hi >= limit:
                raise ModelFileError(f"TensorFlow Lite Micro cannot allocate this model even in a {limit >> 20} MB arena")
            hi *= 2
        lo = hi // 2 if hi > 4096 else 0
        while hi - lo > ALIGN:
            mid = (lo + hi) // 2 // ALIGN * ALIGN
            if mid <= lo:
                break
            if _probe(tmp.name, mid):
                hi = mid
            else:
                lo = mid
        if not _probe(tmp.name, hi, invoke=True):
            raise ModelFileError(f"TensorFlow Lite Micro allocated this model in {hi} bytes but could not run it")
    return hi


if __name__ == "__main__":  # the child process of _probe()
    import sys

    import tempfile

    model, arena, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with tempfile.TemporaryFile(mode="w+") as log:
        saved = os.dup(2)
        os.dup2(log.fileno(), 2)  # keep TFLM's own messages: they name a missing operator
        try:
            it = _interpreter(Path(model).read_bytes(), arena)
            if mode == "invoke":
                d = it.get_input_details(0)
                it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
                it.invoke()
            failed = False
        except RuntimeError:
            failed = True
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        if failed:
            log.seek(0)
            print(log.read())
            sys.exit(1)
    print("ok")

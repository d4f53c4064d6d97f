"""LiteRT (the successor of TensorFlow Lite) through ai-edge-litert, XNNPACK on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, last_line, require
from edgezoo.runtimes.base import Runtime, Session, TensorInfo

NAME = "litert"


def _interp():
    return require("ai_edge_litert.interpreter", package="ai-edge-litert", extra="litert", purpose="running LiteRT models")


def _info(d) -> TensorInfo:
    scale, zero = d["quantization"]
    return TensorInfo(d["name"], tuple(int(v) for v in d["shape"]), np.dtype(d["dtype"]).name, float(scale), int(zero))


class LitertSession(Session):
    def __init__(self, interpreter):
        self.it = interpreter
        self._in = interpreter.get_input_details()
        self._out = interpreter.get_output_details()
        self.inputs = [_info(d) for d in self._in]
        self.outputs = [_info(d) for d in self._out]

    def _run(self, feeds):
        for d, x in zip(self._in, feeds):
            self.it.set_tensor(d["index"], x)
        self.it.invoke()
        return [self.it.get_tensor(d["index"]).copy() for d in self._out]


class Litert(Runtime):
    def __init__(self):
        super().__init__(name=NAME, distribution="ai-edge-litert", extra="litert", runner_module="edgezoo.runtimes.run_litert",
                         runner_requires=("numpy", "ai-edge-litert (or tflite-runtime on older Raspberry Pi OS images)"),
                         description="LiteRT interpreter (ai-edge-litert) with the XNNPACK delegate")

    def open(self, path: Path, threads: int = 1, config: dict | None = None) -> LitertSession:
        mod = _interp()
        try:
            it = mod.Interpreter(model_path=str(path), num_threads=threads)
            it.allocate_tensors()
        except Exception as exc:  # the interpreter raises ValueError/RuntimeError with its own text
            raise ModelFileError(f"LiteRT cannot load {Path(path).name}: {last_line(exc)[:300]}") from exc
        return LitertSession(it)


def operators(path: Path) -> list[dict]:
    """Every operator of the model with whether XNNPACK took it, read from the interpreter.

    Without delegates, allocation proves a builtin kernel exists for every operator. With
    the default XNNPACK delegate, each DELEGATE node replaces a partition of the graph: the
    operators found by walking back from a DELEGATE's outputs to its inputs ran in XNNPACK,
    the rest on LiteRT's builtin kernels."""
    mod = _interp()
    plain = mod.Interpreter(model_path=str(path), experimental_op_resolver_type=mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    plain.allocate_tensors()
    tensors = {t["index"]: t for t in plain.get_tensor_details()}
    delegated_it = mod.Interpreter(model_path=str(path))
    delegated_it.allocate_tensors()
    details = delegated_it._get_ops_details()
    nodes = [o for o in details if o["op_name"] != "DELEGATE"]
    producer = {int(t): o["index"] for o in nodes for t in o["outputs"]}
    by_index = {o["index"]: o for o in nodes}
    in_xnnpack: set[int] = set()
    for d in (o for o in details if o["op_name"] == "DELEGATE"):
        stop = {int(t) for t in d["inputs"]}
        todo = [int(t) for t in d["outputs"]]
        while todo:
            t = todo.pop()
            n = producer.get(t)
            if n is None or n in in_xnnpack:
                continue
            in_xnnpack.add(n)
            todo.extend(int(i) for i in by_index[n]["inputs"] if int(i) not in stop)
    out = []
    for o in nodes:
        outs = [tensors[int(i)] for i in o["outputs"] if int(i) in tensors]
        out.append({
            "op": o["op_name"],
            "layer": outs[0]["name"] if outs else str(o["index"]),
            "dtype": np.dtype(outs[0]["dtype"]).name if outs else "?",
            "placement": "CPU (XNNPACK)" if o["index"] in in_xnnpack else "CPU (builtin kernel)",
        })
    return out

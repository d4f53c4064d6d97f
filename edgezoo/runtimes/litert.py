"""LiteRT (the successor of TensorFlow Lite) through ai-edge-litert, XNNPACK on the CPU."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, require

NAME = "litert"


def _interp():
    return require("ai_edge_litert.interpreter", package="ai-edge-litert", extra="litert", purpose="running LiteRT models")


def version() -> str:
    from importlib.metadata import version as v

    return v("ai-edge-litert")


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])
    return x.astype(detail["dtype"])


def dequantize_output(y: np.ndarray, detail: dict) -> np.ndarray:
    if detail["dtype"] in (np.int8, np.uint8):
        scale, zero = detail["quantization"]
        return (y.astype(np.float32) - zero) * scale
    return y.astype(np.float32)


class Runner:
    def __init__(self, interpreter):
        self.it = interpreter
        self.inp = interpreter.get_input_details()[0]
        self.out = interpreter.get_output_details()[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        self.it.set_tensor(self.inp["index"], quantize_input(x, self.inp))
        self.it.invoke()
        return dequantize_output(self.it.get_tensor(self.out["index"]), self.out).copy()


def open(path: Path, threads: int = 1, config: dict | None = None) -> Runner:  # noqa: A001
    mod = _interp()
    try:
        it = mod.Interpreter(model_path=str(path), num_threads=threads)
        it.allocate_tensors()
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError with its own text
        raise ModelFileError(f"LiteRT cannot load {path.name}: {str(exc).strip().splitlines()[-1][:300]}") from None
    return Runner(it)


def operators(path: Path) -> list[dict]:
    """Every operator of the model with whether XNNPACK took it.

    Read twice from the interpreter itself: once without delegates (the builtin kernels
    the model needs; allocation fails if one is missing) and once with the default
    XNNPACK delegate (the operators left outside DELEGATE nodes run on builtin kernels)."""
    mod = _interp()
    plain = mod.Interpreter(model_path=str(path), experimental_op_resolver_type=mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    plain.allocate_tensors()
    ops = plain._get_ops_details()
    tensors = {t["index"]: t for t in plain.get_tensor_details()}
    delegated = mod.Interpreter(model_path=str(path))
    delegated.allocate_tensors()
    left = [o["op_name"] for o in delegated._get_ops_details() if o["op_name"] != "DELEGATE"]
    remaining = {name: left.count(name) for name in set(left)}
    out = []
    for o in ops:
        outs = [tensors[i] for i in o["outputs"] if i in tensors]
        name = outs[0]["name"] if outs else str(o["index"])
        dtype = np.dtype(outs[0]["dtype"]).name if outs else "?"
        xnn = remaining.get(o["op_name"], 0) == 0
        if not xnn:
            remaining[o["op_name"]] -= 1
        out.append({"op": o["op_name"], "layer": name, "dtype": dtype, "placement": "CPU (XNNPACK)" if xnn else "CPU (builtin kernel)"})
    return out

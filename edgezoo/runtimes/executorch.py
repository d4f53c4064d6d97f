"""ExecuTorch's Python runtime (``executorch.runtime``), XNNPACK delegate. It takes and
returns torch tensors, so it needs torch beside it; the Session converts to and from
numpy. XNNPACK's thread pool is process-wide: ``open`` sets it to the asked thread count."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, first_line, require
from edgezoo.runtimes.base import Runtime, Session, TensorInfo

NAME = "executorch"
_DTYPES = {6: "float32", 5: "float16", 1: "int8", 0: "uint8", 3: "int32", 4: "int64", 11: "bool"}  # ExecuTorch ScalarType codes


def _info(prefix: str, i: int, meta) -> TensorInfo:
    return TensorInfo(f"{prefix}{i}", tuple(int(d) for d in meta.sizes()), _DTYPES.get(int(meta.dtype()), str(meta.dtype())))


class ExecutorchSession(Session):
    def __init__(self, method, torch):
        self.method = method
        self.torch = torch
        meta = method.metadata
        self.inputs = [_info("input_", i, meta.input_tensor_meta(i)) for i in range(meta.num_inputs())]
        self.outputs = [_info("output_", i, meta.output_tensor_meta(i)) for i in range(meta.num_outputs())]

    def _run(self, feeds):
        outs = self.method.execute([self.torch.from_numpy(np.ascontiguousarray(x)) for x in feeds])
        return [o.detach().numpy().copy() if hasattr(o, "numpy") else np.asarray(o) for o in outs]


class Executorch(Runtime):
    def __init__(self):
        super().__init__(name=NAME, distribution="executorch", extra="executorch", runner_module="edgezoo.runtimes.run_executorch",
                         runner_requires=("numpy", "executorch (its Python runtime needs torch; devices without Python use the C++ executor_runner)"),
                         description="ExecuTorch runtime (Python bindings) with the XNNPACK delegate")

    def open(self, path: Path, threads: int = 1, config: dict | None = None) -> ExecutorchSession:
        torch = require("torch", extra="torch", purpose="running ExecuTorch programs (its Python runtime takes torch tensors)")
        rt_mod = require("executorch.runtime", package="executorch", extra="executorch", purpose="running ExecuTorch programs")
        try:
            from executorch.extension.pybindings import portable_lib

            portable_lib._unsafe_reset_threadpool(int(threads))
        except (ImportError, AttributeError):  # older bindings: XNNPACK picks its own thread count
            pass
        try:
            program = rt_mod.Runtime.get().load_program(Path(path))
            method = program.load_method("forward")
        except Exception as exc:  # the bindings raise RuntimeError/ValueError with the runtime's text
            raise ModelFileError(f"ExecuTorch cannot load {Path(path).name}: {first_line(exc)[:300]}") from exc
        return ExecutorchSession(method, torch)

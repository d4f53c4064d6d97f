"""onnxruntime, CPU execution provider."""

from __future__ import annotations

from pathlib import Path

from edgezoo.errors import ModelFileError, first_line, require
from edgezoo.runtimes.base import Runtime, Session, TensorInfo

NAME = "onnxruntime"


def _ort():
    return require("onnxruntime", extra="onnx", purpose="running ONNX models")


def _info(arg) -> TensorInfo:
    dtype = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
             "tensor(int64)": "int64", "tensor(int32)": "int32", "tensor(bool)": "bool"}.get(arg.type, arg.type)
    return TensorInfo(arg.name, tuple(d if isinstance(d, int) else -1 for d in arg.shape), dtype)


class OrtSession(Session):
    def __init__(self, sess):
        self.sess = sess
        self.inputs = [_info(a) for a in sess.get_inputs()]
        self.outputs = [_info(a) for a in sess.get_outputs()]

    def _run(self, feeds):
        return self.sess.run(None, {i.name: x for i, x in zip(self.inputs, feeds)})


class OnnxRuntime(Runtime):
    def __init__(self):
        super().__init__(name=NAME, distribution="onnxruntime", extra="onnx", runner_module="edgezoo.runtimes.run_onnxruntime",
                         runner_requires=("numpy", "onnxruntime"), description="onnxruntime, CPU execution provider")

    def version(self) -> str:
        return _ort().__version__

    def open(self, path: Path, threads: int = 1, config: dict | None = None) -> OrtSession:
        ort = _ort()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3  # errors only: graph clean-up notices are not the user's business
        try:
            return OrtSession(ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]))
        except Exception as exc:  # onnxruntime raises its own exception types per failure
            raise ModelFileError(f"onnxruntime cannot load {Path(path).name}: {first_line(exc)[:300]}") from exc


def kernel_registry() -> dict[tuple[str, str], list[tuple[int, int]]]:
    """(domain, op) -> opset version ranges, from onnxruntime's own CPU kernel registry."""
    _ort()
    from onnxruntime.capi import _pybind_state as C

    table: dict[tuple[str, str], list[tuple[int, int]]] = {}
    for k in C.get_all_opkernel_def():
        if k.provider == "CPUExecutionProvider":
            domain = "" if k.domain in ("", "ai.onnx") else k.domain
            table.setdefault((domain, k.op_name), []).append(tuple(k.version_range))
    return table


def loads(path: Path) -> str | None:
    """None when onnxruntime loads the model (graph optimisation included), else its reason."""
    try:
        OnnxRuntime().open(path, 1)
    except ModelFileError as exc:
        return exc.message
    return None


"""A user's ONNX file: its contract read from the file, and the normalisation stages that
make a file from any exporter quantizable and convertible.

    fix-input-shapes -> upgrade-opset (when needed) -> infer-shapes -> (simplify, per format)

Each stage is a lineage entry, so a bundle says what was done to the user's graph."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgezoo.errors import ModelFileError, UsageError, first_line, require
from edgezoo.hashing import sha256_file
from edgezoo.stages import Step

MIN_QUANT_OPSET = 13  # onnxruntime's per-channel QDQ (axis on QuantizeLinear) needs opset 13


@dataclass
class Tensor:
    name: str
    dims: list  # int, or None for a dynamic dimension
    dim_names: list  # the exporter's symbolic names ("batch", "height"), "" where fixed
    dtype: str

    def shown(self) -> str:
        return "x".join(str(d) if d is not None else (n or "?") for d, n in zip(self.dims, self.dim_names)) or "scalar"


@dataclass
class OnnxInfo:
    path: Path
    opset: int
    ir_version: int
    producer: str
    inputs: list[Tensor]
    outputs: list[Tensor]
    operators: Counter
    params: int
    domains: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {
            "file": str(self.path), "opset": self.opset, "ir_version": self.ir_version, "producer": self.producer,
            "inputs": [{"name": t.name, "shape": [d if d is not None else (n or "?") for d, n in zip(t.dims, t.dim_names)], "dtype": t.dtype}
                       for t in self.inputs],
            "outputs": [{"name": t.name, "shape": [d if d is not None else (n or "?") for d, n in zip(t.dims, t.dim_names)], "dtype": t.dtype}
                        for t in self.outputs],
            "params": self.params, "operators": dict(sorted(self.operators.items())), "opsets": self.domains,
        }


def load(path: Path):
    """The checked ONNX model (weights included) or a one-line refusal."""
    onnx = require("onnx", extra="onnx", purpose="reading ONNX files")
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist", hint="check the path, or name a zoo model from `edgezoo list`")
    try:
        model = onnx.load(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path} is not a valid ONNX model: {first_line(exc)[:200]}", hint="export it again, or check that it is the right file") from None
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ModelFileError(f"{path} fails onnx.checker: {first_line(exc)[:200]}", hint="export it again with a current exporter") from None
    return model


def _tensor(onnx, vi) -> Tensor:
    tt = vi.type.tensor_type
    dims, names = [], []
    for d in tt.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None)
        names.append(d.dim_param if d.HasField("dim_param") else "")
    try:
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name
    except Exception:  # an undefined or exotic element type
        dtype = f"onnx-type-{tt.elem_type}"
    return Tensor(vi.name, dims, names, dtype)


def info(model, path: Path) -> OnnxInfo:
    onnx = require("onnx", extra="onnx", purpose="reading ONNX files")
    inits = {i.name for i in model.graph.initializer}
    domains = {(o.domain or "ai.onnx"): o.version for o in model.opset_import}
    params = 0
    for init in model.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        params += n
    producer = f"{model.producer_name} {model.producer_version}".strip() or "unknown"
    return OnnxInfo(
        path=path, opset=domains.get("ai.onnx", 0), ir_version=model.ir_version, producer=producer,
        inputs=[_tensor(onnx, i) for i in model.graph.input if i.name not in inits],
        outputs=[_tensor(onnx, o) for o in model.graph.output],
        operators=Counter(n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}::{n.op_type}" for n in model.graph.node),
        params=params, domains=domains,
    )


def check_inputs(meta: OnnxInfo) -> None:
    for t in meta.inputs:
        if t.dtype != "float32":
            raise ModelFileError(f"{meta.path.name}: input {t.name!r} is {t.dtype}; edgezoo exports models with float32 inputs",
                                 hint="export the model with float32 inputs (cast integer ids inside the model)")
    if not meta.inputs:
        raise ModelFileError(f"{meta.path.name} has no inputs", hint="export the model with its inputs as graph inputs")


def normalise(src: Path, out: Path, shapes: dict[str, tuple[int, ...]], *, min_opset: int = 0) -> list[Step]:
    """Fix dynamic dimensions, upgrade the opset to ``min_opset`` when below it (a model to
    be quantized), unroll fixed-count ``Loop``s (quantizers do not enter loop bodies: an
    int8 export would leave the loop in float), and run shape inference; writes ``out`` and
    returns one lineage step per change made."""
    onnx = require("onnx", extra="onnx", purpose="reading ONNX files")
    from edgezoo import __version__

    model = onnx.load(str(src))
    steps: list[Step] = []
    src_sha = sha256_file(src)

    inits = {i.name for i in model.graph.initializer}
    changed = {}
    for vi in model.graph.input:
        if vi.name in inits or vi.name not in shapes:
            continue
        dims = vi.type.tensor_type.shape.dim
        for d, s in zip(dims, shapes[vi.name]):
            if not (d.HasField("dim_value") and d.dim_value == s):
                changed[vi.name] = "x".join(map(str, shapes[vi.name]))
                d.Clear()
                d.dim_value = s
    if changed:
        # stale symbolic shapes of intermediate tensors would contradict the fixed inputs
        del model.graph.value_info[:]
        for o in model.graph.output:
            for d in o.type.tensor_type.shape.dim:
                if not d.HasField("dim_value"):
                    d.Clear()
        steps.append(Step("fix-input-shapes", "edgezoo", __version__, {"shapes": changed}, src_sha, ""))

    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if min_opset and opset < min_opset:
        from onnx import version_converter

        try:
            model = version_converter.convert_version(model, min_opset)
            onnx.checker.check_model(model)
        except Exception as exc:
            blocker = _blocking_op(exc, model)
            raise ModelFileError(
                f"{src.name}: opset {opset} cannot be upgraded to {min_opset}, which int8 quantization needs"
                + (f"; {blocker} blocks it" if blocker else "") + f": {first_line(exc)[:160]}",
                hint="re-export the model at opset 13 or later, or choose --precision fp32",
            ) from exc
        steps.append(Step("upgrade-opset", "onnx.version_converter", onnx.__version__, {"from": opset, "to": min_opset}, "", ""))

    if min_opset:
        from edgezoo.intake.bridge import MAX_UNROLL, unroll_loops

        unrolled = unroll_loops(model)
        if unrolled:
            steps.append(Step("unroll-loops", "edgezoo", __version__, {"loops": unrolled, "max_trip_count": MAX_UNROLL}, "", ""))

    try:
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except Exception as exc:
        raise ModelFileError(f"{src.name}: shape inference fails with the given input shapes: {first_line(exc)[:200]}",
                             hint="check --input-shape against what the model expects") from exc
    onnx.save(model, str(out))
    out_sha = sha256_file(out)
    steps.append(Step("infer-shapes", "onnx.shape_inference", onnx.__version__, {"strict": True, "data_prop": True}, "", out_sha))
    # chain the digests: each step's input is the previous step's output (intermediates are not kept)
    prev = src_sha
    fixed = []
    for s in steps:
        fixed.append(Step(s.stage, s.tool, s.tool_version, s.params, prev, s.output_sha256 or "in-memory", s.notes))
        prev = fixed[-1].output_sha256
    return fixed


def flatten_gemm_biases(model) -> list[str]:
    """Gemm biases of shape (1, N) become (N,): the same result by broadcasting. onnxruntime's
    QDQ quantizer assumes a 1-D bias and fails on the 2-D ones that MatMul+Add fusion
    leaves (onnxruntime issue 24815; fix pending in PR 29747)."""
    from onnx import numpy_helper

    inits = {i.name: i for i in model.graph.initializer}
    users: dict[str, int] = {}
    for n in model.graph.node:
        for name in n.input:
            users[name] = users.get(name, 0) + 1
    done = []
    for n in model.graph.node:
        if n.op_type != "Gemm" or len(n.input) < 3 or n.input[2] not in inits or users.get(n.input[2], 0) != 1:
            continue
        bias = inits[n.input[2]]
        if len(bias.dims) == 2 and bias.dims[0] == 1:
            arr = numpy_helper.to_array(bias).reshape(-1)
            bias.CopyFrom(numpy_helper.from_array(arr, bias.name))
            done.append(n.name or n.output[0])
    return done


def _blocking_op(exc: Exception, model) -> str:
    text = str(exc)
    ops = sorted({n.op_type for n in model.graph.node}, key=len, reverse=True)
    for op in ops:
        if op in text:
            return f"operator {op}"
    return ""


def card_for(meta: OnnxInfo, shapes: dict[str, tuple[int, ...]], *, license: str | None, task: str | None, sha256: str, size: int):
    """A minimal card for a user's ONNX file: its contract is read from the file."""
    from edgezoo.intake.cards import user_card

    convs = sum(c for op, c in meta.operators.items() if op in ("Conv", "ConvTranspose"))
    return user_card(
        path=meta.path, architecture="onnx-file", inputs=shapes, outputs=[o.name for o in meta.outputs],
        output_ranks=[len(o.dims) for o in meta.outputs], license=license, task=task, params=meta.params,
        sha256=sha256, size=size, tags=("cnn",) if convs else (),
    )

"""A .tflite file as a source model: the user's own, or a zoo model that exists only as TFLite.

No TensorFlow is needed: LiteRT reads the file (tensors, operators), AI Edge Quantizer
quantizes a float model, TFLite Micro takes the int8 result, and OpenVINO reads TFLite with
its own frontend. ONNX and ExecuTorch are built from PyTorch: a graph of plain CNN operators
is rebuilt as a PyTorch module by :mod:`edgezoo.intake.tflite_torch`; for any other graph no
TensorFlow-free converter exists (tf2onnx needs TensorFlow), and that is said at plan time,
naming the operators.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, UsageError, last_line

# formats a .tflite source can become, and why the others cannot
TAKES_TFLITE = ("tflite", "tflm", "openvino")
WHY_NOT = ("no TensorFlow-free converter turns a TFLite flatbuffer into an ONNX graph or a PyTorch module "
           "(tf2onnx needs TensorFlow; edgezoo's own bridge rebuilds plain CNN operators only)")


@dataclass
class TfliteTensor:
    name: str
    shape: tuple[int, ...]
    signature: tuple[int, ...]  # -1 for a dynamic dimension
    dtype: str
    scale: float = 0.0
    zero_point: int = 0


@dataclass
class TfliteInfo:
    path: Path
    inputs: list[TfliteTensor]
    outputs: list[TfliteTensor]
    operators: dict[str, int]
    params: int
    quantized: bool  # integer weights or activations: already quantized by its producer
    description: str = ""
    extra: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        def t(x):
            return {"name": x.name, "shape": [d if s != -1 else "?" for d, s in zip(x.shape, x.signature or x.shape)], "dtype": x.dtype,
                    **({"quantization": {"scale": x.scale, "zero_point": x.zero_point}} if x.scale else {})}

        return {"file": str(self.path), "kind": "tflite-file", "opset": "-", "producer": self.description or "TFLite flatbuffer",
                "inputs": [t(i) for i in self.inputs], "outputs": [t(o) for o in self.outputs], "params": self.params,
                "operators": dict(sorted(self.operators.items())), "quantized": self.quantized}


def load(path: Path) -> TfliteInfo:
    """The file's contract as LiteRT reads it, or a one-line refusal."""
    from edgezoo.runtimes.litert import _interp

    if not path.is_file():
        raise UsageError(f"model file {path} does not exist", hint="check the path, or name a zoo model from `edgezoo list`")
    head = path.read_bytes()[:8]
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ModelFileError(f"{path} is not a TFLite flatbuffer (no TFL3 identifier)", hint="check that it is the right file")
    mod = _interp()
    try:
        it = mod.Interpreter(model_path=str(path), experimental_op_resolver_type=mod.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    except Exception as exc:  # a missing custom operator, a corrupt buffer
        msg = last_line(exc)[:300]
        hint = ("the model needs a custom operator LiteRT does not ship; export it with builtin operators only"
                if "custom" in msg.lower() or "op" in msg.lower() else "check that the file is complete")
        raise ModelFileError(f"LiteRT cannot load {path.name}: {msg}", hint=hint) from None

    def tensor(d) -> TfliteTensor:
        scale, zero = d["quantization"]
        sig = tuple(int(v) for v in d.get("shape_signature", d["shape"]))
        return TfliteTensor(d["name"], tuple(int(v) for v in d["shape"]), sig, np.dtype(d["dtype"]).name, float(scale), int(zero))

    ins = [tensor(d) for d in it.get_input_details()]
    outs = [tensor(d) for d in it.get_output_details()]
    ops: dict[str, int] = {}
    produced: set[int] = set()
    consumed: set[int] = set()
    for o in it._get_ops_details():
        ops[o["op_name"]] = ops.get(o["op_name"], 0) + 1
        produced.update(int(i) for i in o["outputs"])
        consumed.update(int(i) for i in o["inputs"])
    inputs_idx = {d["index"] for d in it.get_input_details()}
    params, quantized = 0, False
    for t in it.get_tensor_details():
        if t["index"] in produced or t["index"] in inputs_idx:
            if np.dtype(t["dtype"]).kind in "iu" and t["quantization"][0]:
                quantized = True
            continue
        if t["index"] not in consumed:  # a leftover constant no operator reads
            continue
        n = int(np.prod(t["shape"])) if len(t["shape"]) else 1
        params += n
        if np.dtype(t["dtype"]).kind in "iu" and t["quantization"][0] and n > 16:
            quantized = True
    return TfliteInfo(path, ins, outs, ops, params, quantized)


def check(meta: TfliteInfo) -> None:
    """What edgezoo needs of a .tflite source: float inputs of fixed shape, and a float model
    to quantize (a model already quantized by its producer is refused, saying why)."""
    if not meta.inputs:
        raise ModelFileError(f"{meta.path.name} has no inputs")
    for t in meta.inputs:
        if -1 in t.signature[1:]:
            raise ModelFileError(f"{meta.path.name}: input {t.name!r} has dynamic dimensions {list(t.signature)}",
                                 hint="convert it again with a fixed input shape")
        if t.dtype != "float32" and not t.scale:
            raise ModelFileError(f"{meta.path.name}: input {t.name!r} is {t.dtype}; edgezoo imports models with float inputs",
                                 hint="convert it with float32 inputs (cast integer ids inside the model)")
    if meta.quantized:
        raise ModelFileError(f"{meta.path.name} is already quantized (integer tensors); edgezoo imports float .tflite models "
                             "and quantizes them for the target itself",
                             hint="pass the float model the quantized one was made from")


def card_for(meta: TfliteInfo, *, license: str | None, task: str | None, sha256: str, size: int):
    from edgezoo.intake.cards import user_card

    convs = sum(c for op, c in meta.operators.items() if "CONV" in op)
    return user_card(
        path=meta.path, architecture="tflite-file", inputs={t.name: t.shape for t in meta.inputs}, outputs=[o.name for o in meta.outputs],
        output_ranks=[len(o.shape) for o in meta.outputs], license=license, task=task, params=meta.params, sha256=sha256, size=size,
        tags=("cnn",) if convs else (), image_layout="NHWC",
    )


def refuse_format(fmt: str, label: str, why: str = WHY_NOT) -> None:
    if fmt not in TAKES_TFLITE:
        raise UsageError(f"{label} is a TFLite model, which the {fmt} format cannot be built from: {why}",
                         hint=f"choose --format {' or '.join(TAKES_TFLITE)} (LiteRT, TFLite Micro, OpenVINO's TFLite frontend)")


def ensure_signature(path: Path) -> bool:
    """Give a .tflite without a signature (MediaPipe's models, older converters) the
    ``serving_default`` signature over its subgraph's inputs and outputs, in place: AI Edge
    Quantizer calibrates per signature. Returns whether the file changed; the tensors,
    operators and weights are untouched."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    if model.signatureDefs:
        return False
    sg = model.subgraphs[0]

    def tensor_map(i):
        t = schema.TensorMapT()
        t.name, t.tensorIndex = sg.tensors[i].name, int(i)
        return t

    sd = schema.SignatureDefT()
    sd.signatureKey, sd.subgraphIndex = b"serving_default", 0
    sd.inputs, sd.outputs = [tensor_map(i) for i in sg.inputs], [tensor_map(i) for i in sg.outputs]
    model.signatureDefs = [sd]
    builder = flatbuffers.Builder(max(1024, path.stat().st_size))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return True


def float16_weights_to_float32(path: Path) -> int:
    """Turn fp16-stored weights (a constant float16 tensor feeding a DEQUANTIZE operator, as
    MediaPipe ships its models) into float32 constants and drop those operators, in place:
    a plain float32 model, which the int8 quantizers expect (AI Edge Quantizer otherwise
    writes weights with non-zero zero points that LiteRT's int8 kernels refuse). Returns
    the number of weights converted; the model computes the same function."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    dequant = schema.BuiltinOperator.DEQUANTIZE
    converted = 0
    for sg in model.subgraphs:
        produced = {int(t) for op in sg.operators for t in op.outputs}
        keep = []
        for op in sg.operators:
            src = int(op.inputs[0]) if op.inputs is not None and len(op.inputs) == 1 else -1
            t_in = sg.tensors[src] if src >= 0 else None
            if (codes[op.opcodeIndex] == dequant and t_in is not None and t_in.type == schema.TensorType.FLOAT16
                    and src not in produced and model.buffers[t_in.buffer].data is not None):
                out = sg.tensors[int(op.outputs[0])]
                data = np.frombuffer(bytes(model.buffers[t_in.buffer].data), dtype=np.float16).astype(np.float32)
                buf = schema.BufferT()
                buf.data = np.frombuffer(data.tobytes(), dtype=np.uint8)
                model.buffers.append(buf)
                out.buffer = len(model.buffers) - 1
                converted += 1
                continue
            keep.append(op)
        sg.operators = keep
        _drop_unused_tensors(model, sg, schema)
    if converted:
        builder = flatbuffers.Builder(max(1024, 3 * path.stat().st_size))
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        path.write_bytes(bytes(builder.Output()))
    return converted


def _drop_unused_tensors(model, sg, schema) -> None:
    """Remove the tensors no operator or signature touches any more (the fp16 originals),
    renumbering the rest, and free their buffers: quantizers that calibrate every tensor
    stumble over orphans."""
    def ids(xs):
        return [int(t) for t in (xs if xs is not None else ()) if int(t) >= 0]

    used = set(ids(sg.inputs)) | set(ids(sg.outputs))
    for op in sg.operators:
        used |= set(ids(op.inputs)) | set(ids(op.outputs)) | set(ids(op.intermediates))
    if len(used) == len(sg.tensors):
        return
    new_index = {old: k for k, old in enumerate(sorted(used))}
    for old, t in enumerate(sg.tensors):
        if old not in used and t.buffer and model.buffers[t.buffer].data is not None:
            model.buffers[t.buffer].data = None
    sg.tensors = [sg.tensors[old] for old in sorted(used)]

    def remap(xs):
        return None if xs is None else [new_index[int(t)] if int(t) >= 0 else -1 for t in xs]

    sg.inputs, sg.outputs = remap(sg.inputs), remap(sg.outputs)
    for op in sg.operators:
        op.inputs, op.outputs, op.intermediates = remap(op.inputs), remap(op.outputs), remap(op.intermediates)
    index = model.subgraphs.index(sg)
    for sd in model.signatureDefs or []:
        if sd.subgraphIndex == index:
            for tm in (sd.inputs or []) + (sd.outputs or []):
                tm.tensorIndex = new_index[int(tm.tensorIndex)]

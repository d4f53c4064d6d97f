"""A float TFLite graph of plain CNN operators rebuilt as a PyTorch module, weights and all.

With the module, a TFLite-only model reaches every format (PT2E int8 for LiteRT, the Edge
TPU and TFLite Micro; ONNX; ExecuTorch), as a PyTorch-sourced model does. The graph is read
with LiteRT's own flatbuffer schema (no TensorFlow); each operator becomes its torch
equivalent, computed in NCHW (the input is transposed once; tensors are transposed back only
where TFLite's element order matters, before a RESHAPE). The executor checks the module's
outputs against the TFLite file run in LiteRT before anything is converted.

Supported operators: CONV_2D, DEPTHWISE_CONV_2D (multiplier 1), FULLY_CONNECTED, ADD, MUL,
RELU, RELU6, LOGISTIC, PAD, MAX_POOL_2D, AVERAGE_POOL_2D, MEAN (spatial), RESHAPE,
CONCATENATION, with fused ReLU/ReLU6. Any other operator is named in the refusal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "RELU", "RELU6", "LOGISTIC", "PAD", "MAX_POOL_2D",
             "AVERAGE_POOL_2D", "MEAN", "RESHAPE", "CONCATENATION")
NHWC_TO_NCHW_AXIS = {0: 0, 1: 2, 2: 3, 3: 1, -1: 1, -2: 3, -3: 2}


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def unsupported_ops(path: Path) -> list[str]:
    """Operators of the file the bridge cannot rebuild (empty: it can)."""
    schema = _schema()
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    used = set()
    for sg in model.subgraphs:
        for op in sg.operators:
            code = model.operatorCodes[op.opcodeIndex]
            name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")
            if name == "CUSTOM" and code.customCode:
                name = code.customCode.decode(errors="replace")
            if name == "DEQUANTIZE" and op.inputs is not None and len(op.inputs) == 1:
                t = sg.tensors[int(op.inputs[0])]
                if t.type == schema.TensorType.FLOAT16 and model.buffers[t.buffer].data is not None:
                    continue  # fp16-stored weights: made float32 before the rebuild
            used.add(name)
    return sorted(o for o in used if o not in SUPPORTED)


def build(path: Path):
    """The PyTorch module computing the float .tflite at ``path`` (fp16-stored weights must
    already be float32: :func:`edgezoo.intake.tflite_file.float16_weights_to_float32`)."""
    import torch

    bad = unsupported_ops(path)
    if bad:
        raise ModelFileError(f"{path.name} uses operators the TFLite -> PyTorch bridge does not rebuild: {', '.join(bad)}",
                             hint=f"it rebuilds {', '.join(SUPPORTED)}; the formats that take the .tflite itself still work")
    return TfliteGraph(path, torch)


class _ChannelPad:
    """A tensor with ``before`` and ``after`` zero channels, not yet built."""

    def __init__(self, x, before: int, after: int):
        self.x, self.before, self.after = x, before, after

    def materialise(self):
        import torch

        n, _, h, w = self.x.shape
        parts = ([self.x.new_zeros((n, self.before, h, w))] if self.before else []) + [self.x] + \
                ([self.x.new_zeros((n, self.after, h, w))] if self.after else [])
        return torch.cat(parts, dim=1)


def _residual(padded: dict, vals: dict, ins: list):
    """(the channel pad, the other operand) of an ADD of one channel-padded tensor and a
    computed tensor of its full shape (no broadcasting); (None, None) for any other ADD."""
    if len(padded) != 1 or not all(i in vals for i in ins):
        return None, None
    (i_pad, cp), = padded.items()
    other = vals[ins[1] if ins[0] == i_pad else ins[0]]
    n, c, h, w = cp.x.shape
    if isinstance(other, _ChannelPad) or tuple(other.shape) != (n, c + cp.before + cp.after, h, w):
        return None, None
    return cp, other


def _same_pad(size: int, k: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    eff = (k - 1) * dilation + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + eff - size, 0)
    return total // 2, total - total // 2


def _tensor_module():
    import torch

    return torch.nn.Module


class TfliteGraph(_tensor_module()):
    """Executes the subgraph's operators in order; constants are parameters/buffers."""

    def __init__(self, path: Path, torch):
        super().__init__()
        schema = _schema()
        model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
        sg = model.subgraphs[0]
        names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        self._schema = schema
        self.inputs, self.outputs = [int(i) for i in sg.inputs], [int(i) for i in sg.outputs]
        self.shapes = {k: [int(d) for d in (t.shape if t.shape is not None else [])] for k, t in enumerate(sg.tensors)}
        consts: dict[int, np.ndarray] = {}
        for k, t in enumerate(sg.tensors):
            data = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
            if data is not None and len(data):
                dtype = {schema.TensorType.FLOAT32: np.float32, schema.TensorType.INT32: np.int32,
                         schema.TensorType.INT64: np.int64}.get(t.type)
                if dtype is None:
                    raise ModelFileError(f"{path.name}: constant {t.name.decode(errors='replace')} has tensor type {t.type}; "
                                         "the bridge rebuilds float models")
                consts[k] = np.frombuffer(bytes(data), dtype=dtype).reshape(self.shapes[k] or ())
        self.ops = []
        self.params = torch.nn.ParameterDict()
        for n, op in enumerate(sg.operators):
            code = model.operatorCodes[op.opcodeIndex]
            name = names.get(max(code.builtinCode, code.deprecatedBuiltinCode))
            ins = [int(i) for i in (op.inputs if op.inputs is not None else [])]
            outs = [int(i) for i in op.outputs]
            spec = {"name": name, "ins": ins, "outs": outs, "opt": op.builtinOptions}
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                w = consts[ins[1]]  # CONV: O x H x W x I; DEPTHWISE: 1 x H x W x C
                weight = w.transpose(0, 3, 1, 2) if name == "CONV_2D" else w.transpose(3, 0, 1, 2)
                self.params[f"w{n}"] = torch.nn.Parameter(torch.from_numpy(weight.copy()), requires_grad=False)
                if len(ins) > 2 and ins[2] >= 0:
                    self.params[f"b{n}"] = torch.nn.Parameter(torch.from_numpy(consts[ins[2]].copy()), requires_grad=False)
            elif name == "FULLY_CONNECTED":
                self.params[f"w{n}"] = torch.nn.Parameter(torch.from_numpy(consts[ins[1]].copy()), requires_grad=False)
                if len(ins) > 2 and ins[2] >= 0:
                    self.params[f"b{n}"] = torch.nn.Parameter(torch.from_numpy(consts[ins[2]].copy()), requires_grad=False)
            else:
                for i in ins:
                    if i in consts and name in ("ADD", "MUL", "CONCATENATION"):
                        c = consts[i]
                        self.params[f"c{n}_{i}"] = torch.nn.Parameter(
                            torch.from_numpy((c.transpose(0, 3, 1, 2) if c.ndim == 4 else c).astype(np.float32).copy()), requires_grad=False)
            # plain Python values (torch.export traces no numpy arrays held by a module)
            spec["consts"] = {i: consts[i].tolist() for i in ins if i in consts and name in ("PAD", "RESHAPE", "MEAN")}
            self.ops.append(spec)

    @staticmethod
    def _act(x, fused, F):
        schema = _schema()
        if fused == schema.ActivationFunctionType.RELU:
            return F.relu(x)
        if fused == schema.ActivationFunctionType.RELU6:
            return F.relu6(x)
        if fused not in (None, schema.ActivationFunctionType.NONE):
            raise ModelFileError(f"fused activation {fused} is not rebuilt by the TFLite -> PyTorch bridge")
        return x

    def forward(self, *xs):
        import torch
        import torch.nn.functional as F

        schema = self._schema
        vals, layout = {}, {}
        for i, x in zip(self.inputs, xs):
            if x.dim() == 4:
                vals[i], layout[i] = x.permute(0, 3, 1, 2), "nchw"
            else:
                vals[i], layout[i] = x, "plain"

        def get(n, i):
            if i in vals:
                return vals[i]
            return self.params[f"c{n}_{i}"]

        for n, op in enumerate(self.ops):
            name, ins, outs, opt = op["name"], op["ins"], op["outs"], op["opt"]
            padded = {i: vals[i] for i in ins if isinstance(vals.get(i), _ChannelPad)}
            cp, other = _residual(padded, vals, ins) if name == "ADD" else (None, None)
            if cp is not None:
                # a residual added to a channel-padded input (BlazeFace): the padded channels only
                # pass the other operand through, so add the unpadded input to its own channels and
                # concatenate; no zero tensor, which int8 converters cannot lay out as NHWC
                c = cp.x.shape[1]
                parts = ([other[:, : cp.before]] if cp.before else []) + [other[:, cp.before : cp.before + c] + cp.x] + \
                        ([other[:, cp.before + c :]] if cp.after else [])
                y = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
                vals[outs[0]], layout[outs[0]] = self._act(y, getattr(opt, "fusedActivationFunction", None), F), "nchw"
                continue
            for i, cp in padded.items():
                vals[i] = cp.materialise()
            if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
                x = vals[ins[0]]
                w = self.params[f"w{n}"]
                b = self.params[f"b{n}"] if f"b{n}" in self.params else None
                kh, kw = w.shape[2], w.shape[3]
                sh, sw = opt.strideH, opt.strideW
                dh, dw = getattr(opt, "dilationHFactor", 1) or 1, getattr(opt, "dilationWFactor", 1) or 1
                if opt.padding == schema.Padding.SAME:
                    ph, pw = _same_pad(x.shape[2], kh, sh, dh), _same_pad(x.shape[3], kw, sw, dw)
                    if any(ph + pw):
                        x = torch.constant_pad_nd(x, (pw[0], pw[1], ph[0], ph[1]), 0.0)
                groups = x.shape[1] if name == "DEPTHWISE_CONV_2D" else 1
                y = F.conv2d(x, w, b, stride=(sh, sw), dilation=(dh, dw), groups=groups)
                vals[outs[0]], layout[outs[0]] = self._act(y, opt.fusedActivationFunction, F), "nchw"
            elif name == "FULLY_CONNECTED":
                x = vals[ins[0]]
                if layout[ins[0]] == "nchw":
                    x = x.permute(0, 2, 3, 1)
                x = x.reshape(-1, self.params[f"w{n}"].shape[1])
                y = F.linear(x, self.params[f"w{n}"], self.params[f"b{n}"] if f"b{n}" in self.params else None)
                vals[outs[0]], layout[outs[0]] = self._act(y, opt.fusedActivationFunction, F), "plain"
            elif name in ("ADD", "MUL"):
                a, b = get(n, ins[0]), get(n, ins[1])
                y = a + b if name == "ADD" else a * b
                vals[outs[0]] = self._act(y, getattr(opt, "fusedActivationFunction", None), F)
                layout[outs[0]] = layout.get(ins[0], layout.get(ins[1], "plain"))
            elif name in ("RELU", "RELU6", "LOGISTIC"):
                x = vals[ins[0]]
                vals[outs[0]] = F.relu(x) if name == "RELU" else F.relu6(x) if name == "RELU6" else torch.sigmoid(x)
                layout[outs[0]] = layout[ins[0]]
            elif name == "PAD":
                x, p = vals[ins[0]], [[int(v) for v in pair] for pair in op["consts"][ins[1]]]
                if layout[ins[0]] == "nchw":
                    if any(p[0]):
                        raise ModelFileError("PAD of the batch dimension is not rebuilt by the bridge")
                    if any(p[1] + p[2]):  # spatial: (W, H), last dimension first; constant_pad_nd is the
                        # aten op litert-torch's NHWC rewriter lowers (aten.pad, which F.pad traces to, it refuses)
                        x = torch.constant_pad_nd(x, (p[2][0], p[2][1], p[1][0], p[1][1]), 0.0)
                    if any(p[3]):  # channels (BlazeFace's residual "channel padding"): kept symbolic; an
                        # ADD folds it away, any other consumer gets zeros concatenated (_ChannelPad)
                        x = _ChannelPad(x, p[3][0], p[3][1])
                    vals[outs[0]], layout[outs[0]] = x, "nchw"
                else:
                    pads = tuple(int(v) for pair in p[::-1] for v in pair)
                    vals[outs[0]], layout[outs[0]] = torch.constant_pad_nd(x, pads, 0.0), layout[ins[0]]
            elif name in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
                x = vals[ins[0]]
                kh, kw, sh, sw = opt.filterHeight, opt.filterWidth, opt.strideH, opt.strideW
                if opt.padding == schema.Padding.SAME:
                    ph, pw = _same_pad(x.shape[2], kh, sh), _same_pad(x.shape[3], kw, sw)
                    if any(ph + pw):
                        if name == "MAX_POOL_2D":
                            x = torch.constant_pad_nd(x, (pw[0], pw[1], ph[0], ph[1]), float("-inf"))
                        else:
                            raise ModelFileError("AVERAGE_POOL_2D with SAME padding is not rebuilt by the bridge")
                y = F.max_pool2d(x, (kh, kw), (sh, sw)) if name == "MAX_POOL_2D" else F.avg_pool2d(x, (kh, kw), (sh, sw))
                vals[outs[0]], layout[outs[0]] = self._act(y, opt.fusedActivationFunction, F), "nchw"
            elif name == "MEAN":
                spec_axes = op["consts"][ins[1]]
                x, axes = vals[ins[0]], [int(a) for a in (spec_axes if isinstance(spec_axes, list) else [spec_axes])]
                if layout[ins[0]] == "nchw":
                    axes = [NHWC_TO_NCHW_AXIS[a] for a in axes]
                keep = bool(opt.keepDims) if opt is not None else False
                y = x.mean(dim=axes, keepdim=keep)
                vals[outs[0]] = y
                layout[outs[0]] = layout[ins[0]] if keep else "plain"
                if not keep and layout[ins[0]] == "nchw" and sorted(axes) != [2, 3]:
                    raise ModelFileError("MEAN over channels is not rebuilt by the bridge")
            elif name == "RESHAPE":
                x = vals[ins[0]]
                if layout[ins[0]] == "nchw":
                    x = x.permute(0, 2, 3, 1)  # TFLite's element order
                shape = self.shapes[outs[0]]
                y = x.reshape(shape)
                if len(shape) == 4:
                    vals[outs[0]], layout[outs[0]] = y.permute(0, 3, 1, 2), "nchw"
                else:
                    vals[outs[0]], layout[outs[0]] = y, "plain"
            elif name == "CONCATENATION":
                parts = [get(n, i) for i in ins]
                axis = int(opt.axis)
                lay = layout.get(ins[0], "plain")
                if lay == "nchw":
                    axis = NHWC_TO_NCHW_AXIS[axis]
                y = torch.cat(parts, dim=axis)
                vals[outs[0]], layout[outs[0]] = self._act(y, getattr(opt, "fusedActivationFunction", None), F), lay
            else:  # unreachable: refused in build()
                raise ModelFileError(f"operator {name} is not rebuilt by the bridge")
        res = []
        for o in self.outputs:
            y = vals[o].materialise() if isinstance(vals[o], _ChannelPad) else vals[o]
            res.append(y.permute(0, 2, 3, 1) if layout[o] == "nchw" else y)
        return tuple(res) if len(res) > 1 else res[0]

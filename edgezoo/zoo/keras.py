"""Keras models in PyTorch: a small interpreter for the layer graph a Keras ``.h5`` file
describes (its ``model_config`` JSON), with the float weights read from the file as arrays
by ``h5py``. No TensorFlow is needed, and nothing in the file is executed.

No maintained library does this without TensorFlow (nobuco and tf2onnx need it, onnx2torch
needs ONNX), so edgezoo carries this one: it covers the layers of the MLPerf Tiny reference
models (Conv2D, DepthwiseConv2D, BatchNormalization, Dense, Activation, Add, pooling,
Flatten, Reshape, Dropout) and refuses any other layer by name.

Tensors are NCHW inside; ``input_layout = "NCHW"`` takes images as edgezoo's image
preprocessing gives them, ``"keras"`` takes the model's own (channels-last) layout. Flatten
and Reshape follow Keras' channels-last order, so Dense weights apply unchanged, and a 4-D
output is returned channels-last, as the Keras model (and its .tflite) gives it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from edgezoo.errors import ModelFileError

SUPPORTED = ("InputLayer", "Conv2D", "DepthwiseConv2D", "BatchNormalization", "Activation", "Dense", "Add", "AveragePooling2D",
             "MaxPooling2D", "Flatten", "Reshape", "Dropout", "ReLU", "Softmax")


def _h5py():
    from edgezoo.errors import require

    return require("h5py", extra="torch", purpose="reading Keras .h5 weights")


def config_of(h5_path: Path) -> dict:
    h5py = _h5py()

    with h5py.File(str(h5_path), "r") as f:
        raw = f.attrs.get("model_config")
    if raw is None:
        raise ModelFileError(f"{h5_path} has no Keras model_config", hint="save the model with model.save('x.h5')")
    return json.loads(raw if isinstance(raw, str) else raw.decode())


def _same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    k = (k - 1) * d + 1
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def build(config: dict, input_layout: str = "NCHW"):
    """A torch module computing the Keras graph (weights uninitialised: see ``load_h5``)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    layers = config["config"]["layers"]
    bad = sorted({l["class_name"] for l in layers} - set(SUPPORTED))
    if bad:
        raise ModelFileError(f"Keras layers edgezoo cannot rebuild: {', '.join(bad)}", hint=f"supported: {', '.join(SUPPORTED)}")

    def act(name):
        if name in (None, "linear"):
            return lambda x: x
        if name == "relu":
            return torch.relu
        if name == "softmax":
            return lambda x: torch.softmax(x, dim=1)
        if name == "tanh":
            return torch.tanh
        if name == "sigmoid":
            return torch.sigmoid
        raise ModelFileError(f"Keras activation {name!r} is not supported", hint="relu, softmax, tanh, sigmoid, linear")

    class KerasModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.mods = nn.ModuleDict()
            self.plan = []
            shapes: dict[str, tuple] = {}  # channels-last shapes without the batch, as Keras states them
            for l in layers:
                c, cfg, name = l["class_name"], l["config"], l["name"]
                inbound = [n[0] for n in l["inbound_nodes"][0]] if l.get("inbound_nodes") else []
                key = name.replace(".", "_")
                shape = tuple(cfg["batch_input_shape"][1:]) if c == "InputLayer" else shapes[inbound[0]]
                if c in ("Conv2D", "DepthwiseConv2D"):
                    (kh, kw), (sh, sw) = cfg["kernel_size"], cfg["strides"]
                    h, w, cin = shape
                    if cfg["padding"] == "same":
                        h, w = math.ceil(h / sh), math.ceil(w / sw)
                    else:
                        h, w = (h - kh) // sh + 1, (w - kw) // sw + 1
                    if c == "Conv2D":
                        cout = cfg["filters"]
                        self.mods[key] = nn.Conv2d(cin, cout, (kh, kw), bias=cfg["use_bias"])
                    else:
                        cout = cin * cfg.get("depth_multiplier", 1)
                        self.mods[key] = nn.Conv2d(cin, cout, (kh, kw), groups=cin, bias=cfg["use_bias"])
                    shape = (h, w, cout)
                elif c == "Dense":
                    self.mods[key] = nn.Linear(shape[-1], cfg["units"], bias=cfg["use_bias"])
                    shape = (*shape[:-1], cfg["units"])
                elif c == "BatchNormalization":
                    bn = nn.BatchNorm2d if len(shape) == 3 else nn.BatchNorm1d
                    self.mods[key] = bn(shape[-1], eps=cfg["epsilon"])
                elif c in ("AveragePooling2D", "MaxPooling2D"):
                    (kh, kw) = cfg["pool_size"]
                    (sh, sw) = cfg.get("strides") or (kh, kw)
                    shape = ((shape[0] - kh) // sh + 1, (shape[1] - kw) // sw + 1, shape[2])
                elif c == "Flatten":
                    shape = (math.prod(shape),)
                elif c == "Reshape":
                    shape = tuple(cfg["target_shape"])
                shapes[name] = shape
                self.plan.append((c, cfg, name, key, inbound))
            self.input_shape = (1, *(tuple(layers[0]["config"]["batch_input_shape"][1:])))

        def forward(self, x):
            vals = {}
            out_name = config["config"]["output_layers"][0][0]
            for c, cfg, name, key, inbound in self.plan:
                if c == "InputLayer":
                    v = x
                    if input_layout == "keras" and v.dim() == 4:
                        v = v.permute(0, 3, 1, 2)
                    vals[name] = v
                    continue
                v = vals[inbound[0]]
                if c in ("Conv2D", "DepthwiseConv2D"):
                    m = self.mods[key]
                    (kh, kw), (sh, sw) = cfg["kernel_size"], cfg["strides"]
                    dh, dw = cfg.get("dilation_rate", (1, 1))
                    if cfg["padding"] == "same":
                        top, bottom = _same_pads(v.shape[2], kh, sh, dh)
                        left, right = _same_pads(v.shape[3], kw, sw, dw)
                        if (top, left) == (bottom, right):
                            pad = (top, left)
                        else:
                            v, pad = F.pad(v, (left, right, top, bottom)), (0, 0)
                    else:
                        pad = (0, 0)
                    v = F.conv2d(v, m.weight, m.bias, (sh, sw), pad, (dh, dw), m.groups)
                    v = act(cfg.get("activation"))(v)
                elif c == "Dense":
                    kind = cfg.get("activation")
                    v = self.mods[key](v)
                    if not (kind == "softmax" and name == out_name):  # see Activation below
                        v = act(kind)(v)
                elif c == "BatchNormalization":
                    v = self.mods[key](v)  # a BatchNorm module, so exporters fold it into the convolution
                elif c in ("Activation", "ReLU", "Softmax"):
                    kind = cfg.get("activation", "relu" if c == "ReLU" else "softmax")
                    if kind == "softmax" and name == out_name:
                        pass  # the classifier's scores leave as logits: the task's runner applies softmax (int8 kernels keep it out)
                    else:
                        v = act(kind)(v)
                elif c == "Add":
                    v = vals[inbound[0]]
                    for other in inbound[1:]:
                        v = v + vals[other]
                elif c in ("AveragePooling2D", "MaxPooling2D"):
                    k = tuple(cfg["pool_size"])
                    s = tuple(cfg.get("strides") or k)
                    if cfg.get("padding", "valid") != "valid":
                        raise ModelFileError(f"{name}: pooling with padding {cfg['padding']!r} is not supported")
                    v = F.avg_pool2d(v, k, s) if c == "AveragePooling2D" else F.max_pool2d(v, k, s)
                elif c == "Flatten":
                    v = (v.permute(0, 2, 3, 1) if v.dim() == 4 else v).reshape(v.shape[0], -1)  # channels-last order, as Keras
                elif c == "Reshape":
                    target = tuple(cfg["target_shape"])
                    v = v.reshape(v.shape[0], *target)
                    if len(target) == 3:
                        v = v.permute(0, 3, 1, 2)  # back to NCHW inside
                elif c == "Dropout":
                    pass
                vals[name] = v
            y = vals[out_name]
            return y.permute(0, 2, 3, 1) if y.dim() == 4 else y

    return KerasModule()


def load_h5(module, h5_path: Path) -> None:
    """Set the module's parameters from the .h5 file's arrays (shapes from the file)."""
    import torch

    h5py = _h5py()
    with h5py.File(str(h5_path), "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for c, cfg, name, key, _ in module.plan:
            if key not in module.mods:
                continue
            group = root[name][name] if name in root and name in root[name] else root[name]
            w = {k.split(":")[0]: torch.from_numpy(group[k][()].copy()) for k in group}
            m = module.mods[key]
            if c == "Conv2D":
                value = w["kernel"].permute(3, 2, 0, 1)  # (kh, kw, in, out) -> (out, in, kh, kw)
            elif c == "DepthwiseConv2D":
                kernel = w["depthwise_kernel"]  # (kh, kw, in, multiplier)
                kh, kw, cin, mult = kernel.shape
                value = kernel.permute(2, 3, 0, 1).reshape(cin * mult, 1, kh, kw)
            elif c == "Dense":
                value = w["kernel"].t()
            else:  # BatchNormalization
                n = w["moving_mean"].numel()
                _set(m.weight, w.get("gamma", torch.ones(n)), name)
                _set(m.bias, w.get("beta", torch.zeros(n)), name)
                _set(m.running_mean, w["moving_mean"], name)
                _set(m.running_var, w["moving_variance"], name)
                continue
            _set(m.weight, value, name)
            if m.bias is not None:
                _set(m.bias, w["bias"], name)


def _set(tensor, value, layer: str) -> None:
    import torch

    if tuple(tensor.shape) != tuple(value.shape):
        raise ModelFileError(f"Keras layer {layer}: weights of shape {tuple(value.shape)} where the architecture has {tuple(tensor.shape)}",
                             hint="the .h5 file is not the model the card describes")
    with torch.no_grad():
        tensor.copy_(value)

"""Builders for the zoo's architectures (imports torch: only call from pipeline stages)."""

from __future__ import annotations

from edgezoo.errors import NotFoundError


def _digits_cnn():
    import torch.nn as nn

    class DigitsCNN(nn.Module):
        """A small CNN for 8x8 digits: three conv blocks, global pooling, a linear head."""

        def __init__(self, num_classes: int = 10):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1, bias=False),
                nn.BatchNorm2d(32),
                nn.ReLU(inplace=True),
                nn.Conv2d(32, 64, 3, padding=1, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Conv2d(64, 128, 3, padding=1, bias=False),
                nn.BatchNorm2d(128),
                nn.ReLU(inplace=True),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.classifier = nn.Linear(128, num_classes)

        def forward(self, x):
            return self.classifier(self.features(x))

    return DigitsCNN()


def _silero_vad_16k():
    """Silero VAD v6 (16 kHz), a port of its published architecture that loads the
    ``silero_vad_16k.safetensors`` state dict as is. One call classifies a 512-sample chunk
    (32 ms) with 64 samples of left context; the LSTM state is an input and an output, so the
    caller streams (the bundle's runner and the voice-activity task do)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class SileroVad16k(nn.Module):
        def __init__(self):
            super().__init__()
            self.stft_conv = nn.Conv1d(1, 258, 256, stride=128, bias=False)  # STFT as a convolution: 129 bins x (re, im)
            self.conv1 = nn.Conv1d(129, 128, 3, padding=1)
            self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
            self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
            self.lstm_cell = nn.LSTMCell(128, 128)  # its parameters; the cell is computed below with static slices
            self.final_conv = nn.Conv1d(128, 1, 1)

        def forward(self, audio, state):
            x = F.pad(audio.unsqueeze(1), (0, 64), mode="reflect")
            spec = self.stft_conv(x)
            mag = torch.sqrt(spec[:, :129] ** 2 + spec[:, 129:] ** 2)
            for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
                mag = torch.relu(conv(mag))
            x, h, c = mag.squeeze(-1), state[:, 0], state[:, 1]  # state: (batch, h/c, 128)
            cell = self.lstm_cell  # written out: exporters trace nn.LSTMCell's chunk() poorly
            gates = F.linear(x, cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh, cell.bias_hh)
            i, f = torch.sigmoid(gates[:, :128]), torch.sigmoid(gates[:, 128:256])
            g, o = torch.tanh(gates[:, 256:384]), torch.sigmoid(gates[:, 384:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            prob = torch.sigmoid(self.final_conv(torch.relu(h).unsqueeze(-1))).squeeze(-1)
            return prob, torch.stack([h, c], dim=1)

    return SileroVad16k()


def _torchvision(name: str):
    def build():
        from edgezoo.errors import require

        models = require("torchvision.models", package="torchvision", extra="torch", purpose=f"the {name} architecture")
        return getattr(models, name)(weights=None)

    return build


ARCHITECTURES = {
    "edgezoo.digits_cnn": _digits_cnn,
    "silero.vad16k": _silero_vad_16k,
    "torchvision.mobilenet_v2": _torchvision("mobilenet_v2"),
    "torchvision.mobilenet_v3_small": _torchvision("mobilenet_v3_small"),
    "torchvision.resnet18": _torchvision("resnet18"),
    "torchvision.resnet50": _torchvision("resnet50"),
}


def _mlp(spec: str):
    """``edgezoo.mlp:IN-H1-...-OUT``: ReLU MLP; with ``+affine`` the output is mapped to the
    target's units by a stored scale and shift (regression models predict in real units)."""
    import torch
    import torch.nn as nn

    affine = spec.endswith("+affine")
    dims = [int(d) for d in spec.removesuffix("+affine").split("-")]

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            for a, b in zip(dims[:-2], dims[1:-1]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            layers.append(nn.Linear(dims[-2], dims[-1]))
            self.net = nn.Sequential(*layers)
            if affine:
                self.register_buffer("out_scale", torch.ones(dims[-1]))
                self.register_buffer("out_shift", torch.zeros(dims[-1]))

        def forward(self, x):
            y = self.net(x)
            return y * self.out_scale + self.out_shift if affine else y

    return MLP()


# Weights published inside an ONNX file: initializer name -> the architecture's parameter name.
ONNX_WEIGHT_NAMES = {
    "silero.vad16k": {
        "model.stft.forward_basis_buffer": "stft_conv.weight",
        **{f"model.encoder.{i}.reparam_conv.{p}": f"conv{i + 1}.{p}" for i in range(4) for p in ("weight", "bias")},
        **{f"model.decoder.rnn.{p}": f"lstm_cell.{p}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
        "model.decoder.decoder.2.weight": "final_conv.weight", "model.decoder.decoder.2.bias": "final_conv.bias",
    },
}


def onnx_state_dict(architecture: str, path) -> dict:
    """Tensors read from an ONNX file's initializers (arrays only: nothing is executed)."""
    import onnx
    import torch
    from onnx import numpy_helper

    names = ONNX_WEIGHT_NAMES.get(architecture)
    if names is None:
        raise NotFoundError("architecture with ONNX weights", architecture, sorted(ONNX_WEIGHT_NAMES))
    model = onnx.load(str(path))
    found = {i.name: i for i in model.graph.initializer}
    return {ours: torch.from_numpy(numpy_helper.to_array(found[theirs]).copy()) for theirs, ours in names.items() if theirs in found}


def build(architecture: str):
    if architecture.startswith("edgezoo.mlp:"):
        try:
            model = _mlp(architecture.split(":", 1)[1])
        except ValueError:
            raise NotFoundError("architecture", architecture, ["edgezoo.mlp:IN-H1-...-OUT[+affine]"]) from None
        model.eval()
        return model
    if architecture not in ARCHITECTURES:
        raise NotFoundError("architecture", architecture, sorted(ARCHITECTURES))
    model = ARCHITECTURES[architecture]()
    model.eval()
    return model


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model, input_shape, *extra_shapes) -> int:
    """Multiply-accumulates of one forward pass: half the FLOPs torch's own FlopCounterMode
    counts for convolutions and matrix products (the figure cards state and the
    microcontroller latency estimate uses)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(tuple(input_shape)), *(torch.zeros(tuple(s)) for s in extra_shapes))
    return counter.get_total_flops() // 2

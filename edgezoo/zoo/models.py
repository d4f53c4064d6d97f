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


def _torchvision(name: str):
    def build():
        from edgezoo.errors import require

        models = require("torchvision.models", package="torchvision", extra="torch", purpose=f"the {name} architecture")
        return getattr(models, name)(weights=None)

    return build


ARCHITECTURES = {
    "edgezoo.digits_cnn": _digits_cnn,
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


def count_macs(model, input_shape) -> int:
    """Multiply-accumulates of one forward pass: half the FLOPs torch's own FlopCounterMode
    counts for convolutions and matrix products (the figure cards state and the
    microcontroller latency estimate uses)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(tuple(input_shape)))
    return counter.get_total_flops() // 2

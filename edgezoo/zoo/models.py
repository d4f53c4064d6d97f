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


def build(architecture: str):
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

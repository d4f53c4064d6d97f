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
    """Multiply-accumulates of one forward pass, counted for Conv2d and Linear layers."""
    import torch
    import torch.nn as nn

    total = 0

    def conv_hook(mod, _inp, out):
        nonlocal total
        k = mod.kernel_size[0] * mod.kernel_size[1] * (mod.in_channels // mod.groups)
        total += int(out.numel() * k)

    def linear_hook(mod, _inp, out):
        nonlocal total
        total += int(out.numel() * mod.in_features)

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    with torch.no_grad():
        model(torch.zeros(input_shape))
    for h in handles:
        h.remove()
    return total

"""BatchNorm folded before a conversion (edgezoo.stages.fold): the right pairs, the same
outputs, the module paths kept (they name the converted file's layers), the caller's model
untouched, and a model FX cannot trace converted as it is."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgezoo.stages.fold import fold_batchnorm

from .conftest import run_cli

torch = pytest.importorskip("torch")
nn = torch.nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.shared = nn.Conv2d(8, 8, 1)  # called twice: not folded
        self.bn_shared = nn.BatchNorm2d(8)
        self.branch = nn.Conv2d(8, 8, 3, padding=1)  # its output also feeds the sum: not folded
        self.bn_branch = nn.BatchNorm2d(8)
        self.tail = nn.Conv1d(8, 4, 1)
        self.bn_tail = nn.BatchNorm1d(4, affine=False)

    def forward(self, x):
        x = self.stem(x)
        x = self.bn_shared(self.shared(x)) + self.shared(x)
        b = self.branch(x)
        x = self.bn_branch(b) + b
        return self.bn_tail(self.tail(x.flatten(2)))


def _trained(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-1, 1, generator=g)
            m.running_var.uniform_(0.5, 2, generator=g)
            if m.affine:
                m.weight.data.uniform_(0.5, 1.5, generator=g)
                m.bias.data.uniform_(-0.5, 0.5, generator=g)
    return model.eval()


def test_folds_each_conv_batchnorm_pair_it_can_and_keeps_the_outputs():
    model = _trained(Net())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded, n = fold_batchnorm(model)
    assert n == 2  # stem.0 -> stem.1 and tail -> bn_tail
    assert isinstance(folded.stem[1], nn.Identity) and isinstance(folded.bn_tail, nn.Identity)
    assert isinstance(folded.bn_shared, nn.BatchNorm2d) and isinstance(folded.bn_branch, nn.BatchNorm2d)
    assert folded.stem[0].bias is not None  # the BatchNorm's shift went there
    x = torch.randn(4, 3, 6, 6)
    with torch.no_grad():
        np.testing.assert_allclose(folded(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-5)
    # the caller's model is untouched
    assert isinstance(model.stem[1], nn.BatchNorm2d)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    # the module paths of what stays are the same
    assert {k for k in dict(folded.named_modules())} <= {k for k in dict(model.named_modules())}


def test_a_model_in_training_or_untraceable_is_left_as_it_is():
    class Dynamic(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4)

        def forward(self, x):
            if x.sum() > 0:  # data-dependent: FX cannot trace it
                x = -x
            return self.bn(self.conv(x))

    model = _trained(Dynamic())
    assert fold_batchnorm(model) == (model, 0)
    trained = _trained(Net()).train()
    assert fold_batchnorm(trained) == (trained, 0)


def test_a_litert_export_folds_and_still_matches_pytorch(tmp_path):
    """Through the CLI: the fp32 .tflite of digits-cnn (three Conv -> BatchNorm pairs) is
    converted folded, says so in its lineage, and agrees with the PyTorch model."""
    res = run_cli("export", "digits-cnn", "--target", "raspberrypi", "--precision", "fp32", "--out", str(tmp_path), "--json")
    doc = json.loads(res.stdout)
    ec = doc["report"]["export_check"]
    assert ec["agreement"] == 100.0 and ec["max_abs_diff"] < 1e-4
    manifest = json.loads(Path(doc["bundle"], "manifest.json").read_text())
    step = next(s for s in manifest["lineage"] if s["stage"] == "convert-litert")
    assert step["params"]["batchnorm_folded"] == 3

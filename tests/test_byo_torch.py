"""Bring your own PyTorch model: module.py:factory (with safetensors or tensors-only weights)
and .pt2 ExportedPrograms, to every format; pickles are never unpickled."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli

NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


def build():
    torch.manual_seed(0)
    return Net()


def not_a_module():
    return {"weights": 1}


def broken():
    raise ValueError("the factory needs a config file")
'''

# every format, on the target that deploys it
FORMATS = [("generic-cpu", "onnx"), ("intel-cpu", "openvino"), ("raspberrypi", "tflite"), ("raspberrypi", "pte"), ("nrf52840", "tflm")]


@pytest.fixture(scope="module")
def user(tmp_path_factory):
    import torch
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("user")
    (root / "mynet.py").write_text(NET)
    sys.path.insert(0, str(root))
    try:
        import mynet  # noqa: PLC0415 (the user's file, written above)

        model = mynet.build().eval()
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("mynet", None)
    with torch.no_grad():  # trained-looking BatchNorm statistics
        model.features[1].running_mean.uniform_(-0.2, 0.2)
        model.features[1].running_var.uniform_(0.5, 1.5)
    save_file(model.state_dict(), root / "mynet.safetensors")
    torch.save(model.state_dict(), root / "mynet.pth")
    h = torch.export.Dim("h", min=8, max=64)
    ep = torch.export.export(model, (torch.randn(1, 3, 16, 16),), dynamic_shapes=({2: 2 * h, 3: 2 * h},))
    torch.export.save(ep, root / "mynet.pt2")
    np.save(root / "cal.npy", np.random.default_rng(0).standard_normal((40, 3, 16, 16)).astype(np.float32))
    x = np.random.default_rng(9).standard_normal((3, 16, 16)).astype(np.float32)
    np.save(root / "x.npy", x)
    with torch.no_grad():
        ref = model(torch.from_numpy(x[None])).numpy()[0]
    return root, ref


def _run_bundle(bundle: Path, x: Path) -> dict:
    out = subprocess.run([sys.executable, str(bundle / "run.py"), str(x), "--json", "--top", "1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("target,fmt", FORMATS)
def test_factory_with_safetensors_to_every_format(user, target, fmt, tmp_path):
    root, ref = user
    data = json.loads(run_cli("export", f"{root}/mynet.py:build", "--target", target, "--format", fmt, "--input-shape", "1x3x16x16",
                              "--weights", str(root / "mynet.safetensors"), "--calib-data", str(root / "cal.npy"),
                              "--out", str(tmp_path), "--json").stdout)
    rep = data["report"]
    assert rep["format"] == fmt
    assert rep["export_check"]["max_abs_diff"] < 1e-4  # fp32 equals the user's module
    assert rep["variants"]["int8"]["quality"]["sqnr_db"] > 15
    manifest = json.loads((Path(data["bundle"]) / "manifest.json").read_text())
    assert manifest["model"]["weights_source"] == "local file mynet.safetensors"
    assert "load-torch" in [s["stage"] for s in manifest["lineage"]]
    if fmt != "tflm":  # the microcontroller bundle's runner runs the same int8 model in TFLite Micro
        printed = _run_bundle(Path(data["bundle"]), root / "x.npy")
        assert printed["top"][0]["index"] == int(np.argmax(ref))


@pytest.mark.parametrize("target,fmt", FORMATS)
def test_pt2_with_dynamic_dims_to_every_format(user, target, fmt, tmp_path):
    root, ref = user
    res = run_cli("export", str(root / "mynet.pt2"), "--target", target, "--format", fmt, "--calib-data", str(root / "cal.npy"),
                  "--out", str(tmp_path), ok=None)
    assert res.exit_code == 2 and "dynamic dimension 2" in res.output  # height and width are dynamic in this program
    data = json.loads(run_cli("export", str(root / "mynet.pt2"), "--target", target, "--format", fmt, "--input-shape", "1x3x16x16",
                              "--calib-data", str(root / "cal.npy"), "--out", str(tmp_path), "--json").stdout)
    rep = data["report"]
    assert rep["export_check"]["max_abs_diff"] < 1e-4
    assert rep["variants"]["int8"]["quality"]["sqnr_db"] > 15
    if fmt != "tflm":
        assert _run_bundle(Path(data["bundle"]), root / "x.npy")["top"][0]["index"] == int(np.argmax(ref))


def test_tensors_only_checkpoint_is_accepted(user, tmp_path):
    root, _ = user
    run_cli("export", f"{root}/mynet.py:build", "--target", "generic-cpu", "--precision", "fp32", "--input-shape", "1x3x16x16",
            "--weights", str(root / "mynet.pth"), "--out", str(tmp_path))


class _Evil:
    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_malicious_pickle_as_weights_creates_no_file(user, tmp_path):
    root, _ = user
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"features.0.weight": _Evil(str(marker))}))
    res = run_cli("export", f"{root}/mynet.py:build", "--target", "generic-cpu", "--precision", "fp32", "--input-shape", "1x3x16x16",
                  "--weights", str(evil), "--out", str(tmp_path / "o"), ok=None)
    assert res.exit_code == 2 and "does not unpickle" in res.output
    assert not marker.exists()
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())
    # the same pickle hidden in a .pt2 archive's weights is refused before torch.export.load sees it
    import zipfile

    src = root / "mynet.pt2"
    bad = tmp_path / "evil.pt2"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            if item.filename.endswith("model_weights_config.json"):
                cfg = json.loads(data)
                first = next(iter(cfg["config"].values()))
                first["use_pickle"] = True
                evil_name = item.filename.rsplit("/", 1)[0] + "/" + first["path_name"]
                data = json.dumps(cfg).encode()
            zout.writestr(item, data)
    with zipfile.ZipFile(bad, "a") as zout:
        import io

        import torch

        buf = io.BytesIO()
        torch.save({"w": _Evil(str(marker))}, buf)
        names = zout.namelist()
        # replace the weight member: zip keeps the last entry of a name
        zout.writestr(evil_name, buf.getvalue())
        assert evil_name in names
    res = run_cli("export", str(bad), "--target", "generic-cpu", "--precision", "fp32", "--input-shape", "1x3x16x16",
                  "--out", str(tmp_path / "o"), ok=None)
    assert res.exit_code == 2 and "does not unpickle" in res.output
    assert not marker.exists()


def test_factory_errors_are_one_line(user, tmp_path):
    root, _ = user
    res = run_cli("export", f"{root}/mynet.py:not_a_module", "--target", "generic-cpu", "--input-shape", "1x3x16x16", ok=None)
    assert res.exit_code == 2 and "returned dict, not a torch.nn.Module" in res.output
    res = run_cli("export", f"{root}/mynet.py:broken", "--target", "generic-cpu", "--input-shape", "1x3x16x16", ok=None)
    assert res.exit_code == 2 and "raised ValueError: the factory needs a config file" in res.output and "Traceback" not in res.output
    res = run_cli("export", f"{root}/mynet.py:nothing", "--target", "generic-cpu", "--input-shape", "1x3x16x16", ok=None)
    assert res.exit_code == 2 and "defines no callable 'nothing'" in res.output and "build" in res.output
    res = run_cli("export", f"{root}/mynet.py:build", "--target", "generic-cpu", ok=None)
    assert res.exit_code == 2 and "--input-shape" in res.output
    # under --debug the user's own traceback is shown
    out = subprocess.run([sys.executable, "-m", "edgezoo.cli.main", "--debug", "export", f"{root}/mynet.py:broken", "--target", "generic-cpu",
                          "--input-shape", "1x3x16x16"], capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" in out.stderr and "in broken" in out.stderr

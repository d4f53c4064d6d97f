"""End-to-end exports of torchvision architectures with random weights (marked slow)."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pytest

from edgezoo.bundle.verify import verify
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def _optimized_ops(model: Path, tmp: Path) -> collections.Counter:
    """Operator counts of the graph onnxruntime actually runs on this CPU."""
    import onnx
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(tmp / "optimized.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    return collections.Counter(n.op_type for n in onnx.load(str(tmp / "optimized.onnx")).graph.node)


@pytest.fixture(scope="module")
def resnet18_bundles(tmp_path_factory):
    out = tmp_path_factory.mktemp("rn18")
    res = {}
    for precision in ("int8", "fp32"):
        r = run_cli("export", "resnet18", "--target", "generic-cpu", "--weights", "random", "--precision", precision, "--out", str(out), "--json")
        res[precision] = json.loads(r.stdout)
    return res


def test_resnet18_int8_bundle(resnet18_bundles):
    data = resnet18_bundles["int8"]
    bundle = Path(data["bundle"])
    assert verify(bundle).ok
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["model"]["weights"] == "random" and m["model"]["weights_sha256"] == ""
    rep = data["report"]
    assert any("random weights" in w for w in rep["warnings"])
    assert rep["export_check"]["agreement"] >= 99.5
    # with BatchNorm re-estimated, int8 keeps a usable signal on real photos
    assert rep["variants"]["int8"]["quality"]["sqnr_db"] > 15
    assert rep["size_ratio_vs_fp32"] < 0.3


def test_u8s8_scheme_runs_every_conv_as_integer_kernel(resnet18_bundles, tmp_path):
    """The reason generic-cpu gets U8S8: onnxruntime then fuses all 20 convolutions of
    resnet18 into QLinearConv, while quantize_static's default (S8S8) leaves some in float."""
    from onnxruntime.quantization import quantize_static

    from edgezoo.stages.quantize_onnx import _Reader

    int8 = Path(resnet18_bundles["int8"]["bundle"]) / "model.onnx"
    ops = _optimized_ops(int8, tmp_path)
    assert ops["QLinearConv"] == 20 and ops["Conv"] == 0, ops

    fp32 = Path(resnet18_bundles["fp32"]["bundle"]) / "model.onnx"
    calib = np.random.default_rng(0).standard_normal((8, 3, 224, 224)).astype(np.float32)
    default = tmp_path / "default.onnx"
    quantize_static(str(fp32), str(default), _Reader(["image"], [calib]))
    d_ops = _optimized_ops(default, tmp_path)
    assert d_ops["QLinearConv"] < 20, d_ops


def test_mobilenet_v3_small_slowdown_is_reported_not_hidden(tmp_path):
    r = run_cli("export", "mobilenet_v3_small", "--target", "raspberrypi", "--weights", "random", "--out", str(tmp_path), "--json")
    rep = json.loads(r.stdout)["report"]
    int8, fp32 = rep["variants"]["int8"], rep["variants"]["fp32"]
    slower = int8["latency"]["p50_ms"] > fp32["latency"]["p50_ms"]
    # measured on this host; advice to switch precision only when the host has the target's instruction set
    from edgezoo.pipeline.executor import host_arch

    advice = host_arch() == "arm64"
    assert slower == any("SLOWER than fp32" in w and ("--precision fp32" in w) == advice and ("measure on the device" in w) != advice
                         for w in rep["warnings"])
    md = (Path(json.loads(r.stdout)["bundle"]) / "report.md").read_text()
    if slower:
        assert "SLOWER than fp32" in md


def test_image_bundle_runner_takes_a_photo(resnet18_bundles, tmp_path):
    """run.py resizes and crops an image file as the card says, then classifies it."""
    import subprocess
    import sys

    from PIL import Image
    from skimage import data

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    bundle = Path(resnet18_bundles["int8"]["bundle"])
    out = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / "astronaut.png"), "--json", "--top", "5"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    top = json.loads(out.stdout)["top"]
    assert len(top) == 5 and all(t["label"] for t in top)
    # the same photo as an HxWx3 .npy array gives the same answer
    np.save(tmp_path / "astronaut.npy", data.astronaut())
    out2 = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / "astronaut.npy"), "--json", "--top", "5"], capture_output=True, text=True, check=True)
    assert json.loads(out2.stdout)["top"][0]["index"] == top[0]["index"]


@pytest.mark.parametrize("model", ["mobilenet_v3_small", "mobilenet_v2"])
def test_bench_all_formats_on_torchvision(model, tmp_path):
    """The cross-format matrix on real architectures (hard-swish and SE blocks; ReLU6 and
    residual additions): every format's fp32 agrees with PyTorch, every precision the
    profile lists was built and measured, ExecuTorch included."""
    r = run_cli("bench", model, "--target", "generic-cpu", "--formats", "all", "--out", str(tmp_path), "--json")
    data = json.loads(r.stdout)
    rows = data["rows"]
    assert {row["format"] for row in rows} == {"onnx", "tflite", "openvino", "pte"}
    assert not [row for row in rows if row["error"]]
    for row in rows:
        if row["precision"] == "fp32":
            assert row["torch_agreement"] >= 99.5, row
        assert row["p50_ms_1t"] > 0 and row["size_bytes"] > 0
    from edgezoo.targets import load_target

    t = load_target("generic-cpu")
    expected = {(f, p) for f, spec in t.formats.items() for p in spec.precisions}
    assert {(row["format"], row["precision"]) for row in rows} == expected


"""A float .tflite as the source model (bring your own, or a zoo model that exists only as
TFLite): LiteRT, TFLite Micro and OpenVINO take the file, ONNX and ExecuTorch the graph
rebuilt in PyTorch, through the CLI, and the bundles' runners run; a graph the bridge cannot
rebuild is refused for those formats at plan time, naming the operator; a quantized or
corrupt file is refused as LiteRT reads it."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import _export_once, run_cli


@pytest.fixture(scope="module")
def float_tflite(tmp_path_factory):
    """A float .tflite made by litert-torch (digits-cnn's fp32 LiteRT export), with
    preprocessed calibration and evaluation samples of the digits data."""
    bundle, _, _ = _export_once(tmp_path_factory, "digits-cnn", "--target", "raspberrypi", "--precision", "fp32")
    d = tmp_path_factory.mktemp("tfl")
    model = d / "digits.tflite"
    model.write_bytes((bundle / "model.tflite").read_bytes())
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = ((digits.images / 16.0 - 0.5) / 0.5).astype(np.float32)[:, None]
    np.save(d / "cal.npy", x[:160])
    np.save(d / "eval.npy", x[1000:1200])
    np.save(d / "one.npy", x[1500])
    return model, d


@pytest.fixture(scope="module")
def tanh_tflite(tmp_path_factory):
    """A float .tflite with an operator the TFLite -> PyTorch bridge does not rebuild (TANH),
    made by litert-torch from a small module."""
    import litert_torch
    import torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(256, 10)).eval()
    path = tmp_path_factory.mktemp("tanh") / "tanh.tflite"
    path.write_bytes(litert_torch.convert(module, (torch.zeros(1, 1, 8, 8),)).model_content())
    return path


@pytest.mark.parametrize("target,fmt,extra", [("raspberrypi", "tflite", ()), ("intel-cpu", "openvino", ()),
                                              ("nrf52840", "tflm", ("firmware/model_data.c", "firmware/main.cc"))])
def test_float_tflite_exports_and_its_runner_runs(float_tflite, tmp_path, target, fmt, extra):
    model, d = float_tflite
    res = run_cli("export", str(model), "--target", target, "--calib-data", str(d / "cal.npy"), "--eval-data", str(d / "eval.npy"),
                  "--out", str(tmp_path), "--json")
    data = json.loads(res.stdout)
    bundle = tmp_path / data["bundle"].split("/")[-1]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["runtime"]["format"] == fmt and manifest["precision"] == "int8"
    stages = [s["stage"] for s in manifest["lineage"]]
    assert stages[0] == "load-tflite" and "quantize-static-int8" in stages
    if fmt == "tflm":
        assert "integer-io" in stages
    report = json.loads((bundle / "report.json").read_text())
    q = report["variants"]["int8"]["quality"]
    assert q["agreement"] >= 95.0 and q["sqnr_db"] > 12.0  # int8 of a float model, measured in the target runtime
    for f in extra:
        assert (bundle / f).is_file()
    out = subprocess.run([sys.executable, str(bundle / "run.py"), str(d / "one.npy"), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["top"]) == 3
    assert "ok:" in run_cli("verify", str(bundle)).output


@pytest.mark.parametrize("args,fmt", [(("--target", "generic-cpu"), "onnx"),
                                      pytest.param(("--target", "raspberrypi", "--format", "pte"), "pte", marks=pytest.mark.slow)])
def test_formats_built_from_pytorch_take_the_tflite_through_the_bridge(float_tflite, tmp_path, args, fmt):
    """ONNX and ExecuTorch are built from PyTorch: the graph is rebuilt as a module
    (edgezoo.intake.tflite_torch) and must match LiteRT running the file before conversion."""
    model, d = float_tflite
    res = run_cli("export", str(model), *args, "--calib-data", str(d / "cal.npy"), "--eval-data", str(d / "eval.npy"),
                  "--out", str(tmp_path), "--json")
    bundle = tmp_path / json.loads(res.stdout)["bundle"].split("/")[-1]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["runtime"]["format"] == fmt
    assert [s["stage"] for s in manifest["lineage"]][:2] == ["load-tflite", "tflite-to-torch"]
    report = json.loads((bundle / "report.json").read_text())
    assert report["export_check"]["agreement"] == 100.0  # the fp32 export against LiteRT running the file
    assert report["variants"]["int8"]["quality"]["agreement"] >= 95.0
    out = subprocess.run([sys.executable, str(bundle / "run.py"), str(d / "one.npy"), "--json"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_graph_the_bridge_cannot_rebuild_gets_a_format_that_takes_the_file(tanh_tflite, tmp_path):
    res = run_cli("export", str(tanh_tflite), "--target", "generic-cpu", "--precision", "fp32", "--out", str(tmp_path), "--dry-run", "--json")
    plan = json.loads(res.stdout)
    assert plan["format"] == "tflite"
    assert any("TFLite model" in w for w in plan["warnings"])


@pytest.mark.parametrize("which,args,needle", [
    ("tanh", ("--target", "raspberrypi", "--format", "onnx"), "does not rebuild its TANH"),
    ("tanh", ("--target", "raspberrypi", "--format", "pte"), "does not rebuild its TANH"),
    ("tanh", ("--target", "jetson-orin-nano"), "targets that take TFLite"),
    ("plain", ("--target", "raspberrypi", "--input-shape", "1x1x16x16"), "fixed input shapes"),
    ("plain", ("--target", "raspberrypi", "--tflite-quantizer", "pt2e"), "PT2E quantizes PyTorch modules"),
])
def test_what_cannot_take_a_tflite_is_refused_before_work(float_tflite, tanh_tflite, tmp_path, which, args, needle):
    model, d = float_tflite
    model = tanh_tflite if which == "tanh" else model
    res = run_cli("export", str(model), *args, "--calib-data", str(d / "cal.npy"), "--out", str(tmp_path), ok=None)
    assert res.exit_code == 2 and needle in res.output, res.output
    assert not any(tmp_path.iterdir())


def test_quantized_and_corrupt_files_are_refused(float_tflite, digits_tflite_int8, tmp_path):
    quantized = digits_tflite_int8[0] / "model.tflite"
    res = run_cli("export", str(quantized), "--target", "raspberrypi", "--out", str(tmp_path), ok=None)
    assert res.exit_code == 2 and "already quantized" in res.output
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(range(200)))  # the identifier, then garbage
    res = run_cli("export", str(junk), "--target", "raspberrypi", "--precision", "fp32", "--out", str(tmp_path / "o"), ok=None)
    assert res.exit_code == 2 and "LiteRT cannot load" in res.output and "Traceback" not in res.output


def test_inspect_and_check_read_a_tflite(float_tflite):
    model, _ = float_tflite
    data = json.loads(run_cli("inspect", str(model), "--targets", "raspberrypi,jetson-orin-nano", "--json").stdout)
    assert data["kind"] == "tflite-file" and data["inputs"][0]["shape"] == [1, 1, 8, 8] and data["operators"]["CONV_2D"] == 2
    verdicts = {r["target"]: r["ok"] for r in data["targets"]}
    assert verdicts == {"raspberrypi": True, "jetson-orin-nano": True}  # Jetson's ONNX through the bridge
    res = run_cli("check", str(model), "--target", "nrf52840", "--json")
    assert json.loads(res.stdout)["fits"] is True

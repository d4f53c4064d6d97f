"""Bring your own ONNX file: fp32 and int8 with the user's calibration samples."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from edgezoo.bundle.verify import verify
from tests.conftest import run_cli


def test_own_onnx_fp32_bundle_runs(tiny_onnx, tmp_path):
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--precision", "fp32", "--input-shape", "1x3x16x16", "--license", "MIT", "--out", str(tmp_path), "--json")
    data = json.loads(res.stdout)
    bundle = Path(data["bundle"])
    assert bundle.name == "tiny-generic-cpu-fp32"
    assert verify(bundle).ok
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["model"]["license"] == "MIT"
    assert m["preprocess"]["kind"] == "tensor"
    x = np.random.default_rng(1).standard_normal((3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / "x.npy"), "--json", "--top", "5"], capture_output=True, text=True, check=True)
    top = json.loads(out.stdout)["top"]
    assert len(top) == 5 and abs(sum(t["score"] for t in top) - 1.0) < 1e-5


def test_own_onnx_int8_with_calibration(tiny_onnx, tmp_path):
    cal = np.random.default_rng(2).standard_normal((64, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "cal.npy", cal)
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--precision", "int8", "--calib-data", str(tmp_path / "cal.npy"), "--out", str(tmp_path / "o"), "--json")
    data = json.loads(res.stdout)
    rep = data["report"]
    # a quarter of the samples is held out of calibration and judges fidelity, and the report says so
    assert rep["variants"]["int8"]["quality"]["samples"] == 16
    assert rep["eval_data"] == "the last 16 of 64 samples of cal.npy, held out of calibration"
    assert rep["variants"]["int8"]["quality"]["sqnr_db"] > 15
    m = json.loads((Path(data["bundle"]) / "manifest.json").read_text())
    assert m["model"]["license"] == "NOASSERTION"
    assert m["calibration"]["samples"] == 48
    assert m["quantization"]["activation_type"] == "uint8"

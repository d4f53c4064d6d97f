"""digits-cnn end to end on onnxruntime: accuracy in the runtime, size, bundle, verify, runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from edgezoo.bundle.verify import verify
from tests.conftest import copy_bundle, installed, run_cli, venv_with


def _report(bundle: Path) -> dict:
    return json.loads((bundle / "report.json").read_text())


def test_int8_keeps_accuracy_and_shrinks_the_file(digits_int8):
    bundle, archive, _ = digits_int8
    rep = _report(bundle)
    fp32, int8 = rep["variants"]["fp32"], rep["variants"]["int8"]
    # figures come from onnxruntime on the held-out eval split
    assert fp32["quality"]["samples"] == 360
    assert fp32["quality"]["top1"] > 95.0
    assert fp32["quality"]["top1"] - int8["quality"]["top1"] <= 1.0
    assert int8["size_bytes"] <= 0.30 * fp32["size_bytes"]
    # the ONNX export agrees with PyTorch
    assert rep["export_check"]["agreement"] >= 99.5
    assert int8["latency"]["p50_ms"] > 0 and int8["latency"]["runs"] >= 50


def test_manifest_records_scheme_lineage_and_checksums(digits_int8):
    bundle, _, _ = digits_int8
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["model"]["license"] == "Apache-2.0"
    assert m["runtime"]["name"] == "onnxruntime" and m["runtime"]["version"]
    # raspberrypi is ARM: signed int8 activations and weights
    assert m["quantization"]["activation_type"] == "int8" and m["quantization"]["weight_type"] == "int8"
    assert m["calibration"]["samples"] == 128 and len(m["calibration"]["sha256"]) == 64
    assert [s["stage"] for s in m["lineage"]] == ["export-onnx", "simplify", "quantize-static-int8"]
    assert m["inputs"][0]["shape"] == [1, 1, 8, 8] and m["inputs"][0]["layout"] == "NCHW"
    assert "scale" in m["inputs"][0]["quantization"]
    assert m["labels"] == [str(i) for i in range(10)]
    assert set(m["files"]) == {"model.onnx", "run.py", "MODEL_CARD.md", "LICENSE", "NOTICE"}
    for step in m["lineage"]:
        assert step["tool_version"]


def test_verify_passes_on_fresh_bundle(digits_int8):
    bundle, archive, _ = digits_int8
    assert verify(bundle).ok
    assert verify(archive).ok
    assert "ok:" in run_cli("verify", str(archive)).output


@pytest.mark.parametrize("name", ["model.onnx", "manifest.json", "MODEL_CARD.md", "report.json", "report.md", "run.py", "SHA256SUMS"])
def test_verify_fails_when_any_byte_changes(digits_int8, tmp_path, name):
    bundle, _, _ = digits_int8
    copy = copy_bundle(bundle, tmp_path)
    path = copy / name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    res = verify(copy)
    assert not res.ok
    cli = run_cli("verify", str(copy), ok=None)
    assert cli.exit_code == 5


def test_verify_fails_on_extra_or_missing_file(digits_int8, tmp_path):
    bundle, _, _ = digits_int8
    copy = copy_bundle(bundle, tmp_path)
    (copy / "extra.txt").write_text("x")
    assert any("not listed" in p for p in verify(copy).problems)
    (copy / "extra.txt").unlink()
    (copy / "run.py").unlink()
    assert any("missing" in p for p in verify(copy).problems)


def test_verify_fails_on_tampered_archive(digits_int8, tmp_path):
    _, archive, _ = digits_int8
    bad = tmp_path / archive.name
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    assert not verify(bad).ok


def test_archive_holds_the_bundle_folder(digits_int8):
    bundle, archive, _ = digits_int8
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        assert all(m.mtime == 0 for m in tar.getmembers())
    assert f"{bundle.name}/model.onnx" in names and f"{bundle.name}/SHA256SUMS" in names


def test_rebuild_is_byte_identical(digits_int8, tmp_path):
    bundle, archive, _ = digits_int8
    run_cli("export", "digits-cnn", "--target", "raspberrypi", "--format", "onnx", "--precision", "int8", "--out", str(tmp_path), "--json")
    again = tmp_path / bundle.name
    for name in ("model.onnx", "manifest.json", "MODEL_CARD.md", "run.py"):
        assert (again / name).read_bytes() == (bundle / name).read_bytes(), name


def test_runner_classifies_a_raw_digit(digits_int8, tmp_path):
    bundle, _, _ = digits_int8
    from sklearn.datasets import load_digits

    from edgezoo.zoo.datasets import load_split

    ev = load_split("sklearn-digits", "eval")
    hits = 0
    for i in range(5):
        np.save(tmp_path / f"d{i}.npy", ev.raw[i])
        out = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / f"d{i}.npy"), "--json"], capture_output=True, text=True, check=True)
        top = json.loads(out.stdout)["top"][0]
        hits += top["label"] == str(ev.labels[i])
        assert 0.0 < top["score"] <= 1.0
    assert hits >= 4
    assert load_digits  # the raw input is scikit-learn's own 8x8, 0-16 format


def test_runner_rejects_bad_input(digits_int8, tmp_path):
    bundle, _, _ = digits_int8
    np.save(tmp_path / "wrong.npy", np.zeros((5, 5)))
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / "wrong.npy")], capture_output=True, text=True)
    assert res.returncode == 2 and "shape" in res.stderr and "Traceback" not in res.stderr
    np.save(tmp_path / "range.npy", np.full((8, 8), 255.0))
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / "range.npy")], capture_output=True, text=True)
    assert res.returncode == 2 and "0..16" in res.stderr


@pytest.mark.parametrize("precision", ["fp32", "fp16", "dynamic-int8"])
def test_other_precisions_export_and_verify(tmp_path, precision):
    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--precision", precision, "--out", str(tmp_path), "--json")
    data = json.loads(res.stdout)
    bundle = Path(data["bundle"])
    assert verify(bundle).ok
    rep = data["report"]
    assert set(rep["variants"]) == {"fp32", precision}
    q = rep["variants"][precision]["quality"]
    assert q["top1"] >= rep["variants"]["fp32"]["quality"]["top1"] - 1.0
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["precision"] == precision
    if precision == "dynamic-int8":
        assert any("ConvInteger" in w for w in rep["warnings"])
    if precision == "fp16":
        assert rep["variants"]["fp16"]["size_bytes"] < 0.6 * rep["variants"]["fp32"]["size_bytes"]


def test_slower_precision_is_said_plainly(digits_int8):
    _, _, res = digits_int8
    rep = json.loads(res.stdout)["report"]
    slower = rep["variants"]["int8"]["latency"]["p50_ms"] > rep["variants"]["fp32"]["latency"]["p50_ms"]
    assert slower == any("SLOWER than fp32" in w for w in rep["warnings"])
    # raspberrypi is arm64: an x86 host's measurement gives no advice to switch precision
    from edgezoo.pipeline.executor import host_arch

    if slower and host_arch() != "arm64":
        w = next(w for w in rep["warnings"] if "SLOWER than fp32" in w)
        assert "measure on the device" in w and "consider --precision" not in w


def test_dry_run_prints_plan_and_writes_nothing(tmp_path):
    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--out", str(tmp_path / "d"), "--dry-run", "--json")
    plan = json.loads(res.stdout)
    assert plan["precision"] == "int8" and plan["quantization"]["activation_type"] == "uint8"
    assert plan["steps"].index("check-compatibility") < plan["steps"].index("quantize-static-int8")
    assert not (tmp_path / "d").exists()


@pytest.mark.skipif(os.environ.get("EDGEZOO_SKIP_VENV") == "1", reason="EDGEZOO_SKIP_VENV=1")
def test_runner_works_in_a_venv_with_only_numpy_and_onnxruntime(digits_int8, tmp_path):
    """The bundle's run.py must not need edgezoo, torch or anything but numpy + onnxruntime."""
    bundle, _, _ = digits_int8
    py = venv_with(tmp_path, "numpy", "onnxruntime")
    listed = installed(py)
    assert "edgezoo" not in listed and "torch" not in listed
    from edgezoo.zoo.datasets import load_split

    ev = load_split("sklearn-digits", "eval")
    np.save(tmp_path / "x.npy", ev.raw[0])
    out = subprocess.run([str(py), str(bundle / "run.py"), str(tmp_path / "x.npy"), "--json"], capture_output=True, text=True, cwd=tmp_path, env={"PATH": os.environ["PATH"]})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["top"][0]["label"] == str(ev.labels[0])


def test_dynamic_int8_on_cnn_warns_before_work(tmp_path):
    res = run_cli("export", "mobilenet_v2", "--target", "generic-cpu", "--precision", "dynamic-int8", "--weights", "random", "--dry-run", "--json", "--out", str(tmp_path))
    plan = json.loads(res.stdout)
    assert any("ConvInteger" in w and "slower than fp32" in w for w in plan["warnings"])


def test_manifest_keeps_the_boards_threads_and_the_report_what_was_measured(digits_int8):
    import os

    bundle = digits_int8[0]
    m = json.loads((bundle / "manifest.json").read_text())
    r = json.loads((bundle / "report.json").read_text())
    assert m["target"]["threads"] == 4  # the Raspberry Pi 4's cores: what run.py uses on the device
    assert r["variants"]["int8"]["latency"]["threads"] == min(4, os.cpu_count() or 1)  # this host's measurement


def test_manifest_says_what_the_litert_int8_file_has(digits_tflite_int8):
    """Whether LiteRT's int8 file has int8 inputs and outputs or float edges, the manifest and
    card say which."""
    bundle = digits_tflite_int8[0]
    m = json.loads((bundle / "manifest.json").read_text())
    dtypes = {t["dtype"] for t in (*m["inputs"], *m["outputs"])}
    assert m["quantization"]["integer_io"] is (dtypes <= {"int8", "uint8"})
    assert "tensors of the model file: inputs `input` " + m["inputs"][0]["dtype"] in (bundle / "MODEL_CARD.md").read_text()


def test_report_profiles_every_stage(digits_int8):
    """Where an export's time and memory went (the performance issue's "profile first"):
    every timed stage has its CPU seconds and the peak memory when it ended."""
    report = json.loads((digits_int8[0] / "report.json").read_text())
    prof, secs = report["stage_profile"], report["stage_seconds"]
    assert set(prof) == set(secs) and {"load model", "build int8", "benchmark latency"} <= set(prof)
    assert all(p["cpu_s"] >= 0 and p["children_cpu_s"] >= 0 and p["peak_rss_mb"] > 10 for p in prof.values())
    assert prof["benchmark latency"]["children_cpu_s"] > 0  # the latency workers are child processes
    peaks = [prof[s]["peak_rss_mb"] for s in ("load data", "load model", "build int8") if s in prof]
    assert peaks == sorted(peaks)  # a high-water mark only rises

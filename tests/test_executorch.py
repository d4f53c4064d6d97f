"""ExecuTorch (.pte, XNNPACK delegate) as a format added through the plug-in registry:
exported through the CLI, measured in the ExecuTorch runtime, run by the bundle's run.py."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgezoo.bundle.verify import verify
from tests.conftest import _export_once, run_cli


@pytest.fixture(scope="module")
def digits_pte_int8(tmp_path_factory):
    return _export_once(tmp_path_factory, "digits-cnn", "--target", "raspberrypi", "--format", "pte", "--precision", "int8")


def test_pte_int8_keeps_accuracy_in_the_executorch_runtime(digits_pte_int8):
    bundle, archive, _ = digits_pte_int8
    rep = json.loads((bundle / "report.json").read_text())
    fp32, int8 = rep["variants"]["fp32"], rep["variants"]["int8"]
    assert rep["runtime"] == "executorch" and fp32["runtime"] == int8["runtime"] == "executorch"
    assert fp32["quality"]["top1"] > 95.0
    assert fp32["quality"]["top1"] - int8["quality"]["top1"] <= 1.0
    assert rep["export_check"]["agreement"] >= 99.5 and rep["export_check"]["max_abs_diff"] < 1e-3
    assert int8["size_bytes"] < 0.5 * fp32["size_bytes"]
    # every operator of digits-cnn is delegated to XNNPACK
    assert rep["operators"] and all("XNNPACK" in o["placement"] for o in rep["operators"])
    man = json.loads((bundle / "manifest.json").read_text())
    assert man["model_file"] == "model.pte" and man["runtime"]["name"] == "executorch"
    assert any(s["stage"] == "quantize-static-int8" and "XNNPACKQuantizer" in s["tool"] for s in man["lineage"])
    # both the fp32 lowering and the int8 build folded digits-cnn's three BatchNorms first (edgezoo.stages.fold)
    assert {s["stage"]: s["params"].get("batchnorm_folded") for s in man["lineage"]}.items() >= {
        "convert-executorch": 3, "quantize-static-int8": 3}.items()
    assert any("executor_runner" in d for d in man["deploy"])
    assert verify(bundle).ok and verify(archive).ok


def test_pte_runner_prints_the_class(digits_pte_int8, tmp_path):
    from edgezoo.zoo.datasets import load_split

    bundle, _, _ = digits_pte_int8
    ev = load_split("sklearn-digits", "eval")
    np.save(tmp_path / "x.npy", ev.raw[7])
    out = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / "x.npy"), "--json"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["top"][0]["label"] == str(ev.labels[7])
    # the runner says what it needs
    assert "executorch" in (bundle / "run.py").read_text().split('"""')[1]


def test_pte_check_reports_delegation(tmp_path):
    res = run_cli("check", "digits-cnn", "--target", "generic-cpu", "--format", "pte", "--json")
    data = json.loads(res.stdout)
    assert data["ok"] and data["runtime"] == "executorch"
    assert {o["op_type"] for o in data["operators"]} >= {"aten.convolution"}
    assert all(o["placement"] == "CPU (XNNPACK delegate)" for o in data["operators"])


def test_pte_is_refused_where_the_target_does_not_offer_it():
    res = run_cli("export", "digits-cnn", "--target", "intel-cpu", "--format", "pte", "--dry-run", ok=None)
    assert res.exit_code == 2 and "does not deploy format 'pte'" in res.output

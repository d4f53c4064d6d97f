"""LiteRT and OpenVINO bundles, fp32 consistency across formats, precision pinning,
the compatibility report and the cross-format bench (issue: every Linux target runtime)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgezoo.bundle.verify import verify
from tests.conftest import installed, run_cli, venv_with


def _manifest(bundle: Path) -> dict:
    return json.loads((bundle / "manifest.json").read_text())


def _report(bundle: Path) -> dict:
    return json.loads((bundle / "report.json").read_text())


def _run(bundle: Path, tmp_path: Path, python: str = sys.executable, env=None) -> dict:
    from edgezoo.zoo.datasets import load_split

    ev = load_split("sklearn-digits", "eval")
    np.save(tmp_path / "x.npy", ev.raw[3])
    out = subprocess.run([python, str(bundle / "run.py"), str(tmp_path / "x.npy"), "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    top = json.loads(out.stdout)["top"][0]
    assert top["label"] == str(ev.labels[3])
    return top


@pytest.mark.parametrize("fixture,runtime,files", [
    ("digits_tflite_int8", "litert", {"model.tflite"}),
    ("digits_openvino_int8", "openvino", {"model.xml", "model.bin"}),
])
def test_int8_bundle_keeps_accuracy_in_its_runtime(request, tmp_path, fixture, runtime, files):
    bundle, archive, _ = request.getfixturevalue(fixture)
    assert verify(bundle).ok and verify(archive).ok
    m, rep = _manifest(bundle), _report(bundle)
    assert m["runtime"]["name"] == runtime and m["runtime"]["version"]
    assert files <= set(m["files"])
    assert m["inputs"][0]["layout"] == "NCHW" and m["inputs"][0]["shape"] == [1, 1, 8, 8]
    fp32, int8 = rep["variants"]["fp32"]["quality"], rep["variants"]["int8"]["quality"]
    assert fp32["samples"] == 360
    assert fp32["top1"] - int8["top1"] <= 1.0
    # the format's fp32 agrees with PyTorch
    assert rep["export_check"]["agreement"] >= 99.5 and rep["export_check"]["max_abs_diff"] < 1e-3
    _run(bundle, tmp_path)


def test_litert_int8_records_integer_io(digits_tflite_int8):
    bundle, _, _ = digits_tflite_int8
    m = _manifest(bundle)
    q = m["quantization"]
    step = m["lineage"][-1]
    assert [s["stage"] for s in m["lineage"]] == ["convert-litert", "quantize-static-int8"]
    # auto: AI Edge Quantizer with both range kinds, scored on calibration data; the kept one is recorded
    assert q["format"] == "tflite" and q["tool"] == step["tool"] == "ai-edge-quantizer"
    note = next(n for n in step["notes"] if n.startswith("auto: SQNR against fp32"))
    kept = note.rsplit("kept ", 1)[1]
    assert "minmax ranges" in note and "histogram ranges" in note and kept in ("minmax", "histogram")
    assert step["params"]["activation_ranges"].startswith(kept.replace("minmax", "min/max"))
    inp = m["inputs"][0]
    if inp["dtype"] == "int8":  # full-integer I/O: the runner must quantize with these
        assert inp["quantization"]["scale"][0] > 0


def test_openvino_precision_is_pinned(digits_openvino_int8):
    bundle, _, _ = digits_openvino_int8
    m, rep = _manifest(bundle), _report(bundle)
    assert m["runtime"]["config"] == {"INFERENCE_PRECISION_HINT": "f32"}
    assert rep["variants"]["fp32"]["runtime_config"] == {"INFERENCE_PRECISION_HINT": "f32"}
    # what the CPU plugin actually used for the "fp32" figures
    assert rep["variants"]["fp32"]["effective_precision"] == "f32"


def test_openvino_default_would_not_be_fp32_on_bf16_hosts():
    """Why the pin exists: left alone, the CPU plugin picks bf16 where the CPU has it."""
    from edgezoo.runtimes import openvino as rt

    default = rt.default_precision()
    if rt.host_supports_bf16():
        assert default == "bf16"
    else:
        assert default == "f32"


def test_bf16_is_its_own_precision(tmp_path):
    res = run_cli("export", "digits-cnn", "--target", "intel-cpu", "--precision", "bf16", "--out", str(tmp_path), "--json")
    data = json.loads(res.stdout)
    rep = data["report"]
    assert rep["variants"]["bf16"]["runtime_config"] == {"INFERENCE_PRECISION_HINT": "bf16"}
    m = _manifest(Path(data["bundle"]))
    assert m["precision"] == "bf16" and m["runtime"]["config"]["INFERENCE_PRECISION_HINT"] == "bf16"
    from edgezoo.runtimes import openvino as rt

    if rt.host_supports_bf16():
        assert rep["variants"]["bf16"]["effective_precision"] == "bf16"
        assert rep["variants"]["bf16"]["quality"]["sqnr_db"] is not None  # really differs from fp32
    else:
        assert any("no bf16 support" in w for w in rep["warnings"])


@pytest.mark.parametrize("fmt", ["onnx", "tflite", "openvino"])
def test_fp32_of_every_format_agrees_with_pytorch(tmp_path, fmt):
    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--format", fmt, "--precision", "fp32", "--out", str(tmp_path), "--json")
    ec = json.loads(res.stdout)["report"]["export_check"]
    assert ec["agreement"] >= 99.5
    assert ec["max_abs_diff"] < 1e-3


def test_rebuild_is_byte_identical_for_litert_and_openvino(digits_tflite_int8, digits_openvino_int8, tmp_path):
    for (bundle, _, _), target in ((digits_tflite_int8, "raspberrypi"), (digits_openvino_int8, "intel-cpu")):
        out = tmp_path / target
        run_cli("export", "digits-cnn", "--target", target, "--out", str(out), "--json")
        again = out / bundle.name
        for name in _manifest(bundle)["files"]:
            assert (again / name).read_bytes() == (bundle / name).read_bytes(), (target, name)
        assert (again / "manifest.json").read_bytes() == (bundle / "manifest.json").read_bytes()


def test_coral_refuses_float_precisions(tmp_path):
    res = run_cli("export", "digits-cnn", "--target", "coral-edgetpu", "--precision", "fp32", "--out", str(tmp_path), ok=None)
    assert res.exit_code == 2 and "supports int8" in res.output and "Traceback" not in res.output


def test_coral_bundle_is_full_integer_and_says_how_to_compile(tmp_path):
    res = run_cli("export", "digits-cnn", "--target", "coral-edgetpu", "--out", str(tmp_path), "--json")
    data = json.loads(res.stdout)
    bundle = Path(data["bundle"])
    m = _manifest(bundle)
    assert m["inputs"][0]["dtype"] == "int8" and m["outputs"][0]["dtype"] == "int8"
    assert any("edgetpu_compiler -s model.tflite" in d and "x86-64" in d for d in m["deploy"])
    assert "edgetpu_compiler" in (bundle / "MODEL_CARD.md").read_text()
    assert any("proxy" in w for w in data["report"]["warnings"])
    ops = {o["op_type"]: o for o in data["report"]["operators"]}
    assert ops["CONV_2D"]["placement"] == "Edge TPU"
    _run(bundle, tmp_path)


def test_onnx_file_to_tflite_plans_the_bridge(tiny_onnx, tmp_path):
    """An ONNX file reaches LiteRT through onnx2torch; the plan says so (tests/test_byo_corpus.py runs it)."""
    res = run_cli("export", str(tiny_onnx), "--target", "raspberrypi", "--precision", "fp32", "--out", str(tmp_path), "--dry-run", "--json")
    plan = json.loads(res.stdout)
    assert plan["steps"][:4] == ["load-onnx", "normalise-onnx", "simplify", "onnx-to-torch"] and plan["format"] == "tflite"
    assert any("onnx2torch" in w for w in plan["warnings"])


def test_unknown_format_for_target(tmp_path):
    res = run_cli("export", "digits-cnn", "--target", "android-arm64", "--format", "openvino", "--out", str(tmp_path), ok=None)
    assert res.exit_code == 2 and "does not deploy format 'openvino'" in res.output


# -- compatibility report -------------------------------------------------------------------


def _hardswish_tflite(tmp_path: Path) -> Path:
    import torch

    from edgezoo.stages import torch_to_litert as tl

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.act = torch.nn.Hardswish()
            self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            return self.fc(self.pool(self.conv2(self.act(self.conv1(x)))).flatten(1))

    class Card:  # the fields the stage reads
        id = "hardswish-net"
        input = type("I", (), {"shape": (1, 3, 16, 16), "layout": "NCHW"})()
        inputs = (input,)

    torch.manual_seed(0)
    out = tmp_path / "hs.tflite"
    calib = np.random.default_rng(0).standard_normal((8, 3, 16, 16)).astype(np.float32)
    tl.quantize_pt2e(Net().eval(), Card(), out, [calib], "test")
    return out


def test_edgetpu_report_names_the_first_unsupported_operator(tmp_path):
    from edgezoo.pipeline import compat

    report = compat.report("tflite", _hardswish_tflite(tmp_path), accelerator="edgetpu")
    placements = [(o.op_type, o.placement) for o in report]
    hs = next(o for o in report if o.op_type == "HARD_SWISH")
    assert hs.placement == "CPU (Edge TPU cannot run it)" and "first operator" in hs.note
    # the first convolution is mapped, the one after the cut falls back to the CPU
    assert ("CONV_2D", "Edge TPU") in placements
    assert ("CONV_2D", "CPU (after the Edge TPU graph)") in placements
    # the Edge TPU table is data with its source
    from edgezoo.accelerators.edgetpu import edgetpu_table

    assert edgetpu_table()["source"].startswith("https://coral.ai/")


def test_litert_report_says_what_xnnpack_takes(tmp_path):
    from edgezoo.pipeline import compat

    report = compat.report("tflite", _hardswish_tflite(tmp_path))
    assert all(o.supported for o in report)
    placement = {o.op_type: o.placement for o in report}
    assert placement["CONV_2D"] == "CPU (XNNPACK)"
    # int8 hard-swish has no XNNPACK kernel: LiteRT runs it on its builtin kernel
    assert placement["HARD_SWISH"] == "CPU (builtin kernel)"


def test_check_command_on_coral_passes_for_digits():
    res = run_cli("check", "digits-cnn", "--target", "coral-edgetpu", "--json")
    data = json.loads(res.stdout)
    assert data["ok"] and data["accelerator"] == "edgetpu"
    assert all(o["placement"] != "unsupported" for o in data["operators"])


def test_check_command_fails_on_operator_the_runtime_lacks(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"), helper.make_node("Swizzle", ["r"], ["y"], domain="com.acme", name="head/swizzle")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)])
    model.ir_version = 8
    onnx.save(model, str(tmp_path / "m.onnx"))
    for target in ("generic-cpu", "intel-cpu"):
        res = run_cli("check", str(tmp_path / "m.onnx"), "--target", target, "--json", ok=None)
        assert res.exit_code == 4
        data = json.loads(res.stdout)
        bad = [o for o in data["operators"] if not o["supported"]]
        assert [o["op_type"] for o in bad] == ["Swizzle"], (target, bad)


def test_openvino_report_comes_from_query_model(tiny_onnx):
    from edgezoo.pipeline import compat

    report = compat.report("openvino", tiny_onnx)
    assert {o.op_type for o in report} >= {"Convolution"} and all(o.placement == "CPU" for o in report)


# -- cross-format bench ---------------------------------------------------------------------


def test_bench_writes_table_json_and_markdown(tmp_path):
    res = run_cli("bench", "digits-cnn", "--target", "raspberrypi", "--formats", "tflite,onnx", "--precisions", "int8",
                  "--weights", "pretrained", "--out", str(tmp_path), "--json")
    data = json.loads(res.stdout)
    rows = {(r["format"], r["precision"]): r for r in data["rows"]}
    assert set(rows) == {("tflite", "fp32"), ("tflite", "int8"), ("onnx", "fp32"), ("onnx", "int8")}
    for (fmt, prec), r in rows.items():
        assert r["size_bytes"] > 0 and r["p50_ms_1t"] > 0 and r["p50_ms_nt"] > 0 and r["build_s"] >= 0
        assert r["top1"] > 95
        if prec == "fp32":
            assert r["torch_agreement"] >= 99.5
    md = (tmp_path / "bench-digits-cnn-raspberrypi.md").read_text()
    assert "| tflite | litert | int8 |" in md
    assert json.loads((tmp_path / "bench-digits-cnn-raspberrypi.json").read_text())["rows"]


def test_bench_with_random_weights_reports_no_accuracy(tmp_path):
    """bench's default is random weights: its top-1 would be noise printed as an accuracy."""
    res = run_cli("bench", "digits-cnn", "--target", "generic-cpu", "--formats", "onnx", "--precisions", "int8", "--out", str(tmp_path), "--json")
    data = json.loads(res.stdout)
    assert data["weights"] == "random"
    assert all(r["top1"] is None for r in data["rows"]) and all(r["agreement"] > 0 for r in data["rows"])
    table = run_cli("bench", "digits-cnn", "--target", "generic-cpu", "--formats", "onnx", "--precisions", "int8", "--out", str(tmp_path))
    assert "| - |" in (tmp_path / "bench-digits-cnn-generic-cpu.md").read_text() and "weights: random" in table.output


@pytest.mark.skipif(os.environ.get("EDGEZOO_SKIP_VENV") == "1", reason="EDGEZOO_SKIP_VENV=1")
def test_tflite_runner_falls_back_to_tflite_runtime(digits_tflite_int8, tmp_path):
    """Older Pi images have tflite-runtime, not ai-edge-litert: run.py must work there."""
    bundle, _, _ = digits_tflite_int8
    py = venv_with(tmp_path, "numpy<2", "tflite-runtime")
    listed = installed(py)
    assert "ai-edge-litert" not in listed and "tflite-runtime" in listed
    _run(bundle, tmp_path, python=str(py), env={"PATH": os.environ["PATH"]})


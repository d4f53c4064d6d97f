"""Bad input: one line saying what to do, a documented non-zero exit, nothing half-written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tests.conftest import run_cli


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _assert_one_line(res, code: int, *fragments: str):
    assert res.exit_code == code, res.output
    assert "Traceback" not in res.output
    err_lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 1, res.output
    for f in fragments:
        assert f in err_lines[0], err_lines[0]


def test_existing_bundle_is_refused_without_force(digits_int8):
    bundle, archive, _ = digits_int8
    before = (bundle / "manifest.json").read_bytes()
    res = run_cli("export", "digits-cnn", "--target", "raspberrypi", "--format", "onnx", "--precision", "int8", "--out", str(bundle.parent), ok=None)
    _assert_one_line(res, 2, "already exists", "--force")
    assert (bundle / "manifest.json").read_bytes() == before


def test_force_replaces_bundle(tmp_path):
    args = ["export", "digits-cnn", "--target", "generic-cpu", "--precision", "fp32", "--out", str(tmp_path), "--json"]
    run_cli(*args)
    run_cli(*args, "--force")
    assert _leftovers(tmp_path) == ["digits-cnn-generic-cpu-fp32", "digits-cnn-generic-cpu-fp32.tar.gz"]


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--out", str(blocker / "sub"), ok=None)
    _assert_one_line(res, 2, "not writable", "--out")


def test_unsupported_precision_names_supported_ones(tmp_path):
    p = Path(__file__).parents[1] / "targets" / "generic-cpu.toml"
    board = tmp_path / "fp32only.toml"
    text = p.read_text().replace('id = "generic-cpu"', 'id = "fp32only"')
    text = text.replace('precisions = ["fp32", "fp16", "int8", "dynamic-int8"]\ndefault_precision = "int8"', 'precisions = ["fp32"]\ndefault_precision = "fp32"', 1)
    board.write_text(text)
    res = run_cli("export", "digits-cnn", "--target", str(board), "--precision", "int8", "--out", str(tmp_path / "o"), ok=None)
    _assert_one_line(res, 2, "does not support precision 'int8'", "fp32")
    assert not (tmp_path / "o").exists()


def test_weights_checksum_mismatch(tmp_path):
    bad = tmp_path / "weights.safetensors"
    bad.write_bytes(b"\0" * 1000)
    out = tmp_path / "out"
    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--weights", str(bad), "--out", str(out), ok=None)
    _assert_one_line(res, 5, "weights")
    assert _leftovers(out) == []


def test_missing_weights_file(tmp_path):
    res = run_cli("export", "resnet18", "--target", "generic-cpu", "--weights", str(tmp_path / "nope.pth"), "--out", str(tmp_path), ok=None)
    _assert_one_line(res, 2, "does not exist", "--weights random")


def test_offline_download_says_what_to_do(tmp_path, monkeypatch):
    # make the card's URL unreachable: a closed port on 127.0.0.1
    import socket

    from edgezoo.zoo import sources

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    real = sources.resolve_weights

    def unreachable(src, **kw):
        from dataclasses import replace

        return real(replace(src, url=f"http://127.0.0.1:{port}/w.pth"), **kw)

    monkeypatch.setattr(sources, "resolve_weights", unreachable)
    out = tmp_path / "out"
    res = run_cli("export", "mobilenet_v3_small", "--target", "generic-cpu", "--out", str(out), ok=None)
    _assert_one_line(res, 6, "cannot fetch weights", "--weights PATH", "--weights random")
    assert _leftovers(out) == []


def test_corrupt_onnx_file(tmp_path):
    f = tmp_path / "broken.onnx"
    f.write_bytes(b"this is not a protobuf at all" * 10)
    res = run_cli("export", str(f), "--target", "generic-cpu", "--precision", "fp32", "--out", str(tmp_path / "o"), ok=None)
    _assert_one_line(res, 2, "not a valid ONNX model")


def test_missing_model_file(tmp_path):
    res = run_cli("export", str(tmp_path / "absent.onnx"), "--target", "generic-cpu", "--out", str(tmp_path / "o"), ok=None)
    _assert_one_line(res, 2, "does not exist")


def test_input_shape_mismatch(tiny_onnx, tmp_path):
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--precision", "fp32", "--input-shape", "1x3x32x32", "--out", str(tmp_path / "o"), ok=None)
    _assert_one_line(res, 2, "does not match", "1x3x16x16")


def test_bad_shape_syntax(tiny_onnx, tmp_path):
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--input-shape", "big", "--out", str(tmp_path), ok=None)
    _assert_one_line(res, 2, "not a shape")


def test_int8_without_calibration_data(tiny_onnx, tmp_path):
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--precision", "int8", "--out", str(tmp_path / "o"), ok=None)
    _assert_one_line(res, 2, "calibration data", "--calib-data")


def test_calibration_data_of_wrong_shape(tiny_onnx, tmp_path):
    np.save(tmp_path / "cal.npy", np.zeros((4, 3, 8, 8), np.float32))
    out = tmp_path / "o"
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--precision", "int8", "--calib-data", str(tmp_path / "cal.npy"), "--out", str(out), ok=None)
    _assert_one_line(res, 2, "calibration data", "shape")
    assert _leftovers(out) == []


def test_over_budget_is_refused_unless_allowed(tmp_path):
    p = Path(__file__).parents[1] / "targets" / "generic-cpu.toml"
    board = tmp_path / "tiny.toml"
    board.write_text(p.read_text().replace('id = "generic-cpu"', 'id = "tiny"').replace("max_model_mb = 500.0", "max_model_mb = 0.05"))
    out = tmp_path / "o"
    res = run_cli("export", "digits-cnn", "--target", str(board), "--out", str(out), ok=None)
    _assert_one_line(res, 4, "allows 0.05 MB", "--allow-over-budget")
    assert _leftovers(out) == []
    res = run_cli("export", "digits-cnn", "--target", str(board), "--out", str(out), "--allow-over-budget", "--json")
    assert any("OVER budget" in v for v in json.loads(res.stdout)["report"]["verdicts"])


def test_weights_option_is_for_zoo_models(tiny_onnx, tmp_path):
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--weights", "random", "--out", str(tmp_path), ok=None)
    _assert_one_line(res, 2, "--weights random applies to zoo models")


def test_verify_of_missing_or_wrong_path(tmp_path):
    res = run_cli("verify", str(tmp_path / "nothing.tar.gz"), ok=None)
    _assert_one_line(res, 2, "no bundle")
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(os.urandom(100))
    res = run_cli("verify", str(junk), ok=None)
    assert res.exit_code == 5 and "Traceback" not in res.output


def test_operator_without_runtime_kernel_is_named_before_work(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Relu", ["x"], ["r"], name="relu"),
        helper.make_node("FancyActivation", ["r"], ["y"], domain="com.acme", name="block3/fancy"),
    ]
    graph = helper.make_graph(nodes, "custom", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.acme", 1)])
    model.ir_version = 8
    path = tmp_path / "custom.onnx"
    onnx.save(model, str(path))
    out = tmp_path / "o"
    res = run_cli("export", str(path), "--target", "generic-cpu", "--precision", "fp32", "--out", str(out), ok=None)
    _assert_one_line(res, 2, "com.acme::FancyActivation", "block3/fancy", "generic-cpu")
    assert _leftovers(out) == []


def test_report_lists_operators_from_the_runtime_registry(digits_int8):
    bundle, _, _ = digits_int8
    rep = json.loads((bundle / "report.json").read_text())
    ops = {o["op_type"]: o for o in rep["operators"]}
    assert ops["Conv"]["count"] == 3 and ops["Conv"]["supported"] and ops["Conv"]["placement"] == "CPU"


def test_two_exports_to_the_same_out_never_both_succeed(tmp_path):
    """Without --force the second of two concurrent exports must not replace the first:
    the existence check is repeated at the final rename (one succeeds, the other exits 2)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "edgezoo.cli.main", "export", "digits-cnn", "--target", "generic-cpu", "--precision", "fp32",
           "--out", str(tmp_path)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, err in results if rc == 2)
    assert "already exists" in loser or "appeared while this export ran" in loser
    assert sorted(p.name for p in tmp_path.iterdir()) == ["digits-cnn-generic-cpu-fp32", "digits-cnn-generic-cpu-fp32.tar.gz"]
    from edgezoo.bundle.verify import verify

    assert verify(tmp_path / "digits-cnn-generic-cpu-fp32").ok


def test_bundle_runner_refuses_nan_input(digits_int8, tmp_path):
    import subprocess
    import sys

    import numpy as np

    bundle, _, _ = digits_int8
    x = np.full((8, 8), 5.0, np.float32)
    x[2, 3] = np.nan
    np.save(tmp_path / "nan.npy", x)
    out = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / "nan.npy")], capture_output=True, text=True)
    assert out.returncode == 2 and "NaN" in out.stderr and not out.stdout


def test_constant_calibration_data_is_refused_and_no_empty_out_is_left(tiny_onnx, tmp_path):
    import numpy as np

    np.save(tmp_path / "flat.npy", np.zeros((40, 3, 16, 16), np.float32))
    out = tmp_path / "new" / "dist"
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--calib-data", str(tmp_path / "flat.npy"), "--out", str(out), ok=None)
    _assert_one_line(res, 2, "is the same", "cannot be calibrated")
    assert not (tmp_path / "new").exists()  # the folders the failed run created are gone


def test_collapsed_int8_fidelity_fails_the_budget(tiny_onnx, tmp_path):
    """Calibrated on samples a thousand times smaller than the ones it is judged on (the
    held-out end of the file), int8 saturates: exit 4 and nothing written; with
    --allow-over-budget the bundle says COLLAPSED."""
    import json

    import numpy as np

    x = np.random.default_rng(0).standard_normal((64, 3, 16, 16)).astype(np.float32)
    x[:48] *= 1e-3
    np.save(tmp_path / "skewed.npy", x)
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--calib-data", str(tmp_path / "skewed.npy"),
                  "--out", str(tmp_path / "o"), ok=None)
    _assert_one_line(res, 4, "fidelity collapsed", "--allow-over-budget")
    assert not (tmp_path / "o").exists()
    res = run_cli("export", str(tiny_onnx), "--target", "generic-cpu", "--calib-data", str(tmp_path / "skewed.npy"),
                  "--out", str(tmp_path / "o"), "--allow-over-budget", "--json")
    rep = json.loads(res.stdout)["report"]
    assert rep["variants"]["int8"]["quality"]["sqnr_db"] < 3 and any("COLLAPSED" in v for v in rep["verdicts"])


def test_calibration_sample_shortfall_is_said(tmp_path):
    import json

    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--calibration-samples", "100000", "--out", str(tmp_path), "--json")
    rep = json.loads(res.stdout)["report"]
    assert any("--calibration-samples 100000 asked, but only 200" in w for w in rep["warnings"])


def test_calib_data_for_a_zoo_model_is_refused(tmp_path):
    import numpy as np

    np.save(tmp_path / "c.npy", np.zeros((4, 1, 8, 8), np.float32))
    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--calib-data", str(tmp_path / "c.npy"), "--out", str(tmp_path), ok=None)
    _assert_one_line(res, 2, "apply to your own models")

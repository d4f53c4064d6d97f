"""Bring your own model: the corpus of third-party-style ONNX files (tests/corpus.py) goes
to every Linux target's default format through the CLI, and each bundle's runner runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgezoo import registry
from edgezoo.bundle.verify import verify
from tests import corpus
from tests.conftest import run_cli

NAMES = ["ts_opset9_dynamic", "ts_opset11_constants", "two_in_two_out", "dynamo", "if_on_shape", "loop", "skl_mlp"]
# every Linux format: onnx (generic-cpu), openvino (intel-cpu), tflite and pte via the bridge (raspberrypi)
# (ExecuTorch lowering takes about a minute per model on 2 cores: that column runs with the slow tests)
TARGETS = ["generic-cpu", "intel-cpu", "raspberrypi", pytest.param("raspberrypi:pte", marks=pytest.mark.slow)]


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    return corpus.build(tmp_path_factory.mktemp("corpus"))


def _export(entry, target, out: Path, *extra: str):
    res = run_cli("export", str(entry.path), "--target", target, "--calib-data", str(entry.calib), *entry.shape_flags,
                  "--out", str(out), "--json", *extra, ok=None)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _samples(entry, n: int = 3):
    """Inputs for the runner (the held-out end of the calibration file) and the source
    model's outputs on them from onnxruntime."""
    import onnxruntime as ort

    if entry.calib.suffix == ".npz":
        with np.load(entry.calib) as d:
            feeds = {k: d[k][-n:] for k in d.files}
    else:
        sess_in = ort.InferenceSession(str(entry.path)).get_inputs()[0].name
        feeds = {sess_in: np.load(entry.calib)[-n:]}
    sess = ort.InferenceSession(str(entry.path))
    outs = [sess.run(None, {k: v[i : i + 1] for k, v in feeds.items()}) for i in range(n)]
    return feeds, outs


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", NAMES)
def test_corpus_model_exports_and_its_runner_runs(models, name, target, tmp_path):
    entry = models[name]
    target, _, fmt = target.partition(":")
    if name == "loop" and fmt == "pte":
        # ExecuTorch's XNNPACK quantizer annotates no operator of the unrolled loop (MatMul, Tanh):
        # an "int8" bundle would be the fp32 model, so the export refuses and says what to do
        res = run_cli("export", str(entry.path), "--target", target, "--format", fmt, "--calib-data", str(entry.calib),
                      "--out", str(tmp_path), ok=None)
        assert res.exit_code == 3 and "left every operator in float" in res.output and "--precision fp32" in res.output
        assert not any(tmp_path.iterdir())
        run_cli("export", str(entry.path), "--target", target, "--format", fmt, "--precision", "fp32", "--out", str(tmp_path))
        return
    data = _export(entry, target, tmp_path, *(["--format", fmt] if fmt else []))
    bundle = Path(data["bundle"])
    assert verify(bundle).ok
    rep = data["report"]
    n_cal = len(np.load(entry.calib)[np.load(entry.calib).files[0]] if entry.calib.suffix == ".npz" else np.load(entry.calib))
    # fidelity of int8 is measured on samples held out of calibration, and the report says so
    assert rep["variants"]["int8"]["quality"]["samples"] == 10 and n_cal == 40
    assert "held out of calibration" in rep["eval_data"]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["calibration"]["samples"] == 30
    # the fp32 export computes what the user's file computes (checked against onnxruntime on the source)
    assert rep["export_check"]["max_abs_diff"] < 1e-4
    # int8 really quantized (not identical to fp32), and poor fidelity is said, never hidden
    sqnr = rep["variants"]["int8"]["quality"]["sqnr_db"]
    assert sqnr > 5
    assert (sqnr < 10) == any("fidelity is poor" in w for w in rep["warnings"])
    stages = [s["stage"] for s in manifest["lineage"]]
    if entry.shape_flags:
        assert "fix-input-shapes" in stages
    if name == "ts_opset9_dynamic":  # int8 needs opset 13: upgraded, and the lineage says from what
        assert any(s["stage"] == "upgrade-opset" and s["params"] == {"from": 9, "to": 13} for s in manifest["lineage"])
    if target == "raspberrypi":
        assert "onnx-to-torch" in stages
    # the bundle's own runner, on samples, agrees with the source model in onnxruntime
    feeds, ref = _samples(entry)
    top_matches = 0
    for i in range(len(ref)):
        sample = tmp_path / f"x{i}.npz"
        np.savez(sample, **{k: v[i] for k, v in feeds.items()})
        out_file = tmp_path / f"y{i}.npz"
        run = subprocess.run([sys.executable, str(bundle / "run.py"), str(sample), "--json"]
                             + (["--save", str(out_file)] if manifest["model"]["task"] == "generic" else []),
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        printed = json.loads(run.stdout)
        if manifest["model"]["task"] == "generic":
            # the runner prints what the bundle's model computes (edgezoo's own session on the same
            # sample), which stays close to the source model (fidelity itself is judged in the report)
            session = registry.runtime(manifest["runtime"]["name"]).open(bundle / manifest["model_file"], 1,
                                                                        manifest["runtime"].get("config", {}))
            direct = session.run([feeds[s["name"]][i : i + 1] for s in manifest["inputs"]])
            with np.load(out_file) as got:
                for k, o in enumerate(manifest["outputs"]):
                    np.testing.assert_allclose(got[o["name"]], direct[k], rtol=1e-5, atol=1e-6)
                    r = ref[i][k].reshape(-1)
                    g = got[o["name"]].reshape(-1)
                    cos = float(r @ g / (np.linalg.norm(r) * np.linalg.norm(g) + 1e-12))
                    assert cos > 0.8, (o["name"], cos)
        else:
            top_matches += printed["top"][0]["index"] == int(np.argmax(ref[i][0]))
    if manifest["model"]["task"] != "generic":  # int8 may flip a close call, not most of them
        assert top_matches >= 2


def test_dynamic_dimension_without_shape_names_input_and_dimension(models):
    res = run_cli("export", str(models["ts_opset9_dynamic"].path), "--target", "generic-cpu", "--precision", "fp32", ok=None)
    assert res.exit_code == 2
    assert "input 'image' has dynamic dimension 0" in res.output and "--input-shape" in res.output
    assert "Traceback" not in res.output


def test_input_shape_rank_mismatch_is_refused(models):
    res = run_cli("export", str(models["ts_opset9_dynamic"].path), "--target", "generic-cpu", "--precision", "fp32",
                  "--input-shape", "1x3x16", ok=None)
    assert res.exit_code == 2 and "rank 3" in res.output and "rank 4" in res.output


def test_multi_input_needs_named_shapes_and_keyed_data(models, tmp_path):
    e = models["two_in_two_out"]
    res = run_cli("export", str(e.path), "--target", "generic-cpu", "--input-shape", "1x3x16x16", "--calib-data", str(e.calib), ok=None)
    assert res.exit_code == 2 and "has 2 inputs" in res.output
    np.save(tmp_path / "one.npy", np.zeros((8, 3, 16, 16), np.float32))
    res = run_cli("export", str(e.path), "--target", "generic-cpu", *e.shape_flags, "--calib-data", str(tmp_path / "one.npy"),
                  "--out", str(tmp_path), ok=None)
    assert res.exit_code == 2 and "is one array; the model has 2 inputs" in res.output
    np.savez(tmp_path / "wrong.npz", image=np.zeros((8, 3, 16, 16), np.float32), other=np.zeros((8, 5), np.float32))
    res = run_cli("export", str(e.path), "--target", "generic-cpu", *e.shape_flags, "--calib-data", str(tmp_path / "wrong.npz"),
                  "--out", str(tmp_path), ok=None)
    assert res.exit_code == 2 and "no array for input 'extra'" in res.output
    assert not list(tmp_path.glob("two_in_two_out*"))


def test_non_finite_calibration_data_is_refused_before_quantizing(models, tmp_path):
    e = models["ts_opset9_dynamic"]
    x = np.load(e.calib)
    x[3, 0, 0, 0] = np.nan
    np.save(tmp_path / "nan.npy", x)
    res = run_cli("export", str(e.path), "--target", "generic-cpu", *e.shape_flags, "--calib-data", str(tmp_path / "nan.npy"),
                  "--out", str(tmp_path / "o"), ok=None)
    assert res.exit_code == 2 and "NaN or infinite" in res.output and "sample 3" in res.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_an_onnx_file_failing_the_checker_says_what(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Relu", ["x"], ["y"])], "dup",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "bad.onnx")
    res = run_cli("export", str(tmp_path / "bad.onnx"), "--target", "generic-cpu", "--precision", "fp32", ok=None)
    assert res.exit_code == 2 and "fails onnx.checker" in res.output and "Traceback" not in res.output


def test_check_never_refuses_a_model_onnxruntime_loads(models, tmp_path):
    """Each corpus model (and a scikit-learn pipeline in the ai.onnx.ml domain) is loaded by
    onnxruntime itself, then `check` must report every operator runnable."""
    import onnxruntime as ort

    paths = [(e.path, e.shape_flags) for e in models.values()] + [(corpus.build_ml_domain(tmp_path), ["--input-shape", "1x64"])]
    for path, flags in paths:
        ort.InferenceSession(str(path))  # raises if onnxruntime cannot load it
        res = run_cli("check", str(path), "--target", "generic-cpu", *flags, "--json", ok=None)
        assert res.exit_code == 0, (path.name, res.output)
        data = json.loads(res.stdout)
        assert data["ok"], (path.name, [o for o in data["operators"] if not o["supported"]])


def test_an_operator_the_bridge_lacks_is_named_with_the_formats_that_work(tmp_path):
    path = corpus.build_ml_domain(tmp_path)
    np.save(tmp_path / "cal.npy", np.random.default_rng(0).random((40, 64)).astype(np.float32) * 16)
    res = run_cli("export", str(path), "--target", "raspberrypi", "--input-shape", "1x64", "--calib-data", str(tmp_path / "cal.npy"),
                  "--out", str(tmp_path / "o"), ok=None)
    assert res.exit_code == 2, res.output
    assert "cannot convert operator" in res.output and "Scaler" in res.output and "--format onnx" in res.output
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_inspect_reports_contract_and_per_target_verdicts(models):
    res = run_cli("inspect", str(models["ts_opset9_dynamic"].path), "--input-shape", "1x3x16x16", "--targets", "generic-cpu,coral-edgetpu",
                  "--json")
    data = json.loads(res.stdout)
    assert data["opset"] == 9 and data["producer"].startswith("pytorch")
    assert data["inputs"][0]["shape"] == ["batch", 3, "height", "width"]
    assert data["operators"]["Conv"] == 2
    by_target = {r["target"]: r for r in data["targets"]}
    assert by_target["generic-cpu"]["ok"] and by_target["generic-cpu"]["format"] == "onnx"
    assert by_target["coral-edgetpu"]["format"] == "tflite"
    res = run_cli("inspect", str(models["skl_mlp"].path), "--targets", "none")
    assert "skl2onnx" in res.output and "X[0]" in res.output


def test_card_init_then_export_with_the_edited_card(models, tmp_path):
    e = models["ts_opset9_dynamic"]
    res = run_cli("card", "init", str(e.path), "--input-shape", "1x3x16x16", "--task", "generic")
    text = res.stdout.replace('license = "NOASSERTION"', 'license = "MIT"').replace('name = "ts_opset9_dynamic.onnx"', 'name = "My detector"')
    (tmp_path / "card.toml").write_text(text)
    data = json.loads(run_cli("export", str(e.path), "--card", str(tmp_path / "card.toml"), "--target", "generic-cpu", "--precision", "fp32",
                              "--input-shape", "1x3x16x16", "--out", str(tmp_path / "o"), "--json").stdout)
    manifest = json.loads((Path(data["bundle"]) / "manifest.json").read_text())
    assert manifest["model"]["license"] == "MIT" and manifest["model"]["name"] == "My detector" and manifest["model"]["task"] == "generic"
    # a card made for another model is refused
    res = run_cli("export", str(models["dynamo"].path), "--card", str(tmp_path / "card.toml"), "--target", "generic-cpu",
                  "--precision", "fp32", "--out", str(tmp_path / "o2"), ok=None)
    assert res.exit_code == 2 and "another model file" in res.output


def test_eval_data_with_labels_gives_task_accuracy(tmp_path):
    """A classifier trained here on scikit-learn's digits; --eval-data with labels: the
    report's fp32 top-1 is the accuracy onnxruntime gives on the same samples."""
    import onnxruntime as ort
    import torch
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x.reshape(-1, 1, 8, 8) / 16.0).astype(np.float32)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(512, 10))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    xt, yt = torch.from_numpy(x[:1000]), torch.from_numpy(y[:1000])
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()
    model.eval()
    torch.onnx.export(model, (xt[:1],), str(tmp_path / "digits.onnx"), input_names=["pixels"], dynamo=False, opset_version=13)
    np.save(tmp_path / "cal.npy", x[1000:1100])
    np.savez(tmp_path / "val.npz", pixels=x[1100:1400], labels=y[1100:1400])
    data = json.loads(run_cli("export", str(tmp_path / "digits.onnx"), "--target", "generic-cpu", "--calib-data", str(tmp_path / "cal.npy"),
                              "--eval-data", str(tmp_path / "val.npz"), "--out", str(tmp_path / "o"), "--json").stdout)
    rep = data["report"]
    sess = ort.InferenceSession(str(tmp_path / "digits.onnx"))
    expected = np.mean([np.argmax(sess.run(None, {"pixels": x[i : i + 1]})[0]) == y[i] for i in range(1100, 1400)]) * 100
    assert rep["variants"]["fp32"]["quality"]["metrics"]["top1"] == pytest.approx(expected)
    assert rep["variants"]["int8"]["quality"]["samples"] == 300
    assert rep["eval_data"].startswith("300 samples of val.npz") and "labelled" in rep["eval_data"]
    manifest = json.loads((Path(data["bundle"]) / "manifest.json").read_text())
    assert manifest["calibration"]["samples"] == 100


def test_eval_data_with_reference_outputs(models, tmp_path):
    """--eval-data with one array per output name: each variant is also compared with the
    user's own expected outputs (here onnxruntime's, so fp32 agrees fully)."""
    import onnxruntime as ort

    e = models["two_in_two_out"]
    with np.load(e.calib) as d:
        image, extra = d["image"][:12], d["extra"][:12]
    sess = ort.InferenceSession(str(e.path))
    outs = [sess.run(None, {"image": image[i : i + 1], "extra": extra[i : i + 1]}) for i in range(12)]
    np.savez(tmp_path / "val.npz", image=image, extra=extra, scores=np.concatenate([o[0] for o in outs]),
             features=np.concatenate([o[1] for o in outs]))
    data = _export(e, "generic-cpu", tmp_path / "o", "--eval-data", str(tmp_path / "val.npz"))
    rep = data["report"]
    assert rep["variants"]["fp32"]["quality"]["metrics"]["reference_agreement"] == 100.0
    assert rep["variants"]["int8"]["quality"]["samples"] == 12
    assert "reference_sqnr_db" in rep["variants"]["int8"]["quality"]["metrics"]
    # the calibration file is used whole when evaluation data is given
    assert json.loads((Path(data["bundle"]) / "manifest.json").read_text())["calibration"]["samples"] == 40

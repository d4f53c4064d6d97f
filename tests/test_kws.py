"""Keyword spotting trained here: exported for a microcontroller, judged on voices it never
heard (accuracy, FRR, FAR), and the bundle's runner hearing a keyword in a WAV file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from .conftest import _export_once

pytestmark = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("flite")),
                                reason="the speech data needs espeak-ng and flite (apt-get install espeak-ng flite)")


@pytest.fixture(scope="module")
def kws_nrf(tmp_path_factory):
    return _export_once(tmp_path_factory, "kws-dscnn-synth", "--target", "nrf52840")


def _wav(path: Path, audio: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_report_and_firmware(kws_nrf):
    bundle = kws_nrf[0]
    report = json.loads((bundle / "report.json").read_text())
    m = {k: v["quality"]["metrics"] for k, v in report["variants"].items()}
    assert m["fp32"]["accuracy"] > 60 and abs(m["fp32"]["accuracy"] - m["int8"]["accuracy"]) <= 2, m
    assert 0 <= m["int8"]["far"] <= 100 and 0 <= m["int8"]["frr"] <= 100
    assert (bundle / "firmware").is_dir()


def test_runner_hears_a_keyword(kws_nrf, tmp_path):
    from edgezoo.zoo.audio import speak

    bundle = kws_nrf[0]
    word = speak("yes", "en-029", 150, 50, tmp_path)  # a voice the model never heard in training
    audio = np.zeros(32000, np.float32)
    audio[8000 : 8000 + len(word)] = 0.6 * word[: 24000]
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(_wav(tmp_path / "yes.wav", audio)), "--json", "--all"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    windows = json.loads(res.stdout)["windows"]
    assert len(windows) == 5  # 2 s scanned in 1 s windows every 0.25 s
    assert "yes" in [w["label"] for w in windows]
    quiet = _wav(tmp_path / "quiet.wav", np.zeros(16000, np.float32))
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(quiet)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "no keyword" in res.stdout
    bad = _wav(tmp_path / "8k.wav", np.zeros(8000, np.float32), rate=8000)
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(bad)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "16000 Hz mono" in res.stderr


def test_mlperf_mfcc_front_end_matches_tensorflow():
    """The runner's ``mfcc10`` front end computes what MLPerf Tiny's tf.signal pipeline computes
    (tests/data/mfcc10-tf-reference.npz, written by tools/mfcc_reference.py with TensorFlow)."""
    from edgezoo.tasks.run_kws import features

    ref = np.load(Path(__file__).parent / "data" / "mfcc10-tf-reference.npz", allow_pickle=False)
    for audio, expected in zip(ref["audio"], ref["mfcc10"]):
        got = features(audio / 32767.0, "mfcc10")[0]
        assert got.shape == expected.shape == (49, 10)
        assert np.abs(got - expected).max() < 1e-3, np.abs(got - expected).max()
    # and it is not the log-mel front end by another name
    assert features(ref["audio"][0] / 32767.0).shape == (1, 49, 40)


def test_front_end_belongs_to_audio_cards():
    from edgezoo.schemas.card import Preprocess

    Preprocess(kind="audio", scale=1.0, mean=(0.0,), std=(1.0,), raw_range=(-1.0, 1.0), frontend="mfcc10").validate()
    for kind, fe in (("image", "mfcc10"), ("audio", "mfcc13")):
        with pytest.raises(ValueError, match="frontend"):
            Preprocess(kind=kind, scale=1.0, mean=(0.0,), std=(1.0,), raw_range=(-1.0, 1.0), resize=8, crop=8, frontend=fe).validate()


@pytest.fixture(scope="module")
def kws_mlperf(tmp_path_factory):
    return _export_once(tmp_path_factory, "kws-dscnn-mlperf", "--target", "nrf52840")


def test_mlperf_reference_graph_to_firmware(kws_mlperf, tmp_path):
    from edgezoo.zoo.audio import speak

    bundle = kws_mlperf[0]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["preprocess"]["frontend"] == "mfcc10"
    report = json.loads((bundle / "report.json").read_text())
    m = {k: v["quality"]["metrics"] for k, v in report["variants"].items()}
    assert m["fp32"]["accuracy"] > 55 and abs(m["fp32"]["accuracy"] - m["int8"]["accuracy"]) <= 2, m
    assert (bundle / "firmware" / "model_data.c").is_file()
    assert "2,656,768" in (bundle / "MODEL_CARD.md").read_text()  # the MLPerf Tiny reference's MACs
    word = speak("no", "en-029", 150, 50, tmp_path)  # a voice never heard in training
    audio = np.zeros(32000, np.float32)
    audio[8000 : 8000 + len(word)] = 0.6 * word[:24000]
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(_wav(tmp_path / "no.wav", audio)), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert [w["label"] for w in json.loads(res.stdout)["windows"]][:1] == ["no"]
    # digital silence: the reference divides each window by its peak, trained here not to hear words in it
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(_wav(tmp_path / "quiet.wav", np.zeros(24000, np.float32)))],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "no keyword" in res.stdout

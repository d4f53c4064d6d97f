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

"""Voice activity (silero VAD, weights from the silero-vad wheel): exported through the CLI,
evaluated by streaming synthesised speech clip by clip, and the bundle's runner printing the
speech segments of a WAV file; bad audio refused in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from .conftest import _export_once, needs_pulled, run_cli

pytestmark = [
    needs_pulled("vad-silero"),
    pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("flite")),
                       reason="the speech data needs espeak-ng and flite (apt-get install espeak-ng flite)"),
]


@pytest.fixture(scope="module")
def vad_bundle(tmp_path_factory):
    return _export_once(tmp_path_factory, "vad-silero", "--target", "generic-cpu")


def _wav(path: Path, audio: np.ndarray, rate: int = 16000, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(np.repeat(audio, channels), -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_card_recommends_fp32_and_the_report_has_segment_f1(vad_bundle):
    bundle, archive, res = vad_bundle
    assert "recommends fp32" in res.stderr
    report = json.loads((bundle / "report.json").read_text())
    m = report["variants"]["fp32"]["quality"]["metrics"]
    assert report["precision"] == "fp32" and report["task"] == "voice-activity"
    assert m["segment_f1"] > 60 and m["chunk_accuracy"] > 85, m
    assert report["export_check"]["agreement"] >= 99.5  # streamed fp32 ONNX == streamed PyTorch
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["model"]["weights_source"].startswith("pypi silero-vad==6.2.3")
    assert [i["name"] for i in manifest["inputs"]] == ["audio", "state"]
    run_cli("verify", str(archive))


def test_runner_prints_the_speech_segments(vad_bundle, tmp_path):
    from edgezoo.zoo.audio import make_clips

    bundle = vad_bundle[0]
    audio, truth, _ = make_clips(1, 2026)
    wav = _wav(tmp_path / "speech.wav", audio[0])
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(wav), "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    segments = json.loads(res.stdout)["segments"]
    assert segments
    speech = np.flatnonzero(truth[0]) / 16000
    first, last = speech.min(), speech.max()
    assert segments[0]["start_s"] < first + 0.3 and segments[-1]["end_s"] > last - 0.3, (segments, first, last)
    silence = _wav(tmp_path / "quiet.wav", np.zeros(16000 * 2, np.float32))
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(silence)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "no speech" in res.stdout


@pytest.mark.parametrize("rate,channels,expect", [(44100, 1, "44100 Hz; this model takes 16000 Hz"), (16000, 2, "2 channels")])
def test_runner_refuses_audio_it_cannot_read(vad_bundle, tmp_path, rate, channels, expect):
    wav = _wav(tmp_path / "bad.wav", np.zeros(rate, np.float32), rate=rate, channels=channels)
    res = subprocess.run([sys.executable, str(vad_bundle[0] / "run.py"), str(wav)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and expect in res.stderr and "Traceback" not in res.stderr


def test_int8_is_measured_and_judged_in_litert(tmp_path):
    """int8 on request: built with the card's percentile calibration, streamed in LiteRT, and
    either within the budget or refused with exit 4 (never shipped silently)."""
    out = tmp_path / "o"
    res = run_cli("export", "vad-silero", "--target", "raspberrypi", "--precision", "int8", "--out", str(out), "--json", ok=None)
    assert res.exit_code in (0, 4), res.output
    if res.exit_code == 4:
        assert "segment_f1 points against fp32" in res.output and not out.exists()
    else:
        report = json.loads(res.stdout)["report"]
        assert report["variants"]["int8"]["runtime"] == "litert"
        assert "segment_f1" in report["variants"]["int8"]["quality"]["metrics"]

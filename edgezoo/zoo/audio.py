"""Speech made here, with the truth known by construction: sentences spoken by Debian's
``espeak-ng`` and ``flite`` (many voices, speeds and pitches), placed at random times in
noise at random signal-to-noise ratios, at 16 kHz mono. The real recordings in Debian's
``alsa-utils`` sounds (/usr/share/sounds/alsa, people saying "front left" and so on) are
mixed in the same way when present.

Clips are cached in ``$EDGEZOO_CACHE/data`` keyed by the synthesisers' versions and the
seed; the truth of every 32 ms chunk (speech or not) comes from the clean utterance's own
energy, so it does not depend on any model.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from edgezoo.errors import UsageError

RATE = 16000
SENTENCES = (
    "turn the kitchen lights off please", "what is the weather like tomorrow morning", "set a timer for ten minutes",
    "the quick brown fox jumps over the lazy dog", "call my sister when you get home", "open the garage door",
    "play some quiet music in the living room", "how far is it to the nearest station", "remind me to buy milk",
    "the meeting moved to half past three", "can you hear me now", "stop the recording", "read me the last message",
    "it is going to rain this afternoon", "switch the heating to twenty degrees", "where did I leave my keys",
    "the train to the city leaves at seven", "please lock the front door", "start the washing machine",
    "that was the best concert of the year", "send the report before lunch", "the battery is almost empty",
    "turn up the volume a little", "what time does the shop close", "a cup of tea would be lovely",
    "the children are playing in the garden", "next stop is the central library", "check the tyre pressure",
)
ESPEAK_VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
FLITE_VOICES = ("kal16", "awb", "rms", "slt")
ALSA_SOUNDS = Path("/usr/share/sounds/alsa")
CLIP_S = 5.0
CHUNK = 512


def synthesisers() -> dict[str, str]:
    """The available synthesisers and their versions (the cache key)."""
    found = {}
    for tool, flag in (("espeak-ng", "--version"), ("flite", "--version")):
        if shutil.which(tool):
            out = subprocess.run([tool, flag], capture_output=True, text=True, timeout=30)
            found[tool] = (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr) else "unknown"
    return found


def require_synthesisers() -> dict[str, str]:
    found = synthesisers()
    if set(found) != {"espeak-ng", "flite"}:
        missing = sorted({"espeak-ng", "flite"} - set(found))
        raise UsageError(f"the synthesised speech data needs {' and '.join(missing)}, which are not installed",
                         hint="install them: apt-get install espeak-ng flite (Debian/Ubuntu), then run again")
    return found


def read_wav_any(path: Path) -> np.ndarray:
    """Mono float32 at 16 kHz from a 16-bit PCM WAV of any rate (resampled polyphase)."""
    from math import gcd

    from edgezoo.errors import require

    resample_poly = require("scipy.signal", package="scipy", extra="torch", purpose="resampling speech").resample_poly

    with wave.open(str(path), "rb") as w:
        rate, ch, n = w.getframerate(), w.getnchannels(), w.getnframes()
        x = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float32) / 32768.0
    x = x.reshape(-1, ch).mean(axis=1)
    if rate != RATE:
        g = gcd(rate, RATE)
        x = resample_poly(x, RATE // g, rate // g).astype(np.float32)
    return x


def write_wav(path: Path, audio: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes())


def speak(text: str, voice: str, speed: int, pitch: int, tmp: Path) -> np.ndarray:
    out = tmp / "u.wav"
    if voice in FLITE_VOICES:
        cmd = ["flite", "-voice", voice, "-t", text, "-o", str(out)]
        if speed != 160:
            cmd[1:1] = ["--setf", f"duration_stretch={160 / speed:.2f}"]
    else:
        cmd = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), text]
    subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    x = read_wav_any(out)
    return x / max(1e-6, float(np.max(np.abs(x))))


def _speech_mask(x: np.ndarray) -> np.ndarray:
    """Per-sample truth from a clean utterance: 10 ms frames within 35 dB of its loudest."""
    frame = RATE // 100
    n = len(x) // frame
    energy = np.array([np.mean(x[i * frame : (i + 1) * frame] ** 2) for i in range(n)]) + 1e-12
    active = 10 * np.log10(energy / energy.max()) > -35
    mask = np.zeros(len(x), bool)
    for i in np.flatnonzero(active):
        mask[i * frame : (i + 1) * frame] = True
    return mask


def make_clips(count: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``count`` clips of CLIP_S seconds: (audio N x samples, truth N x samples, descriptions)."""
    rng = np.random.default_rng(seed)
    samples = int(CLIP_S * RATE)
    audio = np.zeros((count, samples), np.float32)
    truth = np.zeros((count, samples), bool)
    notes = []
    real = sorted(p for p in ALSA_SOUNDS.glob("*.wav") if p.name != "Noise.wav") if ALSA_SOUNDS.is_dir() else []
    with tempfile.TemporaryDirectory(prefix="edgezoo-speech-") as tmp:
        for c in range(count):
            t = float(rng.uniform(0.2, 1.2))
            desc = []
            for _ in range(int(rng.integers(1, 3))):
                if real and rng.random() < 0.2:
                    src = real[int(rng.integers(len(real)))]
                    u = read_wav_any(src)
                    u = u / max(1e-6, float(np.max(np.abs(u))))
                    what = f"alsa:{src.stem}"
                else:
                    voice = (ESPEAK_VOICES + FLITE_VOICES)[int(rng.integers(len(ESPEAK_VOICES) + len(FLITE_VOICES)))]
                    speed = int(rng.choice([130, 160, 190]))
                    pitch = int(rng.choice([30, 50, 70]))
                    text = SENTENCES[int(rng.integers(len(SENTENCES)))]
                    u = speak(text, voice, speed, pitch, Path(tmp))
                    what = f"{voice}@{speed}:{text}"
                start = int(t * RATE)
                end = min(samples, start + len(u))
                if end - start < RATE // 4:
                    break
                gain = float(rng.uniform(0.3, 0.9))
                audio[c, start:end] += gain * u[: end - start]
                truth[c, start:end] |= _speech_mask(u[: end - start])
                desc.append(f"{what} at {t:.2f}s")
                t = (end / RATE) + float(rng.uniform(0.6, 1.5))
                if t > CLIP_S - 0.8:
                    break
            speech_rms = float(np.sqrt(np.mean(audio[c][truth[c]] ** 2))) if truth[c].any() else 0.1
            snr_db = float(rng.uniform(5, 25))
            noise = rng.standard_normal(samples).astype(np.float32)
            if rng.random() < 0.5:  # brown-ish noise: integrated white noise, high-passed by the mean
                noise = np.cumsum(noise)
                noise -= np.convolve(noise, np.ones(801) / 801, mode="same")
            noise *= speech_rms / (10 ** (snr_db / 20)) / max(1e-9, float(np.sqrt(np.mean(noise ** 2))))
            audio[c] = np.clip(audio[c] + noise, -1, 1)
            notes.append(f"clip {c}: SNR {snr_db:.0f} dB; " + "; ".join(desc))
    return audio, truth, notes


def load_clips(split: str) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The cached clips of a split (made on first use)."""
    from edgezoo.zoo.sources import cache_subdir

    count, seed = {"calib": (8, 11), "eval": (40, 12)}[split]
    tools = require_synthesisers()
    key = hashlib.sha256(repr((sorted(tools.items()), count, seed, SENTENCES, CLIP_S, "v1")).encode()).hexdigest()[:16]
    path = cache_subdir("data") / f"speech-synth-16k-{split}-{key}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return z["audio"], z["truth"], [str(s) for s in z["notes"]]
    audio, truth, notes = make_clips(count, seed)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as fh:
        np.savez_compressed(fh, audio=audio, truth=truth, notes=np.array(notes))
    Path(fh.name).replace(path)
    return audio, truth, notes

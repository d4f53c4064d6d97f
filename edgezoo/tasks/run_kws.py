"""The keyword-spotting part of a bundle's run.py (everything below the marker is embedded).
The front end (``features``) and the decision (``decide``) are the code edgezoo's training
recipe, evaluation and this runner share, so a report measures what the runner prints."""

import numpy as np

from edgezoo.bundle.runner import read_wav

# --- run.py ---
# Task: keyword spotting. Reads a 16 kHz mono WAV, computes log-mel features (numpy only),
# and prints the keyword heard in each second (one window, or a sliding window over a
# longer recording).
KWS_RATE = 16000
WINDOW = 480  # 30 ms
HOP = 320  # 20 ms
N_FFT = 512
N_MELS = 40
FRAMES = 49  # one second
SCAN_HOP_S = 0.25
MIN_SCORE = 0.6  # a keyword is reported when its probability reaches this


def _mel_filters():
    def hz2mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    def mel2hz(m):
        return 700.0 * (10 ** (m / 2595.0) - 1.0)

    edges = mel2hz(np.linspace(hz2mel(60.0), hz2mel(7600.0), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1.0 / KWS_RATE)
    fb = np.zeros((N_MELS, len(bins)), np.float64)
    for i in range(N_MELS):
        lo, mid, hi = edges[i], edges[i + 1], edges[i + 2]
        fb[i] = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return fb


def features(audio):
    """One second of 16 kHz audio (shorter is zero-padded) -> (1, 49, 40) log-mel energies."""
    x = np.zeros(KWS_RATE, np.float64)
    a = np.asarray(audio, np.float64)[:KWS_RATE]
    x[: len(a)] = a
    frames = np.stack([x[i * HOP : i * HOP + WINDOW] * np.hanning(WINDOW) for i in range(FRAMES)])
    power = np.abs(np.fft.rfft(frames, N_FFT)) ** 2
    return np.log(power @ _mel_filters().T + 1e-6).astype(np.float32)[None]


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def decide(logits, labels, keywords):
    """(label, probability, is_keyword) of one window's logits."""
    p = softmax(np.asarray(logits).reshape(-1))
    i = int(np.argmax(p))
    label = labels[i] if i < len(labels) else str(i)
    return label, float(p[i]), bool(label in keywords and p[i] >= MIN_SCORE)


def add_arguments(parser):
    parser.add_argument("--all", action="store_true", help="print every window, not only detected keywords")


def read_input(path, manifest):
    return read_wav(path, KWS_RATE)


def infer(session, audio, manifest):
    starts = [0] if len(audio) <= KWS_RATE else range(0, len(audio) - KWS_RATE + 1, int(SCAN_HOP_S * KWS_RATE))
    return [np.concatenate([np.asarray(session.run([features(audio[s : s + KWS_RATE])[None]])[0]) for s in starts]),
            np.array([s / KWS_RATE for s in starts])]


def present(outputs, manifest, args):
    labels = manifest["labels"]
    keywords = [l for l in labels if not l.startswith("_")]
    windows = []
    for logits, t in zip(outputs[0], outputs[1]):
        label, p, hit = decide(logits, labels, keywords)
        if hit or args.all:
            windows.append({"start_s": round(float(t), 2), "label": label, "probability": round(p, 4), "keyword": hit})
    return {"windows": windows}


def render(result):
    if not result["windows"]:
        return "no keyword heard"
    return "\n".join(f"{w['start_s']:6.2f} s  {w['label']:>12}  {w['probability']:.3f}{'' if w['keyword'] else '  (not a keyword)'}"
                     for w in result["windows"])

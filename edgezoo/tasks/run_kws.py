"""The keyword-spotting part of a bundle's run.py (everything below the marker is embedded).
The front end (``features``) and the decision (``decide``) are the code edgezoo's training
recipe, evaluation and this runner share, so a report measures what the runner prints."""

import numpy as np

from edgezoo.bundle.runner import read_wav

# --- run.py ---
# Task: keyword spotting. Reads a 16 kHz mono WAV, computes the model's features (numpy only;
# the manifest's preprocess.frontend names them) and prints the keyword heard in each second
# (one window, or a sliding window over a longer recording).
KWS_RATE = 16000
WINDOW = 480  # 30 ms
HOP = 320  # 20 ms
N_FFT = 512
N_MELS = 40
FRAMES = 49  # one second
MFCC_COEFFS = 10
# logmel40: 40 log-mel energies, 60-7600 Hz (edgezoo's own keyword models);
# mfcc10: the MLPerf Tiny keyword-spotting reference (its get_dataset.py, tf.signal): the clip
# divided by its peak, STFT magnitude (periodic Hann), 40 HTK mel bands 20-4000 Hz without
# the DC bin, log(x + 1e-6), DCT-II scaled by 1/sqrt(2 * 40), the first 10 coefficients.
FRONTENDS = {"logmel40": N_MELS, "mfcc10": MFCC_COEFFS}
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


def _htk_mel_matrix(n_mels, low, high):
    """(n_mels, N_FFT // 2 + 1) triangles on the HTK mel scale, the DC bin left out (as
    tf.signal.linear_to_mel_weight_matrix builds them)."""
    def hz2mel(f):
        return 1127.0 * np.log1p(np.asarray(f, np.float64) / 700.0)

    bins = hz2mel(np.linspace(0.0, KWS_RATE / 2, N_FFT // 2 + 1)[1:])[:, None]
    edges = np.linspace(hz2mel(low), hz2mel(high), n_mels + 2)
    lo, mid, hi = edges[:-2][None], edges[1:-1][None], edges[2:][None]
    w = np.maximum(0.0, np.minimum((bins - lo) / (mid - lo), (hi - bins) / (hi - mid)))
    return np.concatenate([np.zeros((1, n_mels)), w]).T


def _mfcc10(x):
    peak = float(np.max(x))
    x = np.clip(x / peak if peak > 0 else x, -1.0, 1.0)
    n = np.arange(WINDOW)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WINDOW)  # periodic Hann
    frames = np.stack([x[i * HOP : i * HOP + WINDOW] * window for i in range(FRAMES)])
    mel = np.abs(np.fft.rfft(frames, N_FFT)) @ _htk_mel_matrix(N_MELS, 20.0, 4000.0).T
    log_mel = np.log(mel + 1e-6)
    k = np.arange(MFCC_COEFFS)[:, None]
    dct = 2.0 * np.cos(np.pi * k * (2 * np.arange(N_MELS)[None] + 1) / (2 * N_MELS)) / np.sqrt(2.0 * N_MELS)
    return log_mel @ dct.T


def features(audio, frontend="logmel40"):
    """One second of 16 kHz audio (shorter is zero-padded) -> (1, 49, C) features:
    C = 40 log-mel energies (``logmel40``) or 10 MFCCs (``mfcc10``)."""
    if frontend not in FRONTENDS:
        raise ValueError(f"unknown keyword-spotting front end {frontend!r} (known: {', '.join(FRONTENDS)})")
    x = np.zeros(KWS_RATE, np.float64)
    a = np.asarray(audio, np.float64)[:KWS_RATE]
    x[: len(a)] = a
    if frontend == "mfcc10":
        return _mfcc10(x).astype(np.float32)[None]
    frames = np.stack([x[i * HOP : i * HOP + WINDOW] * np.hanning(WINDOW) for i in range(FRAMES)])
    power = np.abs(np.fft.rfft(frames, N_FFT)) ** 2
    return np.log(power @ _mel_filters().T + 1e-6).astype(np.float32)[None]


def frontend_of(manifest):
    return (manifest.get("preprocess") or {}).get("frontend") or "logmel40"


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
    fe = frontend_of(manifest)
    return [np.concatenate([np.asarray(session.run([features(audio[s : s + KWS_RATE], fe)[None]])[0]) for s in starts]),
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

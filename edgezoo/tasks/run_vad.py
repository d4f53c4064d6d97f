"""The voice-activity part of a bundle's run.py (everything below the marker is embedded).
edgezoo's own scoring imports ``stream`` and ``speech_segments`` from here, so the
segment F1 in a report is measured through exactly what the runner prints."""

import numpy as np

from edgezoo.bundle.runner import read_wav

# --- run.py ---
# Task: voice activity. Streams a 16 kHz mono WAV through the model in 32 ms chunks (the
# recurrent state goes back in with every chunk) and prints the speech segments.
RATE = 16000
CHUNK = 512  # samples a call classifies (32 ms)
CONTEXT = 64  # samples of the previous chunk the model also sees
THRESHOLD = 0.5  # a segment starts above it ...
NEG_THRESHOLD = 0.35  # ... and ends below this
MIN_SPEECH_S = 0.25
MIN_SILENCE_S = 0.30  # pauses between words stay inside a segment
PAD_S = 0.03


def chunks(audio):
    """The model's inputs for a whole recording: N x (CONTEXT + CHUNK) windows."""
    pad = (-len(audio)) % CHUNK
    x = np.concatenate([np.zeros(CONTEXT, np.float32), np.asarray(audio, np.float32), np.zeros(pad, np.float32)])
    n = (len(x) - CONTEXT) // CHUNK
    return np.stack([x[i * CHUNK : i * CHUNK + CONTEXT + CHUNK] for i in range(n)]) if n else np.zeros((0, CONTEXT + CHUNK), np.float32)


def stream(run_one, windows, state_shape=(1, 2, 128)):
    """Speech probability of each window, carrying the recurrent state from call to call.
    ``run_one`` maps [audio (1, 576), state] to [probability (1, 1), new state]."""
    state = np.zeros(state_shape, np.float32)
    probs = np.zeros(len(windows), np.float32)
    for i, w in enumerate(windows):
        out = run_one([w[None, :].astype(np.float32), state])
        probs[i] = float(np.asarray(out[0]).reshape(-1)[0])
        state = np.asarray(out[1], np.float32).reshape(state_shape)
    return probs


def speech_segments(probs):
    """Speech segments [(start_s, end_s)] from per-chunk probabilities, with hysteresis, a
    minimum speech and silence length and a little padding (as silero-vad's own helper)."""
    step = CHUNK / RATE
    segments, start, silent_since = [], None, None
    for i, p in enumerate(probs):
        t = i * step
        if start is None:
            if p >= THRESHOLD:
                start, silent_since = t, None
        elif p < NEG_THRESHOLD:
            silent_since = t if silent_since is None else silent_since
            if t + step - silent_since >= MIN_SILENCE_S:
                if silent_since - start >= MIN_SPEECH_S:
                    segments.append((start, silent_since))
                start, silent_since = None, None
        else:
            silent_since = None
    if start is not None and len(probs) * step - start >= MIN_SPEECH_S:
        segments.append((start, silent_since if silent_since is not None else len(probs) * step))
    total = len(probs) * step
    return [(max(0.0, a - PAD_S), min(total, b + PAD_S)) for a, b in segments]


def add_arguments(parser):
    parser.add_argument("--probabilities", action="store_true", help="also print the speech probability of every 32 ms chunk")


def read_input(path, manifest):
    return read_wav(path, RATE)


def infer(session, audio, manifest):
    shape = tuple(manifest["inputs"][1]["shape"])
    return [stream(session.run, chunks(audio), shape)]


def present(outputs, manifest, args):
    probs = outputs[0]
    result = {"segments": [{"start_s": round(a, 3), "end_s": round(b, 3)} for a, b in speech_segments(probs)],
              "duration_s": round(len(probs) * CHUNK / RATE, 3)}
    if args.probabilities:
        result["probabilities"] = [round(float(p), 4) for p in probs]
    return result


def render(result):
    lines = [f"speech {s['start_s']:7.2f} s - {s['end_s']:7.2f} s" for s in result["segments"]]
    if not lines:
        lines = [f"no speech in {result['duration_s']:.2f} s"]
    if "probabilities" in result:
        lines.append("chunk probabilities: " + " ".join(f"{p:.2f}" for p in result["probabilities"]))
    return "\n".join(lines)

"""Write tests/data/mfcc10-tf-reference.npz: the MLPerf Tiny keyword-spotting front end as
TensorFlow computes it (the tf.signal calls of MLPerf Tiny's get_dataset.py), on three
fixed clips, so tests can check edgezoo's numpy copy (edgezoo.tasks.run_kws, ``mfcc10``)
without TensorFlow. Needs TensorFlow, which edgezoo does not install: run it in a
throwaway venv (``python -m venv /tmp/tf && /tmp/tf/bin/pip install tensorflow-cpu numpy``).

    /tmp/tf/bin/python tools/mfcc_reference.py
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

OUT = Path(__file__).resolve().parents[1] / "tests" / "data" / "mfcc10-tf-reference.npz"


def mlperf_mfcc10(audio: np.ndarray) -> np.ndarray:
    w = tf.constant(audio.astype(np.float32))
    w = tf.clip_by_value(w / tf.reduce_max(w), -1.0, 1.0)
    stfts = tf.signal.stft(w, frame_length=480, frame_step=320, fft_length=None)
    mel_matrix = tf.signal.linear_to_mel_weight_matrix(40, stfts.shape[-1], 16000, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(tf.abs(stfts), mel_matrix, 1) + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10].numpy()


def main() -> None:
    rng = np.random.default_rng(2026)
    t = np.arange(16000) / 16000.0
    clips = [
        0.3 * np.sin(2 * np.pi * 440 * t) * np.exp(-3 * t) + 0.01 * rng.standard_normal(16000),  # a decaying tone in noise
        0.2 * rng.standard_normal(16000) * np.sin(np.pi * t) ** 4,  # a noise burst
        np.concatenate([0.05 * rng.standard_normal(8000), np.zeros(8000)]),  # half noise, half digital silence
    ]
    audio = np.stack([np.round(np.clip(c, -1, 1) * 32767) for c in clips]).astype(np.int16)
    features = np.stack([mlperf_mfcc10(a / 32767.0) for a in audio])
    np.savez_compressed(OUT, audio=audio, mfcc10=features, tensorflow=np.array(tf.__version__))
    print(f"wrote {OUT} ({features.shape}, TensorFlow {tf.__version__})")


if __name__ == "__main__":
    main()

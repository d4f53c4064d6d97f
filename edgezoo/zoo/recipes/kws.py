"""Train ``kws-dscnn-synth``: a DS-CNN keyword spotter on words spoken by espeak-ng and flite.

    python -m edgezoo.zoo.recipes.kws --out edgezoo/zoo/weights/kws-dscnn-synth-1.0.safetensors
    python -m edgezoo.zoo.recipes.kws --architecture edgezoo.kws_dscnn:32 --out edgezoo/zoo/weights/kws-dscnn-synth-small-1.0.safetensors
    python -m edgezoo.zoo.recipes.kws --frontend mfcc10 --digital-silence 0.2 --out edgezoo/zoo/weights/kws-dscnn-mlperf-1.0.safetensors

The training voices (edgezoo.zoo.speech_commands.VOICES["train"]) never speak in the
evaluation split. Each epoch shifts every clip in time (up to 150 ms either way) and adds
fresh noise, then computes the runner's own features (edgezoo.tasks.run_kws.features).
``--digital-silence P`` also teaches what a WAV file's exact zeros look like (MLPerf's front end
divides each window by its peak, so a quiet tail or digital silence is blown up to full
scale): a share P of the spoken clips each epoch keeps only the word (zeros around it), and
all-zero clips are added as _silence_.
Deterministic: seeds, one thread, deterministic kernels.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

SEED = 0
EPOCHS = 40
BATCH = 32
LR = 3e-3


def _word_spans(audio, labels, silence: int):
    """(start, end) samples of the word in each clip (frames louder than 3x the clip's median
    frame, widened by 100 ms); None for the noise-only clips."""
    import numpy as np

    spans = []
    for a, label in zip(audio, labels):
        rms = np.sqrt(np.mean(a[: len(a) // 320 * 320].reshape(-1, 320) ** 2, axis=1))
        loud = np.flatnonzero(rms > 3 * np.median(rms))
        spans.append(None if label == silence or not len(loud) else
                     (max(0, int(loud[0]) * 320 - 1600), min(len(a), (int(loud[-1]) + 1) * 320 + 1600)))
    return spans


def _features(audio, rng, augment: bool, frontend: str, spans=None, p_zero: float = 0.0):
    import numpy as np

    from edgezoo.tasks.run_kws import FRONTENDS, features

    out = np.empty((len(audio), 1, 49, FRONTENDS[frontend]), np.float32)
    for i, a in enumerate(audio):
        if augment:
            shift = int(rng.integers(-2400, 2401))
            a = np.roll(a, shift) + rng.standard_normal(len(a)).astype(np.float32) * float(rng.uniform(0, 0.01))
            if spans is not None:
                if spans[i] == "zeros":
                    a = np.zeros_like(a)
                elif spans[i] is not None and rng.random() < p_zero:
                    lo, hi = spans[i][0] + shift, spans[i][1] + shift
                    if 0 <= lo < hi <= len(a):  # the word did not wrap around
                        a = a.copy()
                        a[:lo], a[hi:] = 0.0, 0.0
        out[i] = features(a, frontend)
    return out


def train(epochs: int = EPOCHS, architecture: str = "edgezoo.kws_dscnn", frontend: str = "logmel40", digital_silence: float = 0.0):
    import numpy as np
    import torch

    from edgezoo.zoo import models, speech_commands

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)
    audio, labels = speech_commands.load("train")
    spans = None
    if digital_silence > 0:
        silence = speech_commands.LABELS.index("_silence_")
        spans = _word_spans(audio, labels, silence)
        n_zero = max(8, int(np.sum(labels == silence)) // 2)
        audio = np.concatenate([audio, np.zeros((n_zero, audio.shape[1]), audio.dtype)])
        labels = np.concatenate([labels, np.full(n_zero, silence, labels.dtype)])
        spans += ["zeros"] * n_zero
    y = torch.from_numpy(labels)
    model = models.build(architecture)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-3)
    steps = epochs * ((len(audio) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    gen = torch.Generator().manual_seed(SEED)
    for _epoch in range(epochs):
        x = torch.from_numpy(_features(audio, rng, augment=True, frontend=frontend, spans=spans, p_zero=digital_silence))
        model.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    ev_audio, ev_labels = speech_commands.load("eval")
    with torch.no_grad():
        pred = model(torch.from_numpy(_features(ev_audio, rng, augment=False, frontend=frontend))).argmax(1).numpy()
    return model, float(np.mean(pred == ev_labels) * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--architecture", default="edgezoo.kws_dscnn", help="edgezoo.kws_dscnn (64 channels) or edgezoo.kws_dscnn:32")
    parser.add_argument("--frontend", default="logmel40", choices=("logmel40", "mfcc10"),
                        help="the runner's features: log-mel (edgezoo's) or the MLPerf Tiny reference's MFCCs")
    parser.add_argument("--digital-silence", type=float, default=0.0, metavar="P",
                        help="share of spoken clips per epoch with exact zeros around the word, plus all-zero _silence_ clips")
    args = parser.parse_args()
    from safetensors.torch import save_file

    model, acc = train(args.epochs, args.architecture, args.frontend, args.digital_silence)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out))
    data = args.out.read_bytes()
    print(f"eval accuracy on held-out voices (PyTorch): {acc:.2f}%")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}  bytes {len(data)}")


if __name__ == "__main__":
    main()

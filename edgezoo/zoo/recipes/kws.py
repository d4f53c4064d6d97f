"""Train ``kws-dscnn-synth``: a DS-CNN keyword spotter on words spoken by espeak-ng and flite.

    python -m edgezoo.zoo.recipes.kws --out edgezoo/zoo/weights/kws-dscnn-synth-1.0.safetensors
    python -m edgezoo.zoo.recipes.kws --architecture edgezoo.kws_dscnn:32 --out edgezoo/zoo/weights/kws-dscnn-synth-small-1.0.safetensors

The training voices (edgezoo.zoo.speech_commands.VOICES["train"]) never speak in the
evaluation split. Each epoch shifts every clip in time (up to 150 ms either way) and adds
fresh noise, then computes the runner's own features (edgezoo.tasks.run_kws.features).
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


def _features(audio, rng, augment: bool):
    import numpy as np

    from edgezoo.tasks.run_kws import features

    out = np.empty((len(audio), 1, 49, 40), np.float32)
    for i, a in enumerate(audio):
        if augment:
            a = np.roll(a, int(rng.integers(-2400, 2401))) + rng.standard_normal(len(a)).astype(np.float32) * float(rng.uniform(0, 0.01))
        out[i] = features(a)
    return out


def train(epochs: int = EPOCHS, architecture: str = "edgezoo.kws_dscnn"):
    import numpy as np
    import torch

    from edgezoo.zoo import models, speech_commands

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)
    audio, labels = speech_commands.load("train")
    y = torch.from_numpy(labels)
    model = models.build(architecture)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-3)
    steps = epochs * ((len(audio) + BATCH - 1) // BATCH)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=steps)
    gen = torch.Generator().manual_seed(SEED)
    for _epoch in range(epochs):
        x = torch.from_numpy(_features(audio, rng, augment=True))
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
        pred = model(torch.from_numpy(_features(ev_audio, rng, augment=False))).argmax(1).numpy()
    return model, float(np.mean(pred == ev_labels) * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--architecture", default="edgezoo.kws_dscnn", help="edgezoo.kws_dscnn (64 channels) or edgezoo.kws_dscnn:32")
    args = parser.parse_args()
    from safetensors.torch import save_file

    model, acc = train(args.epochs, args.architecture)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out))
    data = args.out.read_bytes()
    print(f"eval accuracy on held-out voices (PyTorch): {acc:.2f}%")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}  bytes {len(data)}")


if __name__ == "__main__":
    main()

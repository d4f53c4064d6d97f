"""Train ``gesture-imu-cnn`` on accelerometer gestures made here (edgezoo.zoo.imu).

    python -m edgezoo.zoo.recipes.gesture --out edgezoo/zoo/weights/gesture-imu-cnn-1.0.safetensors

Trains on the ``train`` split (its own seed); the evaluation split uses another seed and
wider ranges of speed and strength. Deterministic: seeds, one thread, deterministic kernels.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

SEED = 0
EPOCHS = 40
BATCH = 32
LR = 3e-3


def train():
    import numpy as np
    import torch

    from edgezoo.zoo import datasets, models

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    tr = datasets.load_split("imu-gestures-synth", "train")
    x, y = torch.from_numpy(tr.raw), torch.from_numpy(tr.labels)
    model = models.build("edgezoo.imu_cnn")
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-3)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    ev = datasets.load_split("imu-gestures-synth", "eval")
    with torch.no_grad():
        pred = model(torch.from_numpy(ev.raw)).argmax(1).numpy()
    return model, float(np.mean(pred == ev.labels) * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from safetensors.torch import save_file

    model, acc = train()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out))
    data = args.out.read_bytes()
    print(f"eval accuracy (PyTorch): {acc:.2f}%; sha256 {hashlib.sha256(data).hexdigest()}  bytes {len(data)}")


if __name__ == "__main__":
    main()

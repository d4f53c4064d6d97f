"""Train ``digits-cnn`` on scikit-learn's bundled digits (8x8, values 0-16).

    python -m edgezoo.zoo.recipes.digits_cnn --out edgezoo/zoo/weights/digits-cnn-1.0.safetensors

Deterministic: fixed seeds, one thread, deterministic kernels, full-batch order from a
seeded generator. Trains on the ``train`` split only; the ``calib`` split is kept for
quantization and the ``eval`` split for accuracy, neither seen in training.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

SEED = 0
EPOCHS = 60
BATCH = 64
LR = 3e-3


def train(epochs: int = EPOCHS):
    import numpy as np
    import torch

    from edgezoo.zoo import catalog, datasets, models

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    card = catalog.get_card("digits-cnn")
    train_split = datasets.load_split("sklearn-digits", "train")
    x = torch.from_numpy(datasets.preprocess_split(train_split, card))
    y = torch.from_numpy(train_split.labels)
    model = models.build(card.architecture)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=epochs * ((len(x) + BATCH - 1) // BATCH))
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            xb = x[idx]
            # light augmentation: shift by at most one pixel, the digits' main nuisance
            shift = torch.randint(-1, 2, (2,), generator=gen)
            xb = torch.roll(xb, shifts=(int(shift[0]), int(shift[1])), dims=(2, 3))
            loss = torch.nn.functional.cross_entropy(model(xb), y[idx], label_smoothing=0.05)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    model.eval()
    eval_split = datasets.load_split("sklearn-digits", "eval")
    with torch.no_grad():
        pred = model(torch.from_numpy(datasets.preprocess_split(eval_split, card))).argmax(1).numpy()
    acc = float(np.mean(pred == eval_split.labels))
    return model, acc


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    args = parser.parse_args()
    from safetensors.torch import save_file

    model, acc = train(args.epochs)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    # no metadata: safetensors writes its metadata map in hash order, which breaks byte-identical rebuilds
    save_file(state, str(args.out))
    data = args.out.read_bytes()
    print(f"eval top-1 (PyTorch): {acc * 100:.2f}%")
    print(f"sha256 {hashlib.sha256(data).hexdigest()}  bytes {len(data)}")


if __name__ == "__main__":
    main()

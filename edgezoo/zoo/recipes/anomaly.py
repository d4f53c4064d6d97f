"""Train ``anomaly-breast-cancer``: an autoencoder that learns benign tissue only, so
malignant samples reconstruct badly and score high.

    python -m edgezoo.zoo.recipes.anomaly --out edgezoo/zoo/weights/anomaly-breast-cancer-1.0.safetensors

Trains on the benign rows of the tabular train split; the standardisation (the card's
[preprocess]) is the benign train rows' mean and std, and the stored threshold is the 95th
percentile of the training rows' reconstruction error, so about 5 % of normal samples are
flagged. Deterministic: seeds, one thread, deterministic kernels.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

SEED = 0
EPOCHS = 300
BATCH = 32
LR = 2e-3
CARD = "anomaly-breast-cancer"


def standardisation():
    import numpy as np

    from edgezoo.zoo import datasets

    x = datasets.load_split("sklearn-breast-cancer-anomaly", "train").raw.astype(np.float64)
    return [round(float(v), 6) for v in x.mean(0)], [round(float(v), 6) for v in np.maximum(x.std(0), 1e-6)]


def train(epochs: int = EPOCHS):
    import torch

    from edgezoo.tasks.anomaly import auc
    from edgezoo.zoo import catalog, datasets, models

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    card = catalog.get_card(CARD)
    mean, std = standardisation()
    if list(card.preprocess.mean) != mean or list(card.preprocess.std) != std:
        raise SystemExit(f"{CARD}: set the card's [preprocess]\nmean = {mean}\nstd = {std}")
    x = torch.from_numpy(datasets.preprocess_split(datasets.load_split("sklearn-breast-cancer-anomaly", "train"), card))
    model = models.build(card.architecture)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            xb = x[perm[i : i + BATCH]]
            loss = ((model(xb) - xb) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        train_err = ((x - model(x)) ** 2).mean(dim=1)
        model.threshold.fill_(float(torch.quantile(train_err, 0.95)))
        ev = datasets.load_split("sklearn-breast-cancer-anomaly", "eval")
        scores = model.score(torch.from_numpy(datasets.preprocess_split(ev, card))).numpy()[:, 0]
    return model, auc(scores, ev.labels.astype(bool))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    from safetensors.torch import save_file

    model, score = train()
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(args.out))
    data = args.out.read_bytes()
    print(f"eval ROC AUC (PyTorch): {score:.2f}; threshold {float(model.threshold):.6g} (the card's task_options); "
          f"sha256 {hashlib.sha256(data).hexdigest()}  bytes {len(data)}")


if __name__ == "__main__":
    main()

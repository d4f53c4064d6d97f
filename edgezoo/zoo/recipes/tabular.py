"""Train the zoo's tabular MLPs on data sets bundled in scikit-learn (no download).

    python -m edgezoo.zoo.recipes.tabular tabular-breast-cancer --out edgezoo/zoo/weights/
    python -m edgezoo.zoo.recipes.tabular all --out edgezoo/zoo/weights/

Each model trains on its card's ``train`` split only (60 %); ``calib`` (15 %) is kept for
quantization and ``eval`` (25 %) for the card's metric. The feature standardisation
(mean, std per column) is computed on the train split and printed for the card's
``[preprocess]``; the recipe refuses to save weights when the card's values differ, so a
card cannot describe other preprocessing than its weights were trained with.
Deterministic: fixed seeds, one thread, full-batch order from a seeded generator.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

SEED = 0
RECIPES = {
    # id: (dataset, epochs, learning rate, weight decay)
    "tabular-breast-cancer": ("sklearn-breast-cancer", 150, 3e-3, 1e-3),
    "tabular-wine": ("sklearn-wine", 200, 3e-3, 1e-3),
    "tabular-iris": ("sklearn-iris", 200, 3e-3, 1e-3),
    "digits-mlp": ("sklearn-digits-flat", 60, 3e-3, 1e-3),
    "tabular-diabetes": ("sklearn-diabetes", 100, 1e-3, 1e-1),  # chosen on the calib split (R² 34 vs 12-27 for larger nets)
}
BATCH = 32


def standardisation(dataset: str):
    import numpy as np

    from edgezoo.zoo import datasets

    x = datasets.load_split(dataset, "train").raw.astype(np.float64)
    std = x.std(0)
    # a column that never varies in training (a digit's blank corner) is left unscaled, not blown up
    return [round(float(v), 6) for v in x.mean(0)], [round(float(v), 6) for v in np.where(std < 1e-3, 1.0, std)]


def train(model_id: str):
    import numpy as np
    import torch

    from edgezoo.zoo import catalog, datasets, models

    dataset, epochs, lr, wd = RECIPES[model_id]
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    card = catalog.get_card(model_id)
    mean, std = standardisation(dataset)
    if list(card.preprocess.mean) != mean or list(card.preprocess.std) != std:
        raise SystemExit(f"{model_id}: the card's [preprocess] mean/std differ from the train split's; set\n"
                         f"mean = {mean}\nstd = {std}")
    split = datasets.load_split(dataset, "train")
    x = torch.from_numpy(datasets.preprocess_split(split, card))
    regression = card.task == "tabular-regression"
    model = models.build(card.architecture)
    if regression:
        y = torch.from_numpy(split.labels.astype(np.float32))
        model.out_shift.fill_(float(y.mean()))
        model.out_scale.fill_(float(y.std()))
    else:
        y = torch.from_numpy(split.labels)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    gen = torch.Generator().manual_seed(SEED)
    model.train()
    for _epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), BATCH):
            idx = perm[i : i + BATCH]
            out = model(x[idx])
            if regression:  # in standardised units, so the loss scale does not depend on the target's
                loss = torch.nn.functional.mse_loss((out[:, 0] - model.out_shift) / model.out_scale,
                                                    (y[idx] - model.out_shift) / model.out_scale)
            else:
                loss = torch.nn.functional.cross_entropy(out, y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    ev = datasets.load_split(dataset, "eval")
    with torch.no_grad():
        pred = model(torch.from_numpy(datasets.preprocess_split(ev, card))).numpy()
    if regression:
        t = ev.labels.astype(np.float64)
        score = ("r2", (1 - np.sum((t - pred[:, 0]) ** 2) / np.sum((t - t.mean()) ** 2)) * 100)
    else:
        score = ("accuracy", float(np.mean(pred.argmax(1) == ev.labels) * 100))
    return model, score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", choices=[*RECIPES, "all"])
    parser.add_argument("--out", type=Path, required=True, help="folder for <id>-1.0.safetensors")
    args = parser.parse_args()
    from safetensors.torch import save_file

    for model_id in RECIPES if args.model == "all" else [args.model]:
        model, (metric, value) = train(model_id)
        path = args.out / f"{model_id}-1.0.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        data = path.read_bytes()
        print(f"{model_id}: eval {metric} (PyTorch) {value:.2f}; sha256 {hashlib.sha256(data).hexdigest()}  bytes {len(data)}")


if __name__ == "__main__":
    main()

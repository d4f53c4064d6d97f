"""``edgezoo finetune``: adapt a zoo classifier to the user's data, as a new card.

Data: an image folder with one sub-folder per class (``data/cat/*.jpg``, ``data/dog/*.png``),
or an ``.npz`` with ``x`` (raw samples, as the card's preprocessing takes them) and ``y``
(integer labels), optionally ``classes`` (names). The samples are split, stratified and
seeded, into train / validation (early stopping, then int8 calibration) / evaluation
(never seen before the final figure). When the classes differ from the card's, the
classifier layer is replaced (``ARCH+head=N``).

The result is a private catalog folder: ``<id>.toml`` (a card whose version records the
base model, the data's sha256 and every training setting), the weights (safetensors), the
label list and the data set (``.npz``, raw samples, no pickles) that later exports
calibrate and evaluate on. ``EDGEZOO_CARDS=<folder> edgezoo export <id> --target ...``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgezoo.errors import UsageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


@dataclass
class Data:
    x: np.ndarray  # raw samples (the card's raw form)
    y: np.ndarray
    classes: list[str]
    source: str
    sha256: str


def _sha(x: np.ndarray, y: np.ndarray, classes: list[str]) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(np.ascontiguousarray(y.astype(np.int64)).tobytes())
    h.update("\n".join(classes).encode())
    return h.hexdigest()


def _raw_from_image(path: Path, card) -> np.ndarray:
    from PIL import Image

    from edgezoo.bundle.runner import resize_and_crop

    pre = card.preprocess
    try:
        with Image.open(path) as im:
            im.load()
            image = im.copy()
    except Exception as exc:  # PIL raises several types for unreadable files
        raise UsageError(f"{path} is not a readable image ({type(exc).__name__})",
                         hint="remove or replace it; every file under a class folder must be an image") from None
    if pre.kind == "image":
        # resized and centre-cropped to the resize side: the card's own preprocessing then
        # crops exactly what it would have cropped from the original
        return resize_and_crop(image, pre.resize, pre.resize)
    # kind "array": a grey image of the input's spatial size, scaled to the raw range
    shape = card.input.shape
    h, w = (shape[2], shape[3]) if card.input.layout == "NCHW" else (shape[1], shape[2])
    grey = np.asarray(image.convert("L").resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
    lo, hi = pre.raw_range
    return (lo + grey * (hi - lo)).astype(np.float32)


def load_folder(folder: Path, card) -> Data:
    if card.preprocess.kind not in ("image", "array"):
        raise UsageError(f"{card.id} takes {card.preprocess.kind} inputs, not images", hint="pass an .npz with x (raw samples) and y (labels)")
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise UsageError(f"{folder} has no class folders", hint="put each class's images in a sub-folder named after it: data/cat/*.jpg, data/dog/*.jpg")
    xs, ys, empty = [], [], []
    for k, name in enumerate(classes):
        files = sorted(p for p in (folder / name).rglob("*") if p.is_file() and not p.name.startswith("."))
        if not files:
            empty.append(name)
        for f in files:
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                raise UsageError(f"{f} is not an image file ({f.suffix or 'no extension'})",
                                 hint=f"class folders hold images only ({', '.join(IMAGE_SUFFIXES)})")
            xs.append(_raw_from_image(f, card))
            ys.append(k)
    if empty:
        raise UsageError(f"class folder{'s' if len(empty) > 1 else ''} {', '.join(empty)} in {folder} hold{'s' if len(empty) == 1 else ''} no images",
                         hint="remove empty class folders or add images")
    if len(classes) < 2:
        raise UsageError(f"{folder} has one class ({classes[0]}); a classifier needs two or more", hint="add a folder per class")
    x, y = np.stack(xs), np.asarray(ys, np.int64)
    return Data(x, y, classes, f"folder {folder.name}", _sha(x, y, classes))


def load_npz(path: Path, card) -> Data:
    try:
        with np.load(path, allow_pickle=False) as d:
            if "x" not in d or "y" not in d:
                raise UsageError(f"{path} needs arrays 'x' (raw samples) and 'y' (labels); it has {', '.join(sorted(d.files))}")
            x, y = d["x"], d["y"]
            classes = [str(c) for c in d["classes"]] if "classes" in d else None
    except UsageError:
        raise
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path} is not a readable .npz without pickles: {exc}") from None
    if len(x) != len(y) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer) or (len(y) and y.min() < 0):
        raise UsageError(f"{path}: 'y' must hold one non-negative integer label per sample of 'x' ({len(x)} samples, y {list(y.shape)} {y.dtype})")
    n = int(y.max()) + 1 if len(y) else 0
    classes = classes or [str(i) for i in range(n)]
    if len(classes) < n or len(classes) < 2:
        raise UsageError(f"{path}: {len(classes)} class names for labels 0..{n - 1}", hint="give 'classes' one name per label (two or more)")
    return Data(x, y.astype(np.int64), classes, f"npz {path.name}", _sha(x, y, classes))


def split(data: Data, eval_fraction: float, val_fraction: float, seed: int = 0) -> dict[str, np.ndarray]:
    """Stratified, seeded index split: each class contributes to every split when it can."""
    rng = np.random.default_rng(seed)
    parts = {"train": [], "calib": [], "eval": []}
    for k in range(len(data.classes)):
        idx = rng.permutation(np.flatnonzero(data.y == k))
        n_eval = int(round(len(idx) * eval_fraction)) if len(idx) >= 3 else 0
        n_val = int(round(len(idx) * val_fraction)) if len(idx) >= 3 else 0
        n_eval, n_val = max(n_eval, 1 if len(idx) >= 3 else 0), max(n_val, 1 if len(idx) >= 3 else 0)
        parts["eval"].append(idx[:n_eval])
        parts["calib"].append(idx[n_eval : n_eval + n_val])
        parts["train"].append(idx[n_eval + n_val :])
    out = {k: np.sort(np.concatenate(v)) for k, v in parts.items()}
    small = [c for k, c in enumerate(data.classes) if np.sum(data.y == k) < 3]
    if small or not len(out["eval"]) or not len(out["train"]):
        raise UsageError(f"too few samples to split (classes with fewer than 3: {', '.join(small) or 'none'}; {len(data.y)} in all)",
                         hint="give every class at least 3 samples (10 or more for a meaningful accuracy)")
    return out


def run(model_ref: str, data_path: Path, out_dir: Path, *, new_id: str | None = None, epochs: int = 5, lr: float = 1e-3, batch: int = 32,
        eval_fraction: float = 0.2, val_fraction: float = 0.15, patience: int = 3, weights: str | None = None, force: bool = False,
        progress=None) -> dict:
    from edgezoo import registry
    from edgezoo.errors import require
    from edgezoo.schemas._strict import dump
    from edgezoo.stages import prune as pr
    from edgezoo.zoo import catalog, datasets, models
    from edgezoo.zoo.labels import load_labels

    torch = require("torch", extra="torch", purpose="fine-tuning")
    card = catalog.get_card(model_ref)
    task = registry.task(card.task)
    if not task.trainable:
        raise UsageError(f"{card.id} is a {card.task} model; edgezoo fine-tunes classifiers (class scores trained with cross-entropy)",
                         hint="fine-tune it with its own recipe, then export the weights with --weights")
    if card.architecture in ("tflite-file", "tflite-graph"):
        raise UsageError(f"{card.id} is a TFLite graph; fine-tuning needs a PyTorch architecture")
    new_id = new_id or out_dir.name
    if not ID_RE.match(new_id):
        raise UsageError(f"{new_id!r} is not a card id (lower-case letters, digits, '.', '_' and '-')", hint="pass --id my-model")
    if new_id in {c.id for c in catalog.list_cards()} and not force:
        raise UsageError(f"a card {new_id!r} is already in the catalog", hint="choose another --id (or --force to replace your own)")
    if out_dir.exists() and any(out_dir.iterdir()) and not force:
        raise UsageError(f"{out_dir} exists and is not empty", hint="choose another --out, or pass --force to replace it")
    if not data_path.exists():
        raise UsageError(f"data {data_path} does not exist", hint="pass an image folder (one sub-folder per class) or an .npz with x and y")
    if progress:
        progress("read data")
    data = load_folder(data_path, card) if data_path.is_dir() else load_npz(data_path, card)
    parts = split(data, eval_fraction, val_fraction)
    tmp_split = datasets.Split("user", "all", data.x, data.y)
    try:
        x_all = datasets.preprocess_split(tmp_split, card)
    except Exception as exc:
        raise UsageError(f"the samples do not fit {card.id}'s input {list(card.input.shape)}: {type(exc).__name__}: {str(exc)[:160]}",
                         hint="an .npz's x must hold raw samples as the card's preprocessing takes them (see `edgezoo info`)") from exc
    base_labels = list(load_labels(card.labels)) if card.labels else []
    same_classes = base_labels == data.classes
    if progress:
        progress("load model")
    from edgezoo.stages.torch_to_onnx import load_model
    from edgezoo.zoo.sources import resolve_version

    wpath = None
    if weights == "random":
        pass
    else:
        wpath = resolve_version(card.version(), local=Path(weights) if weights else None)
    model = load_model(card, wpath)
    architecture = card.architecture
    if not same_classes:
        head = models.replace_head(model, len(data.classes))
        architecture = f"{card.architecture.partition('+head=')[0]}+head={len(data.classes)}"
    else:
        head = ""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tr, va, ev = parts["train"], parts["calib"], parts["eval"]
    ft = pr.finetune(model, [x_all[tr]], data.y[tr], epochs, lr=lr, batch=batch, x_val=[x_all[va]], y_val=data.y[va], patience=patience,
                     progress=progress)
    with torch.no_grad():
        pred = torch.cat([model(torch.from_numpy(x_all[ev][i : i + 256])) for i in range(0, len(ev), 256)]).argmax(1).numpy()
    eval_acc = float(np.mean(pred == data.y[ev]) * 100)

    # write the catalog folder atomically: a temp folder beside it, renamed at the end
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        from safetensors.torch import save_file

        version = "1.0"
        wfile, lfile, dfile = f"{new_id}-{version}.safetensors", f"{new_id}-labels.txt", f"{new_id}-data.npz"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp / wfile))
        (tmp / lfile).write_text("\n".join(data.classes) + "\n", encoding="utf-8")
        np.savez(tmp / dfile, **{f"{k}_x": data.x[v] for k, v in parts.items()}, **{f"{k}_y": data.y[v] for k, v in parts.items()})
        wbytes = (tmp / wfile).read_bytes()
        settings = {"base": f"{card.id}@{card.version().version}", "base_weights": "random" if weights == "random" else card.version().weights.sha256,
                    "data": data.source, "data_sha256": data.sha256, "samples": {k: int(len(v)) for k, v in parts.items()},
                    "classes": data.classes, "new_head": head or None, "epochs": epochs, "epochs_run": ft["epochs_run"], "lr": lr,
                    "batch": batch, "optimizer": ft["optimizer"], "loss": "cross-entropy", "patience": patience, "seed": 0,
                    "validation": "the calib split (also int8 calibration)", "eval_accuracy": round(eval_acc, 3),
                    "best_val_accuracy": ft["best_val_accuracy"], "history": ft["history"]}
        (tmp / f"{new_id}-finetune.json").write_text(json.dumps(settings, indent=1))
        doc = dump(card)
        doc.update(
            id=new_id, name=f"{card.name} fine-tuned ({new_id})", architecture=architecture, labels=lfile, default_version=version,
            summary=f"{card.name} fine-tuned by `edgezoo finetune` on {data.source} ({len(data.classes)} classes, {len(data.y)} samples).",
            description=(f"{card.description}\n\nFine-tuned from {settings['base']} on {data.source} (sha256 {data.sha256[:16]}...), "
                         f"{ft['epochs_run']} of {epochs} epochs, AdamW lr {lr:g}, batch {batch}; "
                         + (f"new classifier layer {head} with {len(data.classes)} outputs." if head else "same classes, same head.")),
            tags=sorted(set(card.tags) | {"fine-tuned"}),
            params=int(sum(p.numel() for p in model.parameters())),
        )
        doc["evaluation"] = {"dataset": f"npz:{dfile}", "calibration_split": "calib", "eval_split": "eval", "train_split": "train",
                             "metric": "top1", "description": f"{data.source}, stratified seeded split: train {len(tr)} / calib {len(va)} / eval {len(ev)}."}
        doc["versions"] = [{
            "version": version, "released": _today(),
            "training": (f"edgezoo finetune from {settings['base']}: data sha256 {data.sha256}, {ft['epochs_run']}/{epochs} epochs, "
                         f"lr {lr:g}, batch {batch}, patience {patience}, seed 0 (settings: {new_id}-finetune.json)"),
            "weights": {"kind": "catalog", "path": wfile, "format": "safetensors", "sha256": hashlib.sha256(wbytes).hexdigest(), "bytes": len(wbytes)},
            "reference": {"dataset": f"{data.source} eval split ({len(ev)})", "metric": "top1", "value": round(eval_acc, 2),
                          "source": "measured by edgezoo finetune in PyTorch"},
        }]
        for k in ("calibration_samples", "calibration_method", "precision", "quantization_notes"):
            doc.pop(k, None)  # the base's choices were made for the base model
        try:
            doc["macs"] = pr.count(model, [torch.from_numpy(x_all[:1])])[0]
        except Exception:  # torch-pruning missing: the head's change is small beside the base's count
            pass
        _write_toml(tmp / f"{new_id}.toml", doc)
        from edgezoo.schemas.card import Card
        from edgezoo.schemas import _strict

        _strict.load(Card, _strict.read_toml(tmp / f"{new_id}.toml"), source=f"{new_id}.toml")  # what export will read
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"id": new_id, "folder": str(out_dir), "card": str(out_dir / f"{new_id}.toml"), "eval_accuracy": round(eval_acc, 3),
            "best_val_accuracy": ft["best_val_accuracy"], "epochs_run": ft["epochs_run"], "classes": data.classes,
            "samples": settings["samples"], "data_sha256": data.sha256, "new_head": head or None, "history": ft["history"],
            "export": f"EDGEZOO_CARDS={out_dir} edgezoo export {new_id} --target <target>"}


def _today() -> str:
    import datetime

    return datetime.date.today().isoformat()


def _write_toml(path: Path, doc: dict) -> None:
    """A small TOML writer for card documents (strings, numbers, booleans, lists, tables and
    arrays of tables); tomllib reads but does not write."""
    lines: list[str] = []

    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, str):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items() if x is not None) + " }"
        raise TypeError(type(v))

    scalars = {k: v for k, v in doc.items() if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))}
    for k, v in scalars.items():
        if v is not None and not (isinstance(v, float) and v != v):
            lines.append(f"{k} = {value(v)}")
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{a} = {value(b)}" for a, b in v.items() if b is not None and not (isinstance(b, float) and (b != b or b in (float('inf'), float('-inf'))))]
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for item in v:
                lines.append(f"\n[[{k}]]")
                lines += [f"{a} = {value(b)}" for a, b in item.items() if b is not None]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

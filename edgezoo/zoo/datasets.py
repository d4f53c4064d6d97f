"""Datasets that ship inside installed packages, so that calibration and evaluation run offline.

Each provider returns raw samples (what a device would capture) and labels (or None);
the card's preprocessing turns them into model inputs, with the same code as the
bundle's runner. Splits are fixed by seeded permutations and documented on the card.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from dataclasses import dataclass

import numpy as np

from edgezoo.errors import NotFoundError, UsageError, require

DIGITS_SEED = 20240611
DIGITS_SPLITS = {"train": (0, 1237), "calib": (1237, 1437), "eval": (1437, 1797)}


@dataclass(frozen=True)
class Split:
    dataset: str
    split: str
    raw: np.ndarray  # N raw samples
    labels: np.ndarray | None
    extra: tuple = ()  # N samples of each further model input (already in the model's form)

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def sha256(self) -> str:
        """Hash of the raw samples and labels: recorded so calibration is reproducible."""
        h = hashlib.sha256()
        h.update("\n".join(self.raw).encode() if self.raw.dtype == object else np.ascontiguousarray(self.raw).tobytes())
        if self.labels is not None:
            h.update(np.ascontiguousarray(self.labels).tobytes())
        return h.hexdigest()


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (1797 8x8 images, 0-16, and their digits): read from the CSV file
    its wheel ships, as load_digits reads it, without importing scikit-learn (1 s here, a
    seventh of a small export); through load_digits when the file has moved."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" if spec and spec.submodule_search_locations else None
    if path is not None and path.is_file():
        data = np.loadtxt(path, delimiter=",")
        if data.shape == (1797, 65):
            return data[:, :-1].reshape(-1, 8, 8), data[:, -1].astype(np.int64)
    datasets = require("sklearn.datasets", package="scikit-learn", extra="torch", purpose="the digits data set")
    bunch = datasets.load_digits()
    return bunch.images, bunch.target


def _digits(split: str) -> Split:
    images, target = _digits_arrays()
    order = np.random.default_rng(DIGITS_SEED).permutation(len(images))
    lo, hi = DIGITS_SPLITS[split]
    idx = order[lo:hi]
    return Split("sklearn-digits", split, images[idx].astype(np.float32), target[idx].astype(np.int64))


# Colour photographs bundled in scikit-image's wheel (no download): public domain or
# CC0 images, see skimage.data's documentation for each one's source.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina", "stereo_motorcycle")
PHOTO_SPLITS = {"calib": (64, 1), "eval": (200, 2)}  # (number of crops, seed)


PHOTO_FILES = {"astronaut": "astronaut.png", "chelsea": "chelsea.png", "coffee": "coffee.png", "rocket": "rocket.jpg",
               "immunohistochemistry": "ihc.png", "hubble_deep_field": "hubble_deep_field.jpg", "retina": "retina.jpg",
               "stereo_motorcycle": "motorcycle_left.png"}  # where skimage.data.<name>() reads each one (of a stereo pair, the left)


@functools.lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    """One of PHOTOS as an RGB uint8 array (read-only): what ``skimage.data.<name>()``
    returns, read straight from scikit-image's wheel with Pillow (as skimage does). That
    saves importing skimage.io (and with it scipy.linalg, which NNCF imports later anyway, so
    OpenVINO exports gain less) and decoding the other half of the stereo pair: resnet50's
    "load data" 2.5-2.8 -> 1.4-1.6 s. Kept for the process: both splits use them."""
    import importlib.util

    spec = importlib.util.find_spec("skimage")
    where = spec.submodule_search_locations if spec is not None else None
    path = Path(list(where)[0], "data", PHOTO_FILES[name]) if where else None
    if path is not None and path.is_file():
        from PIL import Image

        with Image.open(path) as im:
            img = np.asarray(im)
    else:  # another layout of the package (or none: require says how to install it)
        data = require("skimage.data", package="scikit-image", extra="torch", purpose="the bundled photographs")
        img = getattr(data, name)()
        img = img[0] if isinstance(img, tuple) else img
    img = np.ascontiguousarray(img[..., :3])
    img.flags.writeable = False
    return img


def _photo_crops(split: str, size: int = 256) -> Split:
    images = [_photo(name) for name in PHOTOS]
    count, seed = PHOTO_SPLITS[split]
    rng = np.random.default_rng(seed)
    from PIL import Image

    crops = np.empty((count, size, size, 3), dtype=np.uint8)
    for i in range(count):
        img = images[rng.integers(len(images))]
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 3, min(h, w) + 1))
        top = int(rng.integers(0, h - side + 1))
        left = int(rng.integers(0, w - side + 1))
        patch = Image.fromarray(img[top : top + side, left : left + side]).resize((size, size), Image.BILINEAR)
        if rng.random() < 0.5:
            patch = patch.transpose(Image.FLIP_LEFT_RIGHT)
        crops[i] = np.asarray(patch)
    return Split("skimage-photos", split, crops, None)


# Tabular data sets bundled in scikit-learn's wheel (no download), split by seeded
# permutations: 60 % train, 15 % calibration, 25 % evaluation.
TABULAR = {"sklearn-breast-cancer": "load_breast_cancer", "sklearn-wine": "load_wine", "sklearn-diabetes": "load_diabetes",
           "sklearn-iris": "load_iris", "sklearn-digits-flat": "load_digits"}
TABULAR_SEED = 20261128
TABULAR_FRACTIONS = {"train": (0.0, 0.60), "calib": (0.60, 0.75), "eval": (0.75, 1.0)}


def _tabular(name: str):
    def load(split: str) -> Split:
        datasets = require("sklearn.datasets", package="scikit-learn", extra="torch", purpose=f"the {name} data set")
        bunch = getattr(datasets, TABULAR[name])(scaled=False) if name == "sklearn-diabetes" else getattr(datasets, TABULAR[name])()
        order = np.random.default_rng(TABULAR_SEED).permutation(len(bunch.data))
        lo, hi = (round(f * len(order)) for f in TABULAR_FRACTIONS[split])
        idx = order[lo:hi]
        target = bunch.target[idx]
        labels = target.astype(np.float32) if name == "sklearn-diabetes" else target.astype(np.int64)
        return Split(name, split, bunch.data[idx].astype(np.float32), labels)

    return load


def _speech(split: str) -> Split:
    """32 ms windows of synthesised speech in noise (edgezoo.zoo.audio), clip by clip; labels
    are (clip index, chunk is speech); the extra input is the recurrent state (zeros: the
    voice-activity task streams its own)."""
    from edgezoo.tasks.run_vad import CHUNK, chunks
    from edgezoo.zoo.audio import load_clips

    audio, truth, _ = load_clips(split)
    windows, labels = [], []
    for c in range(len(audio)):
        w = chunks(audio[c])
        t = np.concatenate([truth[c], np.zeros(len(w) * CHUNK - len(truth[c]), bool)])  # the last window is zero-padded
        speech = t.reshape(len(w), CHUNK).mean(axis=1) > 0.5
        windows.append(w)
        labels.append(np.stack([np.full(len(w), c), speech.astype(np.int64)], axis=1))
    x = np.concatenate(windows).astype(np.float32)
    return Split("speech-synth-16k", split, x, np.concatenate(labels), extra=(np.zeros((len(x), 2, 128), np.float32),))


# Person / no-person crops of scikit-image's bundled photographs (truth by construction):
# every person crop contains the head and shoulders box of the astronaut (Eileen Collins) or
# the cameraman; the others come from photographs without people.
PERSON_BOXES = {"astronaut": (150, 20, 300, 200), "camera": (150, 60, 300, 250)}  # x0, y0, x1, y1
NO_PERSON = ("coffee", "chelsea", "rocket", "immunohistochemistry", "retina", "brick", "grass", "gravel", "page", "clock",
             "logo", "colorwheel", "horse", "text", "moon", "hubble_deep_field", "coins")
VWW_SPLITS = {"calib": (16, 101), "eval": (60, 102)}  # crops of each class, seed


def _rgb(img) -> np.ndarray:
    img = img[0] if isinstance(img, tuple) else img
    if img.dtype != np.uint8:
        img = (np.clip(img, 0, 1) * 255).astype(np.uint8) if img.max() <= 1 else np.clip(img, 0, 255).astype(np.uint8)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    return np.ascontiguousarray(img[..., :3])


def _vww(split: str, size: int = 128) -> Split:
    data = require("skimage.data", package="scikit-image", extra="torch", purpose="the bundled photographs")
    from PIL import Image

    per_class, seed = VWW_SPLITS[split]
    rng = np.random.default_rng(seed)
    crops, labels = [], []
    people = {n: _rgb(getattr(data, n)()) for n in PERSON_BOXES}
    others = [_rgb(getattr(data, n)()) for n in NO_PERSON]
    for i in range(per_class):
        name = list(PERSON_BOXES)[i % len(PERSON_BOXES)]
        img, (x0, y0, x1, y1) = people[name], PERSON_BOXES[name]
        h, w = img.shape[:2]
        side = int(rng.integers(max(x1 - x0, y1 - y0) + 20, min(h, w) + 1))
        left = int(rng.integers(max(0, x1 - side), min(x0, w - side) + 1))
        top = int(rng.integers(max(0, y1 - side), min(y0, h - side) + 1))
        crops.append((img[top : top + side, left : left + side], 0))
        img = others[int(rng.integers(len(others)))]
        h, w = img.shape[:2]
        side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crops.append((img[top : top + side, left : left + side], 1))
    out = np.empty((len(crops), size, size, 3), np.uint8)
    for k, (c, label) in enumerate(crops):
        patch = Image.fromarray(c).resize((size, size), Image.BILINEAR)
        out[k] = np.asarray(patch.transpose(Image.FLIP_LEFT_RIGHT) if rng.random() < 0.5 else patch)
        labels.append(label)
    return Split("skimage-vww", split, out, np.array(labels, dtype=np.int64))


FACE_SEED = 20261129


def _faces(split: str, size: int = 160) -> Split:
    """Faces from scikit-image's bundled lfw_subset (Labeled Faces in the Wild, 25x25 grey).
    calib: 40 face crops and 40 windows of photographs without people, 48x48 (the model's
    input); eval: 30 scenes of 160x160, photograph backgrounds with 0-2 of the other faces
    pasted at random sizes (36-80 px) and places; labels are the pasted boxes (image, x1, y1,
    x2, y2): truth by construction. calib-scenes: 40 scenes made the same way from the
    calibration faces (none of them in eval), for single-shot detectors, whose activations
    on a whole scene differ from those on one face filling the frame."""
    data = require("skimage.data", package="scikit-image", extra="torch", purpose="the bundled LFW subset")
    from PIL import Image

    faces = np.round(data.lfw_subset()[:100] * 255).astype(np.uint8)
    order = np.random.default_rng(FACE_SEED).permutation(100)
    backgrounds = [_rgb(getattr(data, n)()) for n in NO_PERSON]
    rng = np.random.default_rng(FACE_SEED + (1 if split == "calib" else 2))

    def crop(img, side):
        h, w = img.shape[:2]
        side = min(side, h, w)
        top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        return img[top : top + side, left : left + side]

    def rgb_face(k, side):
        return np.asarray(Image.fromarray(faces[k]).convert("RGB").resize((side, side), Image.BILINEAR))

    if split == "calib":
        out = [rgb_face(k, 48) for k in order[:40]]
        for _ in range(40):
            bg = backgrounds[int(rng.integers(len(backgrounds)))]
            out.append(np.asarray(Image.fromarray(crop(bg, int(rng.integers(40, 200)))).resize((48, 48), Image.BILINEAR)))
        return Split("face-composites", split, np.stack(out), None)
    if split == "calib-scenes":
        rng = np.random.default_rng(FACE_SEED + 3)
    scenes, boxes = [], []
    pool = list(order[:40]) * 2 if split == "calib-scenes" else list(order[40:])
    for i in range(40 if split == "calib-scenes" else 30):
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        scene = np.array(Image.fromarray(crop(bg, int(rng.integers(size, 400)))).resize((size, size), Image.BILINEAR))
        placed = []
        for _ in range(int(rng.integers(0, 3))):
            side = int(rng.integers(36, 81))
            for _attempt in range(20):
                x, y = int(rng.integers(0, size - side + 1)), int(rng.integers(0, size - side + 1))
                if all(x + side <= a or a + s <= x or y + side <= b or b + s <= y for a, b, s in placed):
                    break
            else:
                continue
            scene[y : y + side, x : x + side] = rgb_face(pool.pop(), side)
            placed.append((x, y, side))
            boxes.append([i, x, y, x + side, y + side])
        scenes.append(scene)
    return Split("face-composites", split, np.stack(scenes), np.array(boxes, np.float64).reshape(-1, 5))


def _gestures(split: str) -> Split:
    """Accelerometer gestures made here (edgezoo.zoo.imu), channels first (N x 3 x 100)."""
    from edgezoo.zoo import imu

    x, y = imu.make_split(split)
    return Split("imu-gestures-synth", split, x.transpose(0, 2, 1).copy(), y)


def _keywords(frontend: str):
    """One-second clips of keywords, other words and noise spoken by voices that the
    training split never uses (edgezoo.zoo.speech_commands), as the runner's features
    (``speech-commands-synth``: log-mel frames; ``-mfcc10``: the MLPerf Tiny MFCCs)."""
    name = "speech-commands-synth" + ("" if frontend == "logmel40" else f"-{frontend}")

    def load(split: str) -> Split:
        from edgezoo.tasks.run_kws import features
        from edgezoo.zoo import speech_commands

        audio, labels = speech_commands.load(split)
        return Split(name, split, np.stack([features(a, frontend) for a in audio]), labels)

    return name, load


def _sentence_pairs(split: str) -> Split:
    """Sentences (edgezoo.zoo.text): eval = the PAIRS, two rows each, labels (pair, paraphrase?);
    calib = CALIBRATION. Raw samples are strings: the card's tokenizer makes the inputs."""
    from edgezoo.zoo import text

    if split == "calib":
        return Split("sentence-pairs", split, np.array(text.CALIBRATION, dtype=object), None)
    rows = [s for a, b, _ in text.PAIRS for s in (a, b)]
    labels = np.array([(i, int(p)) for i, (_, _, p) in enumerate(text.PAIRS) for _ in range(2)], dtype=np.int64)
    return Split("sentence-pairs", split, np.array(rows, dtype=object), labels)


def _breast_cancer_anomaly(split: str) -> Split:
    """Breast cancer rows for anomaly detection: train = benign rows of the tabular train split
    (the autoencoder learns normal tissue only); calib = benign rows of the calibration split;
    eval = the whole evaluation split, labels 1 = malignant (the anomaly), 0 = benign."""
    base = _tabular("sklearn-breast-cancer")(split)
    benign = base.labels == 1  # scikit-learn's target: 0 malignant, 1 benign
    if split in ("train", "calib"):
        return Split("sklearn-breast-cancer-anomaly", split, base.raw[benign], np.zeros(int(benign.sum()), np.int64))
    return Split("sklearn-breast-cancer-anomaly", split, base.raw, (~benign).astype(np.int64))


PROVIDERS = {"sklearn-digits": (_digits, tuple(DIGITS_SPLITS)), "skimage-photos": (_photo_crops, tuple(PHOTO_SPLITS)),
             "sentence-pairs": (_sentence_pairs, ("calib", "eval")), "skimage-vww": (_vww, tuple(VWW_SPLITS)),
             **{name: (fn, ("calib", "eval")) for name, fn in (_keywords("logmel40"), _keywords("mfcc10"))},
             "face-composites": (_faces, ("calib", "calib-scenes", "eval")),
             "imu-gestures-synth": (_gestures, ("train", "calib", "eval")),
             "sklearn-breast-cancer-anomaly": (_breast_cancer_anomaly, ("train", "calib", "eval")),
             "speech-synth-16k": (_speech, ("calib", "eval"))}
PROVIDERS.update({name: (_tabular(name), tuple(TABULAR_FRACTIONS)) for name in TABULAR})


NPZ_SPLITS = ("train", "calib", "eval")


def _npz(dataset: str, split: str) -> Split:
    """``npz:FILE``: a data set beside a private catalog's card (``edgezoo finetune`` writes
    one): arrays ``<split>_x`` (raw samples, as the card's preprocessing takes them) and
    ``<split>_y`` (labels), read without pickles."""
    from edgezoo.zoo.catalog import catalog_file

    path = catalog_file(dataset.removeprefix("npz:"), "data set")
    with np.load(path, allow_pickle=False) as data:
        if f"{split}_x" not in data:
            raise UsageError(f"data set {path} has no split {split!r}", hint=f"its arrays: {', '.join(sorted(data.files))}")
        labels = data[f"{split}_y"].astype(np.int64) if f"{split}_y" in data else None
        return Split(dataset, split, data[f"{split}_x"], labels)


def load_split(dataset: str, split: str) -> Split:
    if dataset.startswith("npz:"):
        if split not in NPZ_SPLITS:
            raise UsageError(f"dataset {dataset!r} has no split {split!r}", hint=f"splits: {', '.join(NPZ_SPLITS)}")
        return _npz(dataset, split)
    if dataset not in PROVIDERS:
        raise NotFoundError("dataset", dataset, sorted(PROVIDERS))
    fn, splits = PROVIDERS[dataset]
    if split not in splits:
        raise UsageError(f"dataset {dataset!r} has no split {split!r}", hint=f"splits: {', '.join(splits)}")
    return fn(split)


def text_inputs(split: Split, card) -> list[np.ndarray]:
    """Token ids and attention masks of a split's sentences, by the card's tokenizer (the
    runner's own ``tokenize``)."""
    from edgezoo.tasks.run_embedding import tokenize
    from edgezoo.zoo.sources import resolve_assets

    require("tokenizers", extra="torch", purpose=f"tokenizing {card.id}'s evaluation sentences")
    assets = resolve_assets(card.version())
    if "tokenizer.json" not in assets:
        raise UsageError(f"{card.id}: a text model's version needs a tokenizer.json asset", hint="add it to the card's [[versions]] assets")
    ids, mask, _ = tokenize(list(split.raw), assets["tokenizer.json"], card.input.shape[1])
    return [ids, mask]


def preprocess_split(split: Split, card) -> np.ndarray:
    """All samples of ``split`` as one float32 batch in the model's input layout."""
    from edgezoo.bundle.runner import preprocess, resize_and_crop

    pre = _pre_dict(card)
    spec = {"shape": list(card.input.shape), "layout": card.input.layout}
    out = []
    for raw in split.raw:
        if card.preprocess.kind == "image":
            from PIL import Image

            raw = resize_and_crop(Image.fromarray(raw), card.preprocess.resize, card.preprocess.crop)
        out.append(preprocess(raw, pre, spec)[0])
    return np.stack(out).astype(np.float32)


def _pre_dict(card) -> dict:
    from edgezoo.schemas._strict import dump

    return dump(card.preprocess)

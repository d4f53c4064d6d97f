"""The user's samples: ``--calib-data`` (inputs) and ``--eval-data`` (inputs, and labels or
reference outputs), as ``.npy`` (one input) or ``.npz`` keyed by input name.

Samples are one list of arrays per model input ("feeds"), N rows each, float32, already
preprocessed. Non-finite values are refused here: they would silently wreck calibration."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgezoo.errors import ModelFileError, UsageError

HOLDOUT_FRACTION = 0.25  # of --calib-data kept out of calibration to measure fidelity
MIN_HOLDOUT = 4


@dataclass
class UserData:
    calib: list[np.ndarray]
    eval: list[np.ndarray]
    labels: np.ndarray | None
    reference: list[np.ndarray] | None  # reference outputs given with --eval-data
    record: dict | None  # the calibration record for the manifest
    eval_note: str


def _load(path: Path, what: str):
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist", hint="pass a .npy array (one input) or an .npz keyed by input name")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UsageError(f"{path} is not a readable .npy/.npz array file: {str(exc).splitlines()[0]}",
                         hint="save plain numeric arrays with numpy.save / numpy.savez (no pickled objects)") from None
    except OSError as exc:
        raise UsageError(f"{path} cannot be read: {exc}", hint="pass a .npy or .npz file") from None
    if isinstance(data, np.ndarray):
        return {None: data}
    with data:
        return {k: data[k] for k in data.files}


def feeds_from(path: Path, inputs, what: str, extra_keys: tuple[str, ...] = ()) -> tuple[list[np.ndarray], dict]:
    """The arrays for every model input (N x input shape), and any ``extra_keys`` present."""
    arrays = _load(path, what)
    names = [i.name for i in inputs]
    if None in arrays:
        if len(inputs) != 1:
            raise ModelFileError(f"{what} {path} is one array; the model has {len(inputs)} inputs ({', '.join(names)})",
                                 hint="save an .npz with one array per input: numpy.savez(f, " + ", ".join(f"{n}=..." for n in names) + ")")
        arrays = {names[0]: arrays[None]}
    elif len(inputs) == 1 and names[0] not in arrays:
        keys = [k for k in arrays if k not in extra_keys]
        if len(keys) == 1:  # a single unnamed array in an .npz (numpy's arr_0, or a name of the user's)
            arrays[names[0]] = arrays.pop(keys[0])
    missing = [n for n in names if n not in arrays]
    if missing:
        raise ModelFileError(f"{what} {path} has no array for input {missing[0]!r} (it has {', '.join(map(str, arrays)) or 'none'})",
                             hint="key the arrays by the model's input names: " + ", ".join(names))
    unknown = [k for k in arrays if k not in names and k not in extra_keys]
    if unknown:
        raise ModelFileError(f"{what} {path} has an array {unknown[0]!r} that is not an input of the model",
                             hint="the inputs are " + ", ".join(names) + (" (plus " + ", ".join(extra_keys) + ")" if extra_keys else ""))
    feeds = []
    for spec in inputs:
        a = arrays[spec.name]
        want = tuple(spec.shape[1:])
        if a.ndim == len(want):
            a = a[None]
        if tuple(a.shape[1:]) != want:
            raise ModelFileError(f"{what} {path}: input {spec.name!r} has samples of shape {list(a.shape[1:])}; the model takes {list(want)}",
                                 hint="save an array of shape N x " + "x".join(map(str, want)))
        if a.dtype.kind not in "fiub":
            raise ModelFileError(f"{what} {path}: input {spec.name!r} is {a.dtype}, not numbers", hint="save float32 arrays")
        a = a.astype(np.float32)
        bad = ~np.isfinite(a)
        if bad.any():
            first = int(np.argwhere(bad.reshape(len(a), -1).any(axis=1))[0][0])
            raise ModelFileError(f"{what} {path}: input {spec.name!r} has {int(bad.sum())} NaN or infinite values (first in sample {first})",
                                 hint="clean the samples; non-finite values ruin quantization ranges")
        feeds.append(a)
    counts = {len(f) for f in feeds}
    if len(counts) != 1:
        raise ModelFileError(f"{what} {path}: inputs have different sample counts {sorted(counts)}", hint="give every input the same N samples")
    if not len(feeds[0]):
        raise ModelFileError(f"{what} {path} has no samples", hint="save at least one sample")
    return feeds, {k: arrays[k] for k in extra_keys if k in arrays}


def take(feeds: list[np.ndarray], sl) -> list[np.ndarray]:
    return [f[sl] for f in feeds]


def n_samples(feeds: list[np.ndarray]) -> int:
    return len(feeds[0]) if feeds else 0


def load_user_data(card, calib_path: Path | None, eval_path: Path | None, calibration_samples: int) -> UserData:
    """Calibration and evaluation samples for a user's model.

    With ``--eval-data``, the model is judged on it (labels give the task's accuracy, a
    reference output per model output gives fidelity to it). Without it, a quarter of the
    calibration samples (at least 4) is held out and never calibrated on. With no data at
    all, fidelity is measured against fp32 on seeded noise, and said so."""
    from edgezoo.hashing import sha256_bytes

    inputs = card.inputs
    out_names = list(card.output_names)
    calib = labels = reference = None
    rec = None
    note = ""
    if calib_path is not None:
        calib, _ = feeds_from(calib_path, inputs, "calibration data")
        flat = [name for name, f in zip((i.name for i in inputs), calib) if len(f) and float(np.ptp(f)) == 0.0]
        if flat and len(flat) == len(inputs):
            raise ModelFileError(f"calibration data {calib_path}: every value of {', '.join(repr(n) for n in flat)} is the same "
                                 f"({float(calib[0].reshape(-1)[0]):g}); int8 ranges cannot be calibrated from it",
                                 hint="pass real preprocessed samples (the inputs the model sees in use)")
    if eval_path is not None:
        ev, extra = feeds_from(eval_path, inputs, "evaluation data", extra_keys=("labels", *out_names))
        if "labels" in extra:
            labels = np.asarray(extra["labels"]).reshape(-1)
            if len(labels) != len(ev[0]):
                raise ModelFileError(f"evaluation data {eval_path}: {len(labels)} labels for {len(ev[0])} samples", hint="give one label per sample")
        refs = [extra.get(n) for n in out_names]
        if any(r is not None for r in refs):
            if any(r is None for r in refs):
                raise ModelFileError(f"evaluation data {eval_path} has reference outputs for some outputs only",
                                     hint="give one for every output: " + ", ".join(out_names))
            reference = [np.asarray(r, np.float32) for r in refs]
        note = f"{len(ev[0])} samples of {eval_path.name} (--eval-data)" + (", labelled" if labels is not None else "")
    if calib is not None:
        n = n_samples(calib)
        if eval_path is None:
            hold = max(MIN_HOLDOUT, int(round(n * HOLDOUT_FRACTION)))
            if n - hold < 1:
                raise ModelFileError(f"calibration data {calib_path} has {n} samples: too few to calibrate and hold some out for fidelity",
                                     hint=f"give at least {MIN_HOLDOUT + 16} samples, or pass --eval-data")
            ev = take(calib, slice(n - hold, n))
            calib = take(calib, slice(0, n - hold))
            note = f"the last {hold} of {n} samples of {calib_path.name}, held out of calibration"
        calib = take(calib, slice(0, calibration_samples))
        rec = {"dataset": str(calib_path), "split": "calib" if eval_path else f"first {n_samples(calib)} (the rest held out)",
               "samples": n_samples(calib), "sha256": sha256_bytes(b"".join(f.tobytes() for f in calib))}
    else:
        calib = [np.zeros((0, *i.shape[1:]), np.float32) for i in inputs]
    if eval_path is None and calib_path is None:
        rng = np.random.default_rng(0)
        ev = [rng.standard_normal((32, *i.shape[1:])).astype(np.float32) for i in inputs]
        note = "32 seeded standard-normal inputs (no --calib-data or --eval-data: fidelity only, not accuracy)"
    return UserData(calib, ev, labels, reference, rec, note)

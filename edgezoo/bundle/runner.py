#!/usr/bin/env python3
"""Run an edgezoo bundle on one input and print the top classes.

This file is copied verbatim into every bundle as ``run.py``. It needs only numpy and
the bundle's runtime (onnxruntime; ai-edge-litert, or tflite-runtime on older images;
openvino), plus Pillow when the input is an image file.

    python run.py INPUT [--top K] [--threads N] [--json]

INPUT is a ``.npy`` file holding one raw sample (for example an 8x8 digit with values
0-16, as scikit-learn provides them) or an image file (``.png``/``.jpg``). The
preprocessing written in ``manifest.json`` (scale, mean, std, resize, crop, layout) is
applied here, so the raw input is what you would capture on the device.

Exit codes: 0 ok, 2 bad input, 3 runtime missing or failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


class InputError(Exception):
    pass


def resize_and_crop(image, resize: int, crop: int):
    """Resize the shorter side to ``resize`` (bilinear), then centre-crop ``crop`` pixels.
    ``image`` is a PIL image; returns an HWC uint8 array."""
    w, h = image.size
    if w <= h:
        new_w, new_h = resize, max(1, round(h * resize / w))
    else:
        new_w, new_h = max(1, round(w * resize / h)), resize
    from PIL import Image

    image = image.convert("RGB").resize((new_w, new_h), Image.BILINEAR)
    left = (new_w - crop) // 2
    top = (new_h - crop) // 2
    return np.asarray(image.crop((left, top, left + crop, top + crop)), dtype=np.uint8)


def preprocess(raw, pre: dict, input_spec: dict) -> np.ndarray:
    """Turn one raw sample into the model's input tensor (batch of one, float32).

    ``raw`` is an array of the input's spatial shape (``kind = "array"``) or an HWC
    uint8 image already resized and cropped (``kind = "image"``).
    """
    shape = list(input_spec["shape"])
    layout = input_spec["layout"]
    x = np.asarray(raw, dtype=np.float32)
    if pre["kind"] == "tensor":
        if list(x.shape) not in (shape, shape[1:]):
            raise InputError(f"input has shape {list(x.shape)}; this model takes {shape}")
        return x.reshape(shape)
    if pre["kind"] == "array":
        expected = shape[2:] if layout == "NCHW" else shape[1:]
        if list(x.shape) == shape:
            x = x.reshape(expected if len(expected) else x.shape)
        if list(x.shape) == expected and layout == "NCHW":
            x = x[None, ...]  # add the channel axis
        elif list(x.shape) != expected:
            raise InputError(f"input has shape {list(x.shape)}; this model takes {expected} raw values")
        lo, hi = pre["raw_range"]
        if x.size and (x.min() < lo - 1e-6 or x.max() > hi + 1e-6):
            raise InputError(f"input values span {x.min():g}..{x.max():g}; expected raw values in {lo:g}..{hi:g}")
        chw = x
    else:
        if x.ndim != 3 or x.shape[2] != 3:
            raise InputError(f"image must be HxWx3 RGB, got shape {list(x.shape)}")
        chw = x.transpose(2, 0, 1)  # HWC -> CHW
    mean = np.asarray(pre["mean"], dtype=np.float32)
    std = np.asarray(pre["std"], dtype=np.float32)
    if layout == "NCHW":
        mean = mean.reshape(-1, *([1] * (chw.ndim - 1)))
        std = std.reshape(-1, *([1] * (chw.ndim - 1)))
    out = (chw * np.float32(pre["scale"]) - mean) / std
    out = out.astype(np.float32)[None, ...]
    if list(out.shape) != shape:
        raise InputError(f"preprocessed input has shape {list(out.shape)}; the model takes {shape}")
    return out


def load_raw(path: Path, pre: dict):
    if not path.is_file():
        raise InputError(f"no such input file: {path}")
    if path.suffix == ".npy":
        try:
            raw = np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise InputError(f"{path} is not a readable .npy array: {exc}") from None
        if pre["kind"] == "image":
            if raw.ndim != 3 or raw.shape[2] != 3:
                raise InputError(f"{path}: an image array must be HxWx3, got {list(raw.shape)}")
            from PIL import Image

            raw = resize_and_crop(Image.fromarray(raw.astype(np.uint8)), pre["resize"], pre["crop"])
        return raw
    if pre["kind"] != "image":
        raise InputError(f"this model takes a .npy array of raw values, not {path.suffix or 'a file without extension'}")
    try:
        from PIL import Image
    except ImportError:
        raise InputError("reading image files needs Pillow: pip install pillow (or pass a .npy array)") from None
    try:
        image = Image.open(path)
    except Exception as exc:  # PIL raises several types for unreadable files
        raise InputError(f"{path} is not a readable image: {exc}") from None
    return resize_and_crop(image, pre["resize"], pre["crop"])


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


class _Onnx:
    def __init__(self, path: Path, threads: int, config: dict):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("this bundle needs onnxruntime: pip install onnxruntime") from None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name

    def run(self, x):
        return self.sess.run(None, {self.name: x})[0]


class _Litert:
    def __init__(self, path: Path, threads: int, config: dict):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            try:  # older Raspberry Pi OS images ship the predecessor
                from tflite_runtime.interpreter import Interpreter
            except ImportError:
                raise RuntimeError("this bundle needs ai-edge-litert (or tflite-runtime): pip install ai-edge-litert") from None
        self.it = Interpreter(model_path=str(path), num_threads=threads)
        self.it.allocate_tensors()
        self.inp = self.it.get_input_details()[0]
        self.out = self.it.get_output_details()[0]

    def run(self, x):
        d = self.inp
        if d["dtype"] in (np.int8, np.uint8):  # full-integer model: quantize with the tensor's own scale
            scale, zero = d["quantization"]
            info = np.iinfo(d["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        self.it.set_tensor(d["index"], x.astype(d["dtype"]))
        self.it.invoke()
        y = self.it.get_tensor(self.out["index"])
        if self.out["dtype"] in (np.int8, np.uint8):
            scale, zero = self.out["quantization"]
            y = (y.astype(np.float32) - zero) * scale
        return y


class _Openvino:
    def __init__(self, path: Path, threads: int, config: dict):
        try:
            import openvino as ov
        except ImportError:
            raise RuntimeError("this bundle needs openvino: pip install openvino") from None
        cfg = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, **config}
        self.request = ov.Core().compile_model(str(path), "CPU", cfg).create_infer_request()

    def run(self, x):
        self.request.infer({0: x})
        return np.array(self.request.get_output_tensor(0).data)


class _Tflm:
    """The TensorFlow Lite Micro interpreter on the host (the tflite-micro package)."""

    def __init__(self, path: Path, threads: int, config: dict):
        try:
            from tflite_micro import runtime
        except ImportError:
            raise RuntimeError("this bundle needs tflite-micro on the host: pip install tflite-micro") from None
        self.it = runtime.Interpreter.from_bytes(path.read_bytes(), arena_size=int(config["arena_bytes"]))
        self.inp, self.out = self.it.get_input_details(0), self.it.get_output_details(0)

    def run(self, x):
        q = self.inp["quantization_parameters"]
        x = np.clip(np.round(x / q["scales"][0] + q["zero_points"][0]), -128, 127).astype(self.inp["dtype"])
        self.it.set_input(x, 0)
        self.it.invoke()
        oq = self.out["quantization_parameters"]
        return (self.it.get_output(0).astype(np.float32) - oq["zero_points"][0]) * oq["scales"][0]


RUNTIMES = {"onnxruntime": _Onnx, "litert": _Litert, "openvino": _Openvino, "tflite-micro": _Tflm}


def make_session(manifest: dict, threads: int):
    rt = manifest["runtime"]
    return RUNTIMES[rt["name"]](HERE / manifest["model_file"], threads, rt.get("config", {}))


def main(argv=None) -> int:
    manifest = json.loads((HERE / "manifest.json").read_text())
    parser = argparse.ArgumentParser(description=f"Run {manifest['model']['id']} ({manifest['precision']}) on one input.")
    parser.add_argument("input", type=Path, help=".npy raw sample or image file")
    parser.add_argument("--top", type=int, default=3, help="how many classes to print (default 3)")
    parser.add_argument("--threads", type=int, default=manifest["target"]["threads"], help="intra-op threads")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)

    pre = manifest["preprocess"]
    input_spec = manifest["inputs"][0]
    labels = manifest["labels"]
    try:
        x = preprocess(load_raw(args.input, pre), pre, input_spec)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        logits = make_session(manifest, args.threads).run(x)
    except Exception as exc:
        print(f"error: the runtime failed: {exc}", file=sys.stderr)
        return 3
    probs = softmax(np.asarray(logits, dtype=np.float64).reshape(-1))
    order = np.argsort(-probs, kind="stable")[: max(1, args.top)]
    top = [{"index": int(i), "label": labels[i] if i < len(labels) else str(i), "score": float(probs[i])} for i in order]
    if args.json:
        print(json.dumps({"model": manifest["model"]["id"], "precision": manifest["precision"], "top": top}))
    else:
        for t in top:
            print(f"{t['label']:>24}  {t['score']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The bundle runner's core, and how run.py is assembled from it.

Everything between the core marker line below and the assembly section is the
core of every bundle's ``run.py``: argument parsing, the card's preprocessing, integer
(de)quantisation. The runtime plug-in adds its ``Session`` class and the task plug-in its
``add_arguments``/``present``/``render`` functions, each from a small standalone file, so
run.py stays one file that needs only numpy and the bundle's runtime on the device.
"""

# --- run.py --- core
#!/usr/bin/env python3
"""Run an edgezoo bundle on one input and print the task's result.

{requires}

    python run.py INPUT [--threads N] [--json] [task options, see --help]
    python run.py --benchmark [--runs 50 --rounds 5] [--json]    # latency on this machine

INPUT is a ``.npy`` file holding one raw sample (for example an 8x8 digit with values
0-16, as scikit-learn provides them) or an image file (``.png``/``.jpg``); a model with
several inputs takes an ``.npz`` with one array per input name (see manifest.json). The
preprocessing written in ``manifest.json`` (scale, mean, std, resize, crop, layout) is
applied here, so the raw input is what you would capture on the device.

Exit codes: 0 ok, 2 bad input, 3 runtime missing or failed.
"""
# Assembled by edgezoo from edgezoo/bundle/runner.py (this core), the runtime's part
# ({runtime}) and the task's part ({task}).

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


class InputError(Exception):
    pass


class RuntimeMissing(Exception):
    pass


def quantize(x, dtype, scale, zero_point):
    """float32 -> an integer input tensor with its own scale and zero point (full-integer models)."""
    dtype = np.dtype(dtype)
    if dtype.kind not in "iu" or not scale:
        return np.asarray(x, dtype=dtype)
    lim = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(x, np.float32) / scale + zero_point), lim.min, lim.max).astype(dtype)


def dequantize(y, scale, zero_point):
    y = np.asarray(y)
    if y.dtype.kind not in "iu" or not scale:
        return y.astype(np.float32)
    return (y.astype(np.float32) - zero_point) * np.float32(scale)


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
    layout = input_spec.get("layout", "")
    x = np.asarray(raw, dtype=np.float32)
    if pre["kind"] in ("tensor", "audio"):
        if list(x.shape) not in (shape, shape[1:]):
            raise InputError(f"input has shape {list(x.shape)}; this model takes {shape}")
        return x.reshape(shape)
    if pre["kind"] == "features":
        if x.size != shape[-1]:
            raise InputError(f"input has {x.size} features; this model takes {shape[-1]}"
                             + (f" ({', '.join(pre['features'])})" if pre.get("features") else ""))
        return ((x.reshape(shape) * np.float32(pre["scale"]) - np.asarray(pre["mean"], np.float32))
                / np.asarray(pre["std"], np.float32)).astype(np.float32)
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
        chw = x if layout == "NHWC" else x.transpose(2, 0, 1)  # HWC -> CHW, unless the model takes NHWC (TFLite)
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
    if pre["kind"] == "features" and path.suffix.lower() in (".csv", ".txt"):
        return read_csv_row(path, pre.get("features") or [])
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
    if min(image.size) < pre["crop"]:
        print(f"note: {path} is {image.size[0]}x{image.size[1]} pixels, smaller than the model's {pre['crop']}x{pre['crop']} input: "
              "it is upscaled, and small details may be lost", file=sys.stderr)
    return resize_and_crop(image, pre["resize"], pre["crop"])

def read_csv_row(path: Path, names: list):
    """The first data row of a CSV file as floats. With a header line, columns are matched
    to the model's features by name (any order, extra columns ignored)."""
    import csv

    try:
        rows = [r for r in csv.reader(path.read_text(encoding="utf-8-sig").splitlines()) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a readable CSV file: {exc}") from None
    if not rows:
        raise InputError(f"{path} has no rows")

    def numbers(row):
        try:
            return [float(c) for c in row]
        except ValueError:
            return None

    header = None if numbers(rows[0]) is not None else [c.strip() for c in rows[0]]
    data = rows[1:] if header else rows
    if not data:
        raise InputError(f"{path} has a header but no data row")
    values = numbers(data[0])
    if values is None:
        raise InputError(f"{path}: the first data row is not all numbers: {data[0][:6]}")
    if len(data) > 1:
        print(f"note: {path} has {len(data)} rows; running the first", file=sys.stderr)
    if header and names:
        missing = [n for n in names if n not in header]
        if missing:
            raise InputError(f"{path}: the header has no column {missing[0]!r}; the model reads {', '.join(names)}")
        values = [values[header.index(n)] for n in names]
    return np.asarray(values, dtype=np.float32)


def read_wav(path: Path, rate: int):
    """Mono float32 samples in -1..1 from a 16-bit PCM WAV at ``rate`` Hz; anything else is
    refused with what to run instead (task parts that read audio use this)."""
    import wave

    try:
        with wave.open(str(path), "rb") as w:
            got, channels, width, n = w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()
            data = w.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise InputError(f"{path} is not a readable PCM WAV file: {exc}") from None
    if channels != 1:
        raise InputError(f"{path} has {channels} channels; this model takes mono audio (convert: sox {path} -c 1 mono.wav)")
    if got != rate:
        raise InputError(f"{path} is sampled at {got} Hz; this model takes {rate} Hz mono (resample: sox {path} -r {rate} resampled.wav)")
    if width != 2:
        raise InputError(f"{path} has {8 * width}-bit samples; this runner reads 16-bit PCM (convert: sox {path} -b 16 pcm16.wav)")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


def load_inputs(path: Path, pre: dict, specs: list) -> list:
    """One preprocessed tensor per model input: an .npz keyed by input name, else one sample."""
    names = [s["name"] for s in specs]
    if path.suffix == ".npz":
        if pre["kind"] != "tensor":
            raise InputError("this model takes one raw sample (.npy or an image), not an .npz")
        if not path.is_file():
            raise InputError(f"no such input file: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (ValueError, OSError) as exc:
            raise InputError(f"{path} is not a readable .npz: {exc}") from None
        if len(specs) == 1 and names[0] not in arrays and len(arrays) == 1:
            arrays = {names[0]: next(iter(arrays.values()))}
        missing = [n for n in names if n not in arrays]
        if missing:
            raise InputError(f"{path} has no array {missing[0]!r}; the model's inputs are {', '.join(names)}")
        return [preprocess(arrays[s["name"]], pre, s) for s in specs]
    if len(specs) > 1:
        raise InputError(f"this model takes {len(specs)} inputs ({', '.join(names)}): pass an .npz with one array per input name")
    return [preprocess(load_raw(path, pre), pre, specs[0])]

# @@PARTS@@


# the packages whose version names each runtime (the first one installed is reported)
RUNTIME_PACKAGES = {"litert": ("ai-edge-litert", "tflite-runtime"), "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
                    "openvino": ("openvino",), "executorch": ("executorch",), "tflite-micro": ("tflite-micro",)}


def device_identity(runtime: str) -> dict:
    """Who measured: the machine, its CPU, the Python and the runtime that ran the model."""
    import platform
    from importlib import metadata

    cpu = platform.processor() or platform.machine()
    try:  # x86: "model name"; Raspberry Pi: "Model" (the board); other Arm: "Hardware"
        info = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                key, value = (x.strip() for x in line.split(":", 1))
                info.setdefault(key.lower(), value)
        for key in ("model name", "cpu model", "model", "hardware"):
            if info.get(key) and not info[key].isdigit():
                cpu = info[key]
                break
    except OSError:
        pass
    version = ""
    for package in RUNTIME_PACKAGES.get(runtime, (runtime,)):
        try:
            version = f"{package} {metadata.version(package)}"
            break
        except metadata.PackageNotFoundError:
            continue
    u = platform.uname()
    return {"hostname": u.node, "uname": f"{u.system} {u.release} {u.version} {u.machine}", "machine": u.machine,
            "cpu": cpu, "cpus": __import__("os").cpu_count() or 1, "python": platform.python_version(),
            "runtime": runtime, "runtime_version": version}


def benchmark(session, feeds, warmup: int, runs: int, rounds: int) -> dict:
    """Time the model alone (no pre/post-processing): warm up, then ``rounds`` rounds of
    ``runs`` invocations; the per-round medians show how steady the figure is."""
    import time

    for _ in range(warmup):
        session.run(feeds)
    times, medians = [], []
    for _ in range(rounds):
        chunk = []
        for _ in range(runs):
            t = time.perf_counter()
            session.run(feeds)
            chunk.append((time.perf_counter() - t) * 1000.0)
        medians.append(float(np.median(chunk)))
        times.extend(chunk)
    arr = np.asarray(times)
    q = {str(p): float(np.percentile(arr, p)) for p in (1, 10, 25, 50, 75, 90, 99)}
    return {"runs": len(times), "warmup": warmup, "p50_ms": q["50"], "p90_ms": q["90"], "mean_ms": float(arr.mean()),
            "min_ms": float(arr.min()), "round_p50_ms": medians, "quantiles_ms": q}


def synthetic_inputs(specs: list) -> list:
    """Inputs of the model's own shapes for timing: seeded noise for float (and quantized)
    inputs, zeros for integer ones such as token ids."""
    rng = np.random.default_rng(0)
    feeds = []
    for s in specs:
        kind = np.dtype(s["dtype"]).kind
        if kind == "f" or s.get("quantization"):
            feeds.append(rng.standard_normal(s["shape"]).astype(np.float32))
        else:
            feeds.append(np.zeros(s["shape"], dtype=s["dtype"]))
    return feeds


def open_session(manifest: dict, threads: int):
    rt = manifest["runtime"]
    return Session(HERE / manifest["model_file"], threads, rt.get("config", {}))  # noqa: F821 (the runtime part)


def failed(exc: Exception) -> int:
    """One line on stderr and run.py's exit code: 2 bad input, 3 runtime missing or failed."""
    if isinstance(exc, InputError):
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if isinstance(exc, RuntimeMissing):
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(f"error: the runtime failed: {exc}", file=sys.stderr)
    return 3


def main(argv=None) -> int:
    manifest = json.loads((HERE / "manifest.json").read_text())
    parser = argparse.ArgumentParser(description=f"Run {manifest['model']['id']} ({manifest['precision']}) on one input.")
    parser.add_argument("input", type=Path, nargs="?", help=".npy raw sample, image file, CSV row (tabular models), or .npz keyed by input name")
    parser.add_argument("--threads", type=int, default=manifest["target"]["threads"], help="intra-op threads")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--benchmark", action="store_true", help="time the model on this machine instead (INPUT optional: "
                        "synthetic inputs of the model's shapes); prints p50/p90 latency and who measured")
    parser.add_argument("--runs", type=int, default=50, help="--benchmark: invocations per round (default 50)")
    parser.add_argument("--rounds", type=int, default=5, help="--benchmark: rounds, whose medians give the spread (default 5)")
    parser.add_argument("--warmup", type=int, default=10, help="--benchmark: untimed invocations first (default 10)")
    add_arguments(parser)  # noqa: F821 (the task part of run.py)
    args = parser.parse_args(argv)
    if args.benchmark:
        return run_benchmark(manifest, args)
    if args.input is None:
        parser.error("INPUT is required (or pass --benchmark)")

    pre = manifest["preprocess"]
    # a task part may read its own inputs (a WAV file, a sentence) and drive the session
    # itself (streaming models): read_input / infer, when it defines them
    task_reads, task_infers = globals().get("read_input"), globals().get("infer")
    try:
        feeds = task_reads(args.input, manifest) if task_reads else load_inputs(args.input, pre, manifest["inputs"])
        arrays = [np.asarray(x) for x in (feeds if isinstance(feeds, list) else [feeds]) if not isinstance(x, str)]
        if not all(np.all(np.isfinite(a)) for a in arrays if a.dtype.kind == "f"):
            raise InputError("input contains NaN or infinite values")
    except InputError as exc:
        return failed(exc)
    try:
        session = open_session(manifest, args.threads)
        outputs = task_infers(session, feeds, manifest) if task_infers else session.run(feeds)
    except Exception as exc:  # a task part's InputError (a tokenizer missing, say), or the runtime's own failure
        return failed(exc)
    result = present(outputs, manifest, args)  # noqa: F821 (the task part)
    if args.json:
        print(json.dumps({"model": manifest["model"]["id"], "precision": manifest["precision"], **result}))
    else:
        print(render(result))  # noqa: F821 (the task part)
    return 0


def run_benchmark(manifest: dict, args) -> int:
    try:
        feeds = synthetic_inputs(manifest["inputs"]) if args.input is None else load_inputs(args.input, manifest["preprocess"], manifest["inputs"])
    except InputError as exc:
        return failed(exc)
    if min(args.runs, args.rounds) < 1 or args.warmup < 0:
        print("error: --runs and --rounds must be at least 1, --warmup at least 0", file=sys.stderr)
        return 2
    rt = manifest["runtime"]
    try:
        import time

        t0 = time.perf_counter()
        session = open_session(manifest, args.threads)
        load_ms = (time.perf_counter() - t0) * 1000.0
        result = benchmark(session, feeds, args.warmup, args.runs, args.rounds)
    except Exception as exc:  # the runtime missing or failing, whatever its type
        return failed(exc)
    out = {"model": manifest["model"]["id"], "bundle": manifest["bundle"], "precision": manifest["precision"],
           "format": rt["format"], "threads": args.threads, "load_ms": load_ms, **result,
           "inputs": "synthetic" if args.input is None else str(args.input), "device": device_identity(rt["name"])}
    if args.json:
        print(json.dumps(out))
    else:
        d = out["device"]
        spread = (max(result["round_p50_ms"]) - min(result["round_p50_ms"])) / result["p50_ms"] * 100 if result["p50_ms"] else 0.0
        print(f"{out['model']} ({out['precision']}, {out['format']}) on {d['hostname']} ({d['cpu']}, {d['machine']}), "
              f"{d['runtime_version'] or d['runtime']}, {args.threads} thread(s)")
        print(f"p50 {result['p50_ms']:.3f} ms  p90 {result['p90_ms']:.3f} ms  min {result['min_ms']:.3f} ms  "
              f"({result['runs']} runs in {args.rounds} rounds, round medians within {spread:.1f} %)")
    return 0


if __name__ == "__main__":
    sys.exit(main())


# -- assembly (edgezoo side; not part of run.py) ------------------------------------------

MARKER = "# --- run.py ---"


def module_source(module: str) -> str:
    """The part of a runner module below its marker line, read from the file (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise ModuleNotFoundError(f"runner part {module!r} was not found")
    text = Path(spec.origin).read_text(encoding="utf-8")
    if MARKER not in text:
        raise ValueError(f"runner part {module} has no {MARKER!r} line")
    return text.split(MARKER, 1)[1].strip("\n") + "\n"


def assemble(runtime, task) -> str:
    """run.py for a bundle: this core with the runtime's Session and the task's presentation."""
    core = Path(__file__).read_text(encoding="utf-8").split(MARKER + " core", 1)[1].split("# -- assembly", 1)[0]
    head, tail = core.split("# @@PARTS@@", 1)
    requires = "It needs " + ", ".join(runtime.runner_requires) + ", plus Pillow when the input is an image file."
    head = head.replace("{requires}", requires).replace("{runtime}", runtime.runner_module).replace("{task}", task.runner_module)
    return (head.strip("\n") + "\n\n\n" + runtime.runner_source().strip("\n") + "\n\n\n" + task.runner_source().strip("\n")
            + "\n\n" + tail.rstrip("\n") + "\n")

"""Plans: everything an export will do, decided and checked before any work starts.

``edgezoo export --dry-run`` prints the plan; a plan that cannot run (a precision the
target lacks, an output that exists, a model file that is not ONNX, a shape that does
not match) fails here with one line, before minutes are spent.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgezoo.errors import ModelFileError, OutputExistsError, UsageError
from edgezoo.schemas.card import Card, Evaluation, InputSpec, Origin, Preprocess, Reference, Version, WeightsSource
from edgezoo.schemas.target import PRECISIONS, Quantization, Target


@dataclass(frozen=True)
class Plan:
    model_id: str
    model_version: str
    source: str  # "zoo" | "onnx-file"
    weights: str  # "pretrained" | "random" | "local"
    target_id: str
    target_sha256: str  # of the profile file this plan was made from
    runtime: str
    format: str
    opset: int
    precision: str
    threads: int
    calibration_method: str
    calibration_samples: int
    quantization: Quantization | None
    steps: tuple[str, ...]
    bundle_dir: Path
    archive: Path
    warnings: tuple[str, ...] = ()
    source_path: Path | None = None
    weights_path: Path | None = None
    calib_data: Path | None = None
    force: bool = False
    allow_over_budget: bool = False
    tflite_quantizer: str = "auto"
    card: Card = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    target: Target = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def summary(self) -> dict:
        from edgezoo.schemas._strict import dump

        out = {
            "model": self.model_id,
            "version": self.model_version,
            "source": str(self.source_path) if self.source_path else "zoo",
            "weights": self.weights if self.weights != "local" else f"local: {self.weights_path}",
            "target": self.target_id,
            "runtime": self.runtime,
            "format": self.format,
            "opset": self.opset,
            "precision": self.precision,
            "threads": self.threads,
            "steps": list(self.steps),
            "bundle": str(self.bundle_dir),
            "archive": str(self.archive),
            "warnings": list(self.warnings),
        }
        if self.quantization is not None:
            from edgezoo import registry

            out["quantization"] = dump(self.quantization)
            out["quantization"].update(registry.format(self.format).summary(self))
            out["calibration"] = {"method": self.calibration_method, "samples": self.calibration_samples}
        return out


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().replace(",", "x").split("x") if d)
    except ValueError:
        raise UsageError(f"--input-shape {text!r} is not a shape", hint="write it like 1x3x224x224") from None
    if not dims or any(d <= 0 for d in dims):
        raise UsageError(f"--input-shape {text!r} must be positive integers", hint="write it like 1x3x224x224")
    return dims


def card_for_onnx(path: Path, input_shape: tuple[int, ...] | None, license: str | None) -> Card:
    """A minimal card for a user's own ONNX file: its contract is read from the file."""
    from edgezoo.errors import require

    onnx = require("onnx", extra="onnx", purpose="reading ONNX files")
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist", hint="check the path, or name a zoo model from `edgezoo list`")
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFileError(f"{path} is not a valid ONNX model: {first[:200]}", hint="export it again, or check that it is the right file") from None
    inits = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise ModelFileError(f"{path} has {len(inputs)} inputs; edgezoo exports single-input models", hint="wrap the model so it takes one tensor")
    inp = inputs[0]
    if inp.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ModelFileError(f"{path}: input {inp.name!r} is not float32", hint="export the model with a float32 input")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inp.type.tensor_type.shape.dim]
    if input_shape is None:
        if any(d is None for d in dims):
            raise UsageError(f"{path}: input {inp.name!r} has dynamic dimensions {dims}", hint="pass --input-shape, e.g. --input-shape 1x3x224x224")
        shape = tuple(dims)
    else:
        shape = input_shape
        if len(shape) != len(dims) or any(d is not None and d != s for d, s in zip(dims, shape)):
            raise ModelFileError(
                f"--input-shape {'x'.join(map(str, shape))} does not match {path.name}'s input {inp.name!r} of shape "
                + "x".join("?" if d is None else str(d) for d in dims),
                hint="give the model's own shape, fixing only its dynamic dimensions",
            )
    if shape[0] != 1:
        raise UsageError(f"batch size {shape[0]} is not supported; edge bundles run one sample at a time", hint="use a batch dimension of 1")
    convs = sum(1 for n in model.graph.node if n.op_type in ("Conv", "ConvTranspose"))
    stat = path.stat()
    from edgezoo.hashing import sha256_file

    digest = sha256_file(path)
    layout = "NCHW" if len(shape) == 4 else "NC"
    return Card(
        id=_slug(path.stem),
        name=path.name,
        task="image-classification",
        summary=f"User model {path.name}",
        description=f"A model brought by the user from {path}.",
        license=license or "NOASSERTION",
        license_notes="" if license else "No licence was given (--license); the bundle records NOASSERTION.",
        architecture="onnx-file",
        params=sum(_numel(i) for i in model.graph.initializer),
        macs=0,
        labels="",
        default_version="local",
        origin=Origin(authors="user", url=str(path)),
        input=InputSpec(name=inp.name, shape=shape, dtype="float32", layout=layout),
        preprocess=Preprocess(kind="tensor", scale=1.0, mean=(0.0,), std=(1.0,), raw_range=(float("-inf"), float("inf"))),
        evaluation=Evaluation(dataset="user", calibration_split="calib", eval_split="calib", metric="fidelity", description="samples given with --calib-data"),
        versions=(
            Version(
                version="local",
                weights=WeightsSource(kind="package", sha256=digest, bytes=stat.st_size, format="safetensors", path=str(path)),
                reference=Reference(dataset="none", metric="none", value=0.0, source="user model"),
                released="",
                training="unknown",
            ),
        ),
        tags=("cnn",) if convs else (),
    )


def _numel(init) -> int:
    n = 1
    for d in init.dims:
        n *= d
    return n


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^a-z0-9_\-]+", "-", text.lower()).strip("-") or "model"


def check_writable(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".edgezoo-probe-", dir=out_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"output folder {out_dir} is not writable: {exc.strerror}", hint="choose another folder with --out") from None


def make_plan(
    card: Card,
    target: Target,
    *,
    precision: str | None = None,
    fmt: str | None = None,
    weights: str = "pretrained",
    weights_path: Path | None = None,
    source_path: Path | None = None,
    calib_data: Path | None = None,
    out_dir: Path = Path("dist"),
    calibration_method: str | None = None,
    calibration_samples: int | None = None,
    threads: int | None = None,
    force: bool = False,
    allow_over_budget: bool = False,
    tflite_quantizer: str = "auto",
    for_check: bool = False,
    target_sha256: str = "",
) -> Plan:
    """``for_check``: the plan only feeds ``edgezoo check``; nothing will be written, so the
    output and calibration-data checks do not apply."""
    from edgezoo import registry
    from edgezoo.targets import quant_scheme

    fmt, spec = target.format(fmt)
    plugin = registry.format(fmt)
    precision = precision or spec.default_precision
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", hint=f"choose one of {', '.join(PRECISIONS)}")
    if precision not in spec.precisions:
        raise UsageError(
            f"target {target.id} ({fmt}) does not support precision {precision!r}",
            hint=f"it supports {', '.join(spec.precisions)}",
        )
    warnings = []
    if source_path is not None and plugin.built_from != "onnx":
        onnx_ok = [n for n in target.formats if registry.format(n).built_from == "onnx"]
        raise UsageError(
            f"format {fmt} is built from a PyTorch model, and an ONNX file cannot be converted to it yet (target {target.id})",
            hint="export from the PyTorch model" + (", or pass " + " or ".join(f"--format {n}" for n in onnx_ok) if onnx_ok else
                                                    f"; target {target.id} takes no format built from ONNX"),
        )
    if spec.proxy:
        warnings.append(f"host measurements are a proxy: {spec.proxy}")
    version = card.version()
    if source_path is not None:
        weights = "local"
    if precision == "dynamic-int8" and "cnn" in card.tags:
        how = plugin.dynamic_int8_note or "quantizes activations at run time"
        warnings.append(
            f"dynamic-int8 on a convolutional model {how}, typically several times slower than fp32 "
            "(activations are quantized at run time on every call); static int8 is the fast choice"
        )
    if weights == "random":
        warnings.append("random weights: accuracy figures are meaningless; this bundle is for latency and size only")
    if precision == "fp16" and target.hardware.arch == "x86_64":
        warnings.append(f"fp16 on an x86-64 CPU halves the file but {spec.runtime} computes in fp32: expect no speed-up")
    calib_samples = calibration_samples or target.calibration.samples
    if plugin.check_builds_variant and calibration_samples is not None and calibration_samples < 16:
        raise UsageError(
            f"{calibration_samples} calibration samples are too few for full-integer quantization",
            hint="use --calibration-samples 16 or more (the profile's default is " + str(target.calibration.samples) + ")",
        )
    if precision == "int8" and source_path is not None and calib_data is None and not for_check:
        raise UsageError(
            "static int8 needs calibration data for your own model, and none was given",
            hint="pass --calib-data samples.npy (N x input shape, already preprocessed), or choose --precision fp32, fp16 or dynamic-int8",
        )
    if calib_data is not None and not calib_data.is_file():
        raise UsageError(f"calibration data {calib_data} does not exist", hint="pass a .npy file of N preprocessed samples")
    host = os.cpu_count() or 1
    n_threads = threads or min(target.threads, host)
    if threads and threads > host:
        warnings.append(f"{threads} threads asked on a host with {host} CPUs: latency will be oversubscribed")
    # the target's default format keeps the short name; another format is named in it
    name = f"{card.id}-{target.id}-{precision}" if fmt == target.default_format else f"{card.id}-{target.id}-{fmt}-{precision}"
    bundle_dir = out_dir / name
    archive = out_dir / f"{name}.tar.gz"
    existing = [p for p in (bundle_dir, archive) if p.exists()]
    if existing and not force and not for_check:
        raise OutputExistsError(f"{existing[0]} already exists", hint="pass --force to replace it, or choose another --out")
    steps = [] if source_path is not None else ["fetch-weights" if weights != "random" else "random-weights"]
    if plugin.built_from == "onnx":
        steps += plugin.source_steps("onnx-file" if source_path is not None else "zoo")
    steps += plugin.steps(precision, spec)
    steps += ["evaluate", "benchmark-latency", "bundle"]
    return Plan(
        model_id=card.id,
        model_version=version.version,
        source="onnx-file" if source_path is not None else "zoo",
        weights=weights,
        target_id=target.id,
        target_sha256=target_sha256,
        runtime=spec.runtime,
        format=fmt,
        opset=plugin.opset(spec),
        precision=precision,
        threads=n_threads,
        calibration_method=calibration_method or target.calibration.method,
        calibration_samples=calib_samples,
        quantization=quant_scheme(target, fmt) if precision == "int8" else None,
        steps=tuple(steps),
        bundle_dir=bundle_dir,
        archive=archive,
        warnings=tuple(warnings),
        source_path=source_path,
        weights_path=weights_path,
        calib_data=calib_data,
        force=force,
        allow_over_budget=allow_over_budget,
        tflite_quantizer=tflite_quantizer,
        card=card,
        target=target,
    )

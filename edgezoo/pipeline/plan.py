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

from edgezoo.errors import OutputExistsError, UsageError
from edgezoo.schemas.card import Card
from edgezoo.schemas.target import PRECISIONS, Quantization, Target


@dataclass(frozen=True)
class Plan:
    model_id: str
    model_version: str
    source: str  # "zoo" | "onnx-file" | "torch-factory" | "pt2"
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
    eval_data: Path | None = None
    source_spec: str = ""  # what the user typed (module.py:factory keeps its factory name)
    min_opset: int = 0  # an ONNX file below it is upgraded (the quantizer needs it)
    calibration_samples_given: bool = False  # --calibration-samples was passed (a shortfall is then said)
    force: bool = False
    allow_over_budget: bool = False
    tflite_quantizer: str = "auto"
    prune: object = None  # edgezoo.stages.prune.PruneSpec
    finetune_epochs: int = 0
    keep_float: tuple[str, ...] = ()  # layers (fp32 ONNX node names) left in float in the int8 variant
    keep_float_auto: bool = False  # choose them: the fewest, most sensitive layers that meet max_accuracy_drop
    max_accuracy_drop: float | None = None  # --max-accuracy-drop (default: the profile's budget)
    min_sqnr_db: float | None = None  # --min-sqnr: fidelity goal of --keep-float auto
    verify_pruning: bool = True  # build the unpruned model beside the pruned one (optimize measures it as a candidate instead)
    lineage_prefix: tuple = ()  # steps recorded before the export's own (optimize: the search)
    card: Card = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    target: Target = field(default=None, repr=False, compare=False)  # type: ignore[assignment]
    source_model: object = field(default=None, repr=False, compare=False)  # the user's PyTorch module, loaded while planning

    def summary(self) -> dict:
        from edgezoo.schemas._strict import dump

        out = {
            "model": self.model_id,
            "version": self.model_version,
            "source": (self.source_spec or str(self.source_path)) if self.source_path else "zoo",
            "source_kind": self.source,
            "task": self.card.task if self.card is not None else "",
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
            if self.keep_float_auto or self.keep_float:
                out["keep_float"] = "auto" if self.keep_float_auto else list(self.keep_float)
        if self.prune is not None:
            out["prune"] = self.prune.label()
        if self.finetune_epochs:
            out["finetune_epochs"] = self.finetune_epochs
        return out


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in text.lower().replace(",", "x").split("x") if d)
    except ValueError:
        raise UsageError(f"--input-shape {text!r} is not a shape", hint="write it like 1x3x224x224") from None
    if not dims or any(d <= 0 for d in dims):
        raise UsageError(f"--input-shape {text!r} must be positive integers", hint="write it like 1x3x224x224")
    return dims


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
    source_kind: str = "zoo",
    source_spec: str = "",
    source_model: object = None,
    calib_data: Path | None = None,
    eval_data: Path | None = None,
    out_dir: Path = Path("dist"),
    calibration_method: str | None = None,
    calibration_samples: int | None = None,
    threads: int | None = None,
    force: bool = False,
    allow_over_budget: bool = False,
    tflite_quantizer: str = "auto",
    for_check: bool = False,
    target_sha256: str = "",
    prune=None,
    finetune_epochs: int = 0,
    keep_float: tuple[str, ...] | str = (),
    max_accuracy_drop: float | None = None,
    min_sqnr_db: float | None = None,
    verify_pruning: bool = True,
) -> Plan:
    """``for_check``: the plan only feeds ``edgezoo check``; nothing will be written, so the
    output and calibration-data checks do not apply."""
    from edgezoo import registry
    from edgezoo.targets import quant_scheme

    tflite_src = source_kind == "tflite-file" or card.architecture == "tflite-file"
    tflite_warning = ""
    bridge_lacks: list[str] = []
    if tflite_src and source_kind == "tflite-file" and (fmt or target.default_format) not in ("tflite", "tflm", "openvino"):
        # a format built from PyTorch or ONNX: the graph rebuilt in PyTorch, when the bridge knows every operator
        from edgezoo.intake import tflite_torch

        bridge_lacks = tflite_torch.unsupported_ops(source_path)
        if not bridge_lacks:
            tflite_src = False
            tflite_warning = (f"{fmt or target.default_format} is built from PyTorch: the .tflite graph is rebuilt as a PyTorch module "
                              "(edgezoo.intake.tflite_torch) and checked against LiteRT on your samples before conversion")
    if tflite_src:
        from edgezoo.intake.tflite_file import TAKES_TFLITE, WHY_NOT, refuse_format

        label = source_spec or card.id
        if fmt is None and target.default_format not in TAKES_TFLITE:
            usable = [f for f in target.formats if f in TAKES_TFLITE]
            if not usable:
                from edgezoo.targets import list_targets

                takers = [t.id for t in list_targets() if any(f in TAKES_TFLITE for f in t.formats)]
                lacks = f" (the TFLite -> PyTorch bridge does not rebuild its {', '.join(bridge_lacks)})" if bridge_lacks else ""
                raise UsageError(f"{label} is a TFLite model and {target.id} deploys only {', '.join(target.formats)}{lacks}: {WHY_NOT}",
                                 hint=f"targets that take TFLite: {', '.join(takers)}")
            fmt = usable[0]
            tflite_warning = (f"{label} is a TFLite model: built as {fmt}, not {target.id}'s default {target.default_format} "
                              "(which cannot be built from TFLite)")
        why = WHY_NOT
        if bridge_lacks:
            why = f"the TFLite -> PyTorch bridge does not rebuild its {', '.join(bridge_lacks)}, and {WHY_NOT.split(' (')[0]}"
        refuse_format(fmt or target.default_format, label, why)
        if tflite_quantizer == "pt2e":
            raise UsageError(f"{label} is a TFLite model: PT2E quantizes PyTorch modules", hint="use --tflite-quantizer aeq (or auto)")
    fmt, spec = target.format(fmt)
    plugin = registry.format(fmt)
    card_default = not precision and card.precision and card.precision in spec.precisions and card.precision != spec.default_precision
    precision = precision or (card.precision if card_default else spec.default_precision)
    if precision not in PRECISIONS:
        raise UsageError(f"unknown precision {precision!r}", hint=f"choose one of {', '.join(PRECISIONS)}")
    if precision not in spec.precisions:
        raise UsageError(
            f"target {target.id} ({fmt}) does not support precision {precision!r}",
            hint=f"it supports {', '.join(spec.precisions)}",
        )
    warnings = [tflite_warning] if tflite_warning else []
    if source_kind == "onnx-file" and plugin.built_from == "torch":
        warnings.append(f"{fmt} is built from PyTorch: the ONNX file is rebuilt as a PyTorch graph (onnx2torch) and checked "
                        "against onnxruntime on your samples before conversion")
    if spec.proxy:
        warnings.append(f"host measurements are a proxy: {spec.proxy}")
    if card_default:
        warnings.append(f"{card.id} recommends {card.precision} (the profile's default is {spec.default_precision}): "
                        f"{card.quantization_notes or 'see its card'}; pass --precision to choose another")
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
    isa_note = host_isa_warning(target, fmt, precision)
    if isa_note:
        warnings.append(isa_note)
    if precision == "fp16" and target.hardware.arch == "x86_64":
        warnings.append(f"fp16 on an x86-64 CPU halves the file but {spec.runtime} computes in fp32: expect no speed-up")
    calib_samples = calibration_samples or card.calibration_samples or target.calibration.samples
    if plugin.check_builds_variant and calibration_samples is not None and calibration_samples < 16:
        raise UsageError(
            f"{calibration_samples} calibration samples are too few for full-integer quantization",
            hint="use --calibration-samples 16 or more (the profile's default is " + str(target.calibration.samples) + ")",
        )
    if precision == "int8" and source_path is not None and calib_data is None and not for_check:
        raise UsageError(
            "static int8 needs calibration data for your own model, and none was given",
            hint="pass --calib-data samples.npy (N x input shape, already preprocessed; .npz keyed by input name for several inputs), "
                 "or choose --precision fp32, fp16 or dynamic-int8",
        )
    for what, p in (("calibration data", calib_data), ("evaluation data", eval_data)):
        if p is not None and not p.is_file():
            raise UsageError(f"{what} {p} does not exist", hint="pass a .npy file (one input) or an .npz keyed by input name")
    if source_path is None and (calib_data is not None or eval_data is not None):
        raise UsageError("--calib-data and --eval-data apply to your own models; a zoo card brings its own data",
                         hint=f"see `edgezoo info {card.id}` for the data it is calibrated and evaluated on")
    _check_compression(card, plan_fmt=fmt, source_kind=source_kind, precision=precision, prune=prune,
                       finetune_epochs=finetune_epochs, keep_float=keep_float, max_accuracy_drop=max_accuracy_drop)
    steps_extra = (["prune"] if prune is not None else []) + (["fine-tune"] if finetune_epochs else [])
    keep_auto = keep_float == "auto"
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
    if tflite_src:
        steps += ["load-tflite"] + (["import-tflite"] if fmt != "openvino" else [])
        steps += [st for st in plugin.steps(precision, spec) if st != "convert-litert"]
        steps += ["evaluate", "benchmark-latency", "bundle"]
    elif source_kind == "tflite-file":  # bridged: the graph rebuilt in PyTorch
        steps += ["load-tflite", "tflite-to-torch"] + (plugin.source_steps("zoo") if plugin.built_from == "onnx" else [])
    elif plugin.built_from == "onnx":
        steps += plugin.source_steps(source_kind)
    elif source_kind == "onnx-file":
        steps += ["load-onnx", "normalise-onnx", "simplify", "onnx-to-torch"]
    elif source_kind != "zoo":
        steps += ["load-torch"]
    if not tflite_src:
        # pruning and fine-tuning change the PyTorch source, before any format is built from it
        at = steps.index("load-torch") + 1 if "load-torch" in steps else (1 if source_path is None else 0)
        steps[at:at] = steps_extra
        steps += plugin.steps(precision, spec)
        if keep_auto:
            steps.insert(steps.index("quantize-static-int8"), "sensitivity")
        steps += ["evaluate", "benchmark-latency"] + (["verify-pruning"] if prune is not None else []) + ["bundle"]
    return Plan(
        model_id=card.id,
        model_version=version.version,
        source=source_kind,
        weights=weights,
        target_id=target.id,
        target_sha256=target_sha256,
        runtime=spec.runtime,
        format=fmt,
        opset=plugin.opset(spec),
        precision=precision,
        threads=n_threads,
        calibration_method=calibration_method or card.calibration_method or target.calibration.method,
        calibration_samples=calib_samples,
        quantization=quant_scheme(target, fmt) if precision == "int8" else None,
        steps=tuple(steps),
        bundle_dir=bundle_dir,
        archive=archive,
        warnings=tuple(warnings),
        source_path=source_path,
        weights_path=weights_path,
        calib_data=calib_data,
        eval_data=eval_data,
        source_spec=source_spec,
        min_opset=_min_opset(source_kind, precision),
        calibration_samples_given=calibration_samples is not None,
        force=force,
        allow_over_budget=allow_over_budget,
        tflite_quantizer=tflite_quantizer,
        prune=prune,
        finetune_epochs=finetune_epochs,
        keep_float=() if keep_auto else tuple(keep_float),
        keep_float_auto=keep_auto,
        max_accuracy_drop=max_accuracy_drop,
        min_sqnr_db=min_sqnr_db,
        verify_pruning=verify_pruning,
        card=card,
        target=target,
        source_model=source_model,
    )


def _min_opset(source_kind: str, precision: str) -> int:
    """An ONNX file at an old opset is upgraded when it is quantized: onnxruntime's QDQ
    quantizer writes per-channel (axis) QuantizeLinear, which needs opset 13, and produces
    an invalid graph below it."""
    from edgezoo.intake.onnx_file import MIN_QUANT_OPSET

    return MIN_QUANT_OPSET if source_kind == "onnx-file" and precision in ("int8", "dynamic-int8") else 0


KEEP_FLOAT_FORMATS = ("onnx", "openvino")


def _check_compression(card: Card, *, plan_fmt: str, source_kind: str, precision: str, prune, finetune_epochs: int,
                       keep_float, max_accuracy_drop) -> None:
    """Pruning and fine-tuning work on a PyTorch module; layers kept in float need an int8
    build whose quantizer takes a list of layers to skip."""
    from edgezoo import registry

    label = card.id
    if prune is not None or finetune_epochs:
        what = "--prune" if prune is not None else "--finetune-epochs"
        if source_kind in ("onnx-file", "tflite-file") or card.architecture in ("tflite-file", "tflite-graph"):
            raise UsageError(f"{what} works on PyTorch models, and {label} is a {'TFLite' if 'tflite' in (source_kind + card.architecture) else 'ONNX'} graph",
                             hint="export a PyTorch module (module.py:factory, .pt2) or a zoo model with a PyTorch architecture")
    if finetune_epochs:
        task = registry.task(card.task)
        if source_kind != "zoo" or not card.evaluation.train_split:
            raise UsageError(f"--finetune-epochs needs a labelled training split, and {label} has none",
                             hint="zoo models with one: edgezoo list --json (evaluation.train_split); for your own data use `edgezoo finetune`")
        if not task.trainable:
            raise UsageError(f"--finetune-epochs trains class scores with cross-entropy; {card.task} models are not trained that way here",
                             hint="fine-tune it with its own recipe, then export the weights with --weights")
    if keep_float:
        if precision != "int8":
            raise UsageError(f"--keep-float applies to static int8, not {precision}", hint="add --precision int8")
        if plan_fmt not in KEEP_FLOAT_FORMATS:
            raise UsageError(f"--keep-float is supported for {' and '.join(KEEP_FLOAT_FORMATS)} int8 (onnxruntime nodes_to_exclude, "
                             f"NNCF ignored scope); {plan_fmt}'s quantizer takes no layer list here",
                             hint="choose --format onnx or openvino")
    if max_accuracy_drop is not None and not (0 <= max_accuracy_drop < 100):
        raise UsageError(f"--max-accuracy-drop {max_accuracy_drop:g} is not a number of points in [0, 100)", hint="e.g. --max-accuracy-drop 1.0")


def host_isa_warning(target: Target, fmt: str, precision: str) -> str:
    """What this host's instruction set does to the int8 figures measured here, when it
    differs from the profile's in the way that matters (VNNI on x86-64)."""
    from edgezoo import host

    if precision != "int8" or fmt not in ("onnx", "openvino") or target.hardware.arch != "x86_64" or host.arch() != "x86_64":
        return ""
    if not host.isa():
        return ""
    profile_vnni = host.has_vnni(target.hardware.isa)
    here = host.isa_label()
    if profile_vnni and not host.has_vnni():
        return (f"this host ({here}) lacks the VNNI of {target.id}'s profile: the int8 model uses full 8-bit weights, as the "
                "target's CPU needs, but this host's int8 kernels (u8 x s8 pairs summed in 16 bits) saturate with them, so the "
                "SQNR and agreement measured here understate what the target gets; measure on the target, or pass --target native "
                "for a model quantized for this host")
    if not profile_vnni and host.has_vnni():
        return (f"{target.id}'s profile has no VNNI, so weights are quantized to 7 bits (no saturation there); this host ({here}) "
                "has VNNI, so its int8 latency is not the target's")
    return ""

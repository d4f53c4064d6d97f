"""What a user brings instead of a zoo id, read into a card and checked before any work.

- ``model.onnx``: any ONNX exporter; dynamic dimensions fixed from ``--input-shape``,
  opset upgraded when the quantizer needs it (:mod:`edgezoo.intake.onnx_file`).
- ``module.py:factory``: a PyTorch ``nn.Module`` built by the user's own code, with
  ``--weights`` as safetensors or a tensors-only checkpoint (:mod:`edgezoo.intake.torch_source`).
- ``model.pt2``: a ``torch.export`` ExportedProgram, checked for pickled objects first.
- ``model.tflite``: a float TFLite flatbuffer for LiteRT, TFLite Micro and OpenVINO
  (:mod:`edgezoo.intake.tflite_file`; ONNX and ExecuTorch cannot be built from it).

ONNX files reach the PyTorch-based formats (LiteRT, TFLite Micro, ExecuTorch) through
:mod:`edgezoo.intake.bridge`; samples come from :mod:`edgezoo.intake.data`.
"""

from __future__ import annotations

from pathlib import Path

from edgezoo.errors import UsageError

KINDS = ("onnx-file", "torch-factory", "pt2", "tflite-file")


def source_kind(model: str) -> str | None:
    """"onnx-file", "torch-factory", "pt2", "tflite-file", or None for a zoo id (``id`` or ``id@version``)."""
    import re

    if re.fullmatch(r"[a-z0-9][a-z0-9_\-]*@[A-Za-z0-9][A-Za-z0-9._+\-]*", model) and not Path(model).exists():
        return None
    if ".py:" in model:
        return "torch-factory"
    suffix = Path(model).suffix.lower()
    if suffix == ".onnx":
        return "onnx-file"
    if suffix == ".pt2":
        return "pt2"
    if suffix == ".tflite":
        return "tflite-file"
    if suffix or "/" in model or "\\" in model:
        if suffix in (".pt", ".pth", ".ckpt", ".bin", ".safetensors"):
            raise UsageError(
                f"{model} holds weights, not a model edgezoo can build",
                hint="pass the code that builds it as module.py:factory with --weights " + model + ", or export a .pt2 / .onnx",
            )
        if suffix == ".py":
            raise UsageError(f"{model} names a Python file but no factory", hint=f"write it as {model}:build_model (a function returning an nn.Module)")
        raise UsageError(
            f"{model}: edgezoo does not read {suffix or 'files without an extension'} models",
            hint="pass a zoo id (`edgezoo list`), an .onnx file, a .pt2 ExportedProgram, a .tflite file or module.py:factory",
        )
    return None


def parse_input_shapes(values: tuple[str, ...] | list[str] | str | None) -> dict[str | None, tuple[int, ...]]:
    """``--input-shape 1x3x224x224`` (the only input) or ``--input-shape name:1x3x48x320``
    (repeatable, one per input). Key None = the single unnamed shape."""
    from edgezoo.pipeline.plan import parse_shape

    if values is None:
        return {}
    if isinstance(values, str):
        values = [values]
    out: dict[str | None, tuple[int, ...]] = {}
    for text in values:
        name, sep, dims = text.rpartition(":")
        key = name if sep else None
        if key in out:
            raise UsageError(f"--input-shape given twice for {key or 'the input'}", hint="give each input once")
        out[key] = parse_shape(dims)
    if None in out and len(out) > 1:
        raise UsageError("--input-shape mixes a bare shape with named ones", hint="name every input: --input-shape NAME:1x3x224x224")
    return out


def resolve_shapes(model_label: str, inputs: list[tuple[str, list]], given: dict[str | None, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """The concrete shape of every input: declared dims, with dynamic ones (None) taken from
    ``given``; a bare shape applies to a single-input model."""
    from edgezoo.errors import ModelFileError

    names = [n for n, _ in inputs]
    if None in given:
        if len(inputs) != 1:
            raise UsageError(f"{model_label} has {len(inputs)} inputs ({', '.join(names)}); a bare --input-shape is ambiguous",
                             hint="name each one: " + " ".join(f"--input-shape {n}:..." for n in names))
        given = {names[0]: given[None]}
    unknown = [k for k in given if k not in names]
    if unknown:
        raise UsageError(f"--input-shape names {unknown[0]!r}, which is not an input of {model_label}", hint=f"its inputs are {', '.join(names)}")
    shapes = {}
    for name, dims in inputs:
        shown = "x".join("?" if d is None else str(d) for d in dims)
        if name in given:
            shape = given[name]
            if len(shape) != len(dims):
                raise ModelFileError(f"--input-shape {'x'.join(map(str, shape))} has rank {len(shape)}; {model_label}'s input {name!r} has rank {len(dims)} ({shown})",
                                     hint="give the model's own shape, fixing only its dynamic dimensions")
            bad = [i for i, (d, s) in enumerate(zip(dims, shape)) if d is not None and d != s]
            if bad:
                raise ModelFileError(f"--input-shape {'x'.join(map(str, shape))} does not match {model_label}'s input {name!r} of shape {shown} (dimension {bad[0]})",
                                     hint="give the model's own shape, fixing only its dynamic dimensions")
        else:
            missing = [i for i, d in enumerate(dims) if d is None]
            if missing:
                flag = "--input-shape " + ("" if len(inputs) == 1 else f"{name}:") + "x".join("N" if d is None else str(d) for d in dims)
                raise UsageError(f"{model_label}: input {name!r} has dynamic dimension {missing[0]} (shape {shown})",
                                 hint=f"fix it with {flag}")
            shape = tuple(dims)
        if shape[0] != 1:
            raise UsageError(f"input {name!r}: batch size {shape[0]} is not supported; edge bundles run one sample at a time",
                             hint="use a batch dimension of 1")
        shapes[name] = tuple(shape)
    return shapes

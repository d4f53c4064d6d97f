"""The public facade: catalog, targets, planning, building and verifying bundles.

    from edgezoo import api
    plan = api.plan_export("digits-cnn", "raspberrypi", precision="int8", out_dir=Path("dist"))
    result = api.export(plan)
    api.verify(result.archive)
"""

from __future__ import annotations

from pathlib import Path

from edgezoo.schemas.card import Card
from edgezoo.schemas.target import Target


def list_models() -> list[Card]:
    from edgezoo.zoo.catalog import list_cards

    return list_cards()


def get_card(model_id: str) -> Card:
    from edgezoo.zoo.catalog import get_card as _get

    return _get(model_id)


def list_targets() -> list[Target]:
    from edgezoo.targets import list_targets as _list

    return _list()


def load_target(name_or_path: str | Path) -> Target:
    from edgezoo.targets import load_target as _load

    return _load(name_or_path)


def is_model_file(model: str) -> bool:
    return model.endswith(".onnx") or "/" in model or Path(model).suffix != ""


def plan_export(
    model: str,
    target: str | Path,
    *,
    precision: str | None = None,
    fmt: str | None = None,
    weights: str | None = None,
    input_shape: tuple[int, ...] | None = None,
    calib_data: Path | None = None,
    license: str | None = None,
    out_dir: Path = Path("dist"),
    calibration_method: str | None = None,
    calibration_samples: int | None = None,
    threads: int | None = None,
    force: bool = False,
    allow_over_budget: bool = False,
    tflite_quantizer: str = "auto",
    for_check: bool = False,
):
    """Check everything that can be checked before work starts and return the Plan."""
    from edgezoo.errors import UsageError
    from edgezoo.hashing import sha256_file
    from edgezoo.pipeline.plan import card_for_onnx, make_plan
    from edgezoo.targets import profile_file

    tgt = load_target(target)
    target_sha256 = sha256_file(profile_file(target))
    source_path = None
    weights_mode, weights_path = "pretrained", None
    if is_model_file(model):
        if weights:
            raise UsageError("--weights applies to zoo models; your ONNX file carries its own weights")
        source_path = Path(model)
        card = card_for_onnx(source_path, input_shape, license)
    else:
        if input_shape is not None:
            raise UsageError("--input-shape applies to your own ONNX files; zoo models have a fixed input", hint=f"see `edgezoo info {model}`")
        card = get_card(model)
        if weights == "random":
            weights_mode = "random"
        elif weights:
            weights_mode, weights_path = "local", Path(weights)
            if not weights_path.is_file():
                raise UsageError(f"weights file {weights} does not exist", hint="pass a local copy of the card's weights, or --weights random")
    return make_plan(
        card,
        tgt,
        precision=precision,
        fmt=fmt,
        weights=weights_mode,
        weights_path=weights_path,
        source_path=source_path,
        calib_data=calib_data,
        out_dir=out_dir,
        calibration_method=calibration_method,
        calibration_samples=calibration_samples,
        threads=threads,
        force=force,
        allow_over_budget=allow_over_budget,
        tflite_quantizer=tflite_quantizer,
        for_check=for_check,
        target_sha256=target_sha256,
    )


def check(plan, progress=None):
    """Operator compatibility of the plan's model with its target, before any export."""
    from edgezoo.pipeline.executor import check as _check

    return _check(plan, progress=progress)


def bench(model: str, target: str | Path, *, formats: list[str] | None = None, precisions: list[str] | None = None,
          weights: str | None = None, threads: int | None = None, progress=None):
    """Build and measure every format x precision the target deploys (``formats=None``: all)."""
    from edgezoo.errors import UsageError
    from edgezoo.pipeline.matrix import run_matrix

    if is_model_file(model):
        raise UsageError("bench takes a zoo model", hint="for your own ONNX file use `edgezoo export --format ...`")
    from edgezoo.hashing import sha256_file
    from edgezoo.targets import profile_file

    card = get_card(model)
    tgt = load_target(target)
    formats = formats or [tgt.default_format] + [f for f in tgt.formats if f != tgt.default_format]
    for f in formats:
        tgt.format(f)  # refuses a format the target does not deploy
    mode, path = ("random", None) if weights == "random" else (("local", Path(weights)) if weights else ("pretrained", None))
    return run_matrix(card, tgt, formats, weights=mode, weights_path=path, precisions=precisions, threads=threads, progress=progress,
                      target_sha256=sha256_file(profile_file(target)))


def export(plan, progress=None):
    """Run the plan to a bundle; returns the executor's Outcome (``.report``, ``.bundle_dir``)."""
    from edgezoo.pipeline.executor import Executor

    return Executor(plan, progress=progress).run(until="bundle")


def list_plugins(kind: str):
    """Registered formats, runtimes, tasks or accelerators: (entry, loaded object or the error)."""
    from edgezoo import registry

    out = []
    for e in registry.entries(kind):
        try:
            out.append((e, registry.get(kind, e.name)))
        except registry.PluginError as exc:
            out.append((e, exc))
    return out


def verify(path: Path):
    from edgezoo.bundle.verify import verify as _verify

    return _verify(Path(path))

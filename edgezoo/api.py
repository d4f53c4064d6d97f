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
    tflite_quantizer: str = "pt2e",
):
    """Check everything that can be checked before work starts and return the Plan."""
    from edgezoo.errors import UsageError
    from edgezoo.pipeline.plan import card_for_onnx, make_plan

    tgt = load_target(target)
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
    )


def export(plan, progress=None):
    from edgezoo.pipeline.build import build

    return build(plan, progress=progress)


def verify(path: Path):
    from edgezoo.bundle.verify import verify as _verify

    return _verify(Path(path))

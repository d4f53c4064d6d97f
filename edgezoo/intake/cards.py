"""Cards for models a user brings: the contract comes from the model, the rest is said
plainly (licence NOASSERTION unless given, metric "fidelity" unless labels are given)."""

from __future__ import annotations

import re
from pathlib import Path


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_\-]+", "-", text.lower()).strip("-") or "model"


def default_task(inputs: dict[str, tuple[int, ...]], output_ranks: list[int]) -> str:
    """Image classification for the one shape it means (one NCHW image in, one score
    vector out); every other model is "generic": judged on output fidelity."""
    if len(inputs) == 1 and len(next(iter(inputs.values()))) == 4 and output_ranks == [2]:
        return "image-classification"
    return "generic"


def user_card(*, path: Path, architecture: str, inputs: dict[str, tuple[int, ...]], outputs: list[str], output_ranks: list[int],
              license: str | None, task: str | None, params: int, sha256: str, size: int, tags: tuple[str, ...] = (),
              model_id: str | None = None, image_layout: str = "NCHW"):
    from edgezoo import registry
    from edgezoo.schemas.card import Card, Evaluation, InputSpec, Origin, Preprocess, Reference, Version, WeightsSource

    task = task or default_task(inputs, output_ranks)
    registry.require_name("tasks", task, "task")
    specs = []
    for name, shape in inputs.items():
        layout = image_layout if len(shape) == 4 else "NC" if len(shape) == 2 else "any"
        specs.append(InputSpec(name=name, shape=tuple(shape), dtype="float32", layout=layout))
    return Card(
        id=model_id or slug(path.stem),
        name=path.name,
        task=task,
        summary=f"User model {path.name}",
        description=f"A model brought by the user from {path}.",
        license=license or "NOASSERTION",
        weights_license=license or "NOASSERTION",
        license_notes="" if license else "No licence was given (--license); the bundle records NOASSERTION.",
        architecture=architecture,
        params=params,
        macs=0,
        labels="",
        default_version="local",
        origin=Origin(authors="user", url=str(path)),
        input=specs[0],
        extra_inputs=tuple(specs[1:]),
        output_names=tuple(outputs),
        preprocess=Preprocess(kind="tensor", scale=1.0, mean=(0.0,), std=(1.0,), raw_range=(float("-inf"), float("inf"))),
        evaluation=Evaluation(dataset="user", calibration_split="calib", eval_split="eval", metric="fidelity",
                              description="the user's samples (--calib-data, --eval-data)"),
        versions=(
            Version(
                version="local",
                weights=WeightsSource(kind="package", sha256=sha256, bytes=max(size, 1), format="safetensors", path=str(path)),
                reference=Reference(dataset="none", metric="none", value=0.0, source="user model"),
                released="",
                training="unknown",
            ),
        ),
        tags=tags,
    )


# -- card init / --card ----------------------------------------------------------------------


def _toml_value(v) -> str:
    import json
    import math

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string is a JSON string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def card_toml(card) -> str:
    """The card as TOML, laid out like the zoo's own cards, with comments on what to edit."""
    from edgezoo.schemas._strict import dump

    d = dump(card)
    lines = [
        f"# edgezoo model card for {card.name}, made by `edgezoo card init`.",
        "# Edit id, name, task, licence, texts and preprocessing; keep [input] and [[versions]]",
        "# (they are read from the model, and `export --card` checks them against it).",
        "# Then: edgezoo export MODEL --card THIS.toml --target ...",
        "",
    ]
    for k in ("id", "name", "task", "summary", "description", "license", "weights_license", "commercial_use", "attribution",
              "license_notes", "architecture", "params", "macs",
              "labels", "default_version", "tags", "output_names"):
        if k in d:
            lines.append(f"{k} = {_toml_value(d[k])}")
    for table in ("origin", "input", "preprocess", "evaluation"):
        lines += ["", f"[{table}]"] + [f"{k} = {_toml_value(v)}" for k, v in d[table].items()]
    for extra in d.get("extra_inputs", []):
        lines += ["", "[[extra_inputs]]"] + [f"{k} = {_toml_value(v)}" for k, v in extra.items()]
    for ver in d["versions"]:
        lines += ["", "[[versions]]"] + [f"{k} = {_toml_value(v)}" for k, v in ver.items()]
    return "\n".join(lines) + "\n"


def apply_card(model_card, path: Path):
    """The user's edited card, checked against the model it is used with: same inputs and
    the same model file (sha256), so a card cannot silently describe another model."""
    from edgezoo.errors import SchemaError, UsageError
    from edgezoo.schemas import _strict
    from edgezoo.schemas.card import Card

    if not path.is_file():
        raise UsageError(f"card {path} does not exist", hint="write one with `edgezoo card init MODEL > card.toml`")
    card = _strict.load(Card, _strict.read_toml(path), source=str(path))
    mine = [(i.name, tuple(i.shape)) for i in model_card.inputs]
    theirs = [(i.name, tuple(i.shape)) for i in card.inputs]
    if mine != theirs:
        raise SchemaError(f"{path}: inputs {theirs} do not match the model's {mine}",
                          hint="make the card again with `edgezoo card init`, or pass the same --input-shape")
    if card.version().weights.sha256 != model_card.version().weights.sha256:
        raise SchemaError(f"{path} was made for another model file (sha256 differs)",
                          hint="make the card again with `edgezoo card init` for this file")
    return card

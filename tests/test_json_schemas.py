"""The published JSON Schemas are generated from the records edgezoo validates with, are
current (regenerating changes nothing), and accept what edgezoo writes and reads."""

from __future__ import annotations

import json

import jsonschema
import pytest

from edgezoo.schemas import jsonschema as gen
from edgezoo.schemas._strict import read_toml


@pytest.mark.parametrize("kind", ["card", "profile", "manifest", "report"])
def test_checked_in_schema_is_current(kind):
    path = gen.HERE / f"{kind}.schema.json"
    assert path.read_text(encoding="utf-8") == gen.render(kind), "run: python -m edgezoo.schemas.jsonschema"
    jsonschema.Draft202012Validator.check_schema(json.loads(path.read_text()))


def _validator(kind):
    return jsonschema.Draft202012Validator(json.loads((gen.HERE / f"{kind}.schema.json").read_text()))


def test_every_zoo_card_and_profile_validates():
    from edgezoo.targets import list_targets, profile_file
    from edgezoo.zoo.catalog import CARDS_DIR

    for path in CARDS_DIR.glob("*.toml"):
        _validator("card").validate(read_toml(path))
    for t in list_targets():
        _validator("profile").validate(read_toml(profile_file(t.id)))


def test_a_bundles_manifest_and_report_validate(digits_int8):
    bundle, _, _ = digits_int8
    _validator("manifest").validate(json.loads((bundle / "manifest.json").read_text()))
    _validator("report").validate(json.loads((bundle / "report.json").read_text()))


def test_the_schema_rejects_what_the_loader_rejects():
    data = read_toml(next(gen.HERE.parent.parent.joinpath("zoo", "cards").glob("digits-cnn.toml")))
    data["unknown_key"] = 1
    with pytest.raises(jsonschema.ValidationError):
        _validator("card").validate(data)
    data.pop("unknown_key")
    data["input"]["layout"] = "NHWC?"
    with pytest.raises(jsonschema.ValidationError):
        _validator("card").validate(data)

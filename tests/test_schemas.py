"""Cards and profiles are validated data: bad files fail with the file and key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgezoo import targets
from edgezoo.errors import SchemaError
from edgezoo.schemas import _strict
from edgezoo.schemas.card import Card
from edgezoo.zoo import catalog
from tests.conftest import run_cli

CARD = catalog.CARDS_DIR / "digits-cnn.toml"
PROFILE = Path(targets.__file__).parent / "profiles" / "raspberrypi.toml"


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def test_all_shipped_cards_and_profiles_validate():
    assert len(catalog.list_cards()) >= 5
    assert {t.id for t in targets.list_targets()} >= {"raspberrypi", "raspberrypi5", "generic-cpu"}


def test_card_unknown_key_fails_naming_file_and_key(tmp_path):
    p = _write(tmp_path, "digits-cnn.toml", CARD.read_text().replace('task = "image-classification"', 'task = "image-classification"\ncolour = "blue"'))
    with pytest.raises(SchemaError, match=r"digits-cnn.toml: key 'colour' is not known"):
        _strict.load(Card, _strict.read_toml(p), source=str(p))


def test_card_license_is_required(tmp_path):
    text = "\n".join(line for line in CARD.read_text().splitlines() if not line.startswith("license = "))
    p = _write(tmp_path, "digits-cnn.toml", text)
    with pytest.raises(SchemaError, match=r"key 'license' is required"):
        _strict.load(Card, _strict.read_toml(p), source=str(p))


def test_card_bad_sha256_fails(tmp_path):
    text = CARD.read_text().replace('sha256 = "43f5', 'sha256 = "XYZ5')
    p = _write(tmp_path, "digits-cnn.toml", text)
    with pytest.raises(SchemaError, match="sha256"):
        _strict.load(Card, _strict.read_toml(p), source=str(p))


def test_profile_wrong_type_names_file_and_key(tmp_path):
    p = _write(tmp_path, "board.toml", PROFILE.read_text().replace('id = "raspberrypi"', 'id = "board"').replace("cores = 4", 'cores = "four"'))
    with pytest.raises(SchemaError, match=r"board.toml: key 'hardware.cores' must be an integer"):
        targets.load_target(p)


def test_profile_not_toml_is_clear(tmp_path):
    p = _write(tmp_path, "broken.toml", "schema_version = [1,\n")
    with pytest.raises(SchemaError, match="not valid TOML"):
        targets.load_target(p)


def test_profile_default_precision_must_be_supported(tmp_path):
    text = PROFILE.read_text().replace('precisions = ["fp32", "fp16", "int8", "dynamic-int8"]', 'precisions = ["fp32"]')
    p = _write(tmp_path, "board.toml", text)
    with pytest.raises(SchemaError, match="default_precision"):
        targets.load_target(p)


def test_cli_reports_malformed_profile_in_one_line(tmp_path):
    p = _write(tmp_path, "board.toml", PROFILE.read_text().replace("[budgets]", "[budgets]\nmax_watts = 5"))
    res = run_cli("targets", "show", str(p), ok=None)
    assert res.exit_code == 2
    assert "board.toml: key 'budgets.max_watts' is not known" in res.output
    assert "Traceback" not in res.output


def test_user_profile_by_path(tmp_path):
    p = _write(tmp_path, "myboard.toml", PROFILE.read_text().replace('id = "raspberrypi"', 'id = "myboard"'))
    assert targets.load_target(str(p)).id == "myboard"


def test_card_params_and_macs_are_computed_not_typed():
    """Every card's parameter and MAC counts equal what the architecture computes (MACs are
    used by the microcontroller latency estimate)."""
    from edgezoo.zoo import models

    for card in catalog.list_cards():
        if card.architecture == "tflite-graph":  # the graph is the weights file: built from it when pulled
            from edgezoo.stages.torch_to_onnx import load_model
            from edgezoo.zoo.sources import available_offline, resolve_version

            if not available_offline(card.version()):
                continue
            model = load_model(card, resolve_version(card.version()))
        else:
            model = models.build(card.architecture)
        assert card.params == models.count_params(model), card.id
        assert card.macs == models.count_macs(model, *(i.shape for i in card.inputs), dtypes=[i.dtype for i in card.inputs]), card.id


def test_every_profile_and_card_names_registered_plugins():
    from edgezoo import registry

    for t in targets.list_targets():
        for name, spec in t.formats.items():
            assert registry.format(name).runtime == spec.runtime
            if spec.accelerator:
                assert registry.accelerator(spec.accelerator).name == spec.accelerator
    for card in catalog.list_cards():
        assert registry.task(card.task).name == card.task


def test_unknown_plugin_names_are_refused_with_the_known_ones(tmp_path):
    src = targets.profile_file("generic-cpu").read_text()
    bad = tmp_path / "board.toml"
    bad.write_text(src.replace("[formats.onnx]", "[formats.onyx]").replace('default_format = "onnx"', 'default_format = "onyx"'))
    with pytest.raises(SchemaError, match=r"unknown format 'onyx'.*onnx"):
        targets.load_target(bad)
    bad.write_text(src.replace('runtime = "onnxruntime"', 'runtime = "litert"', 1))
    with pytest.raises(SchemaError, match="must be 'onnxruntime'"):
        targets.load_target(bad)


def test_profile_that_is_not_utf8_is_one_line(tmp_path):
    p = tmp_path / "latin1.toml"
    p.write_bytes(PROFILE.read_text().replace('name = "', 'name = "Caf\xe9 ', 1).encode("latin-1"))
    res = run_cli("targets", "show", str(p), ok=None)
    assert res.exit_code == 2 and "is not UTF-8 text" in res.output and "Traceback" not in res.output

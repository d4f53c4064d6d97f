"""The source model's reference outputs, computed beside a serial conversion in a worker
process (edgezoo.pipeline.reference): same outputs as in the exporting process, stored in
the stage cache, a failed worker replaced by the computation here, nothing left behind."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from edgezoo.pipeline import reference

from .conftest import run_cli


@pytest.fixture
def own_tmp(tmp_path, monkeypatch):
    """Worker folders are made in the temp dir: a private one, to see that none is left."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def _digits_model():
    import torch

    from edgezoo.zoo import models

    torch.manual_seed(0)
    return models.build("edgezoo.digits_cnn").eval()


def _feeds(n=11):
    # an NCHW view of channels-last memory, as the image pipeline hands them over
    return [np.random.default_rng(0).standard_normal((n, 8, 8, 1)).astype(np.float32).transpose(0, 3, 1, 2)]


def test_a_worker_computes_the_same_outputs(monkeypatch, own_tmp):
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)  # digits-cnn is quick: always hand the rest over
    model, feeds = _digits_model(), _feeds()
    pending = reference.reference(model, "edgezoo.digits_cnn", feeds, beside=True)
    assert isinstance(pending, reference.Pending)
    got = pending.result()
    assert pending.worker_failed == ""
    want = reference.torch_outputs(model, feeds)
    assert got[0].shape == want[0].shape == (11, 10)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    assert list(own_tmp.iterdir()) == []
    # nothing beside a conversion that is not serial, or when the rest is short
    assert isinstance(reference.reference(model, "edgezoo.digits_cnn", feeds, beside=False), list)
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", 3.0)
    assert isinstance(reference.reference(model, "edgezoo.digits_cnn", feeds, beside=True), list)


def test_a_failed_worker_is_replaced_by_the_computation_here(monkeypatch, own_tmp):
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)
    model, feeds = _digits_model(), _feeds()
    # the worker rebuilds another architecture: the weights do not load there
    pending = reference.reference(model, "edgezoo.mlp:64-32-10", feeds, beside=True)
    got = pending.result()
    assert "state_dict" in pending.worker_failed or "size mismatch" in pending.worker_failed or "Missing key" in pending.worker_failed, pending.worker_failed
    np.testing.assert_allclose(got[0], reference.torch_outputs(model, feeds)[0], rtol=1e-5, atol=1e-5)
    assert list(own_tmp.iterdir()) == []


def test_cancel_stops_the_worker_and_removes_its_files(monkeypatch, own_tmp):
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)
    pending = reference.reference(_digits_model(), "edgezoo.digits_cnn", _feeds(400), beside=True)
    assert list(own_tmp.iterdir())  # its inputs and weights
    pending.cancel()
    assert pending.worker.proc.poll() is not None
    assert list(own_tmp.iterdir()) == []


def test_export_with_the_reference_beside_the_conversion(monkeypatch, tmp_path, own_tmp):
    """Through the CLI: a LiteRT export whose reference a worker computed checks the fp32
    export as one computed here does, and the worker's reference lands in the stage cache.
    None is left behind."""
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path / "cache"))  # no other test's reference in it
    made = []
    real = reference.reference

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        made.append(type(result).__name__)
        return result

    def export(name, *extra):
        res = run_cli("export", "digits-cnn", "--target", "raspberrypi", "--precision", "fp32", *extra,
                      "--out", str(tmp_path / name), "--json")
        return json.loads(Path(json.loads(res.stdout)["bundle"], "report.json").read_text())

    monkeypatch.setattr(reference, "reference", spy)
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)
    beside = export("beside")
    assert made == ["Pending"]
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", 1e9)  # a reference that is quick: computed here
    here = export("here", "--no-cache")
    monkeypatch.delenv("EDGEZOO_NO_CACHE")
    assert made == ["Pending", "list"]
    for field in ("agreement", "samples"):
        assert beside["export_check"][field] == here["export_check"][field]
    assert beside["export_check"]["samples"] > 100 and beside["export_check"]["agreement"] == 100.0
    assert beside["export_check"]["sqnr_db"] > 60
    # the worker's outputs were stored like any other: the next export reuses them
    again = export("again")
    assert made == ["Pending", "list"] and "reference" in again["cache_hits"]
    assert again["export_check"] == beside["export_check"]
    assert not list(own_tmp.glob("edgezoo-reference-*"))  # (torch leaves its own folders in the temp dir)

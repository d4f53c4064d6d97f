"""The source model's reference outputs, computed beside a serial conversion in a forked
child (edgezoo.pipeline.reference): same outputs as in the exporting process, stored in the
stage cache; a child that fails, hangs or outlives its parent is replaced by the computation
here or killed; nothing is left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
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


class _InChild:
    """digits-cnn, which in a forked child fails (``hang``: sleeps) instead of computing."""

    def __init__(self, model, hang=False):
        self.model, self.hang, self.parent = model, hang, os.getpid()

    def __call__(self, x):
        if os.getpid() != self.parent:
            if self.hang:
                time.sleep(3600)
            raise RuntimeError("boom in the child")
        return self.model(x)


def _gone(pid: int) -> bool:
    """Ended: no such process, or a zombie its new parent has not reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (FileNotFoundError, ProcessLookupError):
        return True


def test_a_worker_computes_the_same_outputs(monkeypatch, own_tmp):
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)  # digits-cnn is quick: always hand the rest over
    model, feeds = _digits_model(), _feeds()
    pending = reference.reference(model, feeds, beside=True)
    assert isinstance(pending, reference.Pending)
    got = pending.result()
    assert pending.worker_failed == "" and pending.worker.code == 0
    want = reference.torch_outputs(model, feeds)
    assert got[0].shape == want[0].shape == (11, 10)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    assert list(own_tmp.iterdir()) == []
    # nothing beside a conversion that is not serial, or when the rest is short
    assert isinstance(reference.reference(model, feeds, beside=False), list)
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", 3.0)
    assert isinstance(reference.reference(model, feeds, beside=True), list)


def test_a_failed_worker_is_replaced_by_the_computation_here(monkeypatch, own_tmp):
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)
    model, feeds = _digits_model(), _feeds()
    pending = reference.reference(_InChild(model), feeds, beside=True)
    got = pending.result()
    assert pending.worker_failed == "RuntimeError: boom in the child"
    np.testing.assert_allclose(got[0], reference.torch_outputs(model, feeds)[0], rtol=1e-5, atol=1e-5)
    assert list(own_tmp.iterdir()) == []


def test_no_process_to_fork_computes_here(monkeypatch, own_tmp):
    """A process limit makes fork fail (EAGAIN): the export goes on, computing here."""
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)

    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(reference.os, "fork", no_fork)
    model, feeds = _digits_model(), _feeds()
    got = reference.reference(model, feeds, beside=True)
    assert isinstance(got, list)
    np.testing.assert_allclose(got[0], reference.torch_outputs(model, feeds)[0], rtol=1e-5, atol=1e-5)
    assert list(own_tmp.iterdir()) == []


def test_a_hung_worker_is_killed_at_its_deadline(monkeypatch, own_tmp):
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)
    monkeypatch.setattr(reference, "TIMEOUT_S", 1.0)
    model, feeds = _digits_model(), _feeds()
    pending = reference.reference(_InChild(model, hang=True), feeds, beside=True)
    t0 = time.monotonic()
    got = pending.result()
    assert 0.5 < time.monotonic() - t0 < 30
    assert pending.worker_failed == "timed out"
    assert _gone(pending.worker.pid)  # killed and reaped
    np.testing.assert_allclose(got[0], reference.torch_outputs(model, feeds)[0], rtol=1e-5, atol=1e-5)
    assert list(own_tmp.iterdir()) == []


def test_cancel_stops_the_worker_and_removes_its_files(monkeypatch, own_tmp):
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)
    pending = reference.reference(_InChild(_digits_model(), hang=True), _feeds(), beside=True)
    assert list(own_tmp.iterdir())  # where its outputs would go
    assert not _gone(pending.worker.pid)
    pending.cancel()
    assert pending.worker.code is not None and _gone(pending.worker.pid)
    assert list(own_tmp.iterdir()) == []


def test_the_worker_dies_with_the_exporting_process(tmp_path):
    """An exporting process killed outright (no chance to cancel) takes its child with it."""
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        from tests.test_reference import _InChild, _digits_model, _feeds
        from edgezoo.pipeline import reference
        reference.BACKGROUND_AFTER_S = -1.0
        pending = reference.reference(_InChild(_digits_model(), hang=True), _feeds(), beside=True)
        print(pending.worker.pid, flush=True)
        time.sleep(3600)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child = int(proc.stdout.readline())
        assert not _gone(child)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:  # reparented to init, which reaps it
        time.sleep(0.05)
    assert _gone(child)


def test_export_with_the_reference_beside_the_conversion(monkeypatch, tmp_path, own_tmp):
    """Through the CLI: a LiteRT export whose reference a worker computed checks the fp32
    export as one computed here does, and the worker's reference lands in the stage cache.
    None is left behind."""
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path / "cache"))  # no other test's reference in it
    made = []
    real = reference.reference

    pendings = []

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        made.append(type(result).__name__)
        if isinstance(result, reference.Pending):
            pendings.append(result)
        return result

    def export(name, *extra):
        res = run_cli("export", "digits-cnn", "--target", "raspberrypi", "--precision", "fp32", *extra,
                      "--out", str(tmp_path / name), "--json")
        return json.loads(Path(json.loads(res.stdout)["bundle"], "report.json").read_text())

    monkeypatch.setattr(reference, "reference", spy)
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)
    beside = export("beside")
    assert made == ["Pending"]
    # the forked child computed them (a failure would hide behind the computation here)
    assert pendings[0].worker_failed == "" and pendings[0].worker.code == 0
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


def test_a_parent_running_jax_threads_forks_quietly_and_the_child_computes(monkeypatch, own_tmp):
    """litert-torch loads JAX, whose thread pools are running by the time a second export in
    the same process (bench, the API) forks; JAX warns of any fork. The child touches none of
    it: it computes, and the fork prints nothing."""
    import warnings

    jnp = pytest.importorskip("jax.numpy")
    float(jnp.ones(4).sum())  # JAX's CPU client and its threads are up
    monkeypatch.setattr(reference, "BACKGROUND_AFTER_S", -1.0)
    model, feeds = _digits_model(), _feeds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pending = reference.reference(model, feeds, beside=True)
        got = pending.result()
    assert not [w for w in caught if "fork" in str(w.message)], [str(w.message) for w in caught]
    assert pending.worker_failed == "" and pending.worker.code == 0
    np.testing.assert_allclose(got[0], reference.torch_outputs(model, feeds)[0], rtol=1e-5, atol=1e-5)

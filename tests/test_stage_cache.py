"""The stage cache through the CLI: a cached export is the uncached one (same model bytes,
same accuracy), a second precision reuses the shared stages, damaged entries are never
used, `cache info|clear` and `--no-cache` do what they say, and concurrent exports that
share the cache both succeed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def cache(tmp_path, monkeypatch):
    where = tmp_path / "cache"
    monkeypatch.setenv("EDGEZOO_CACHE", str(where))
    monkeypatch.delenv("EDGEZOO_NO_CACHE", raising=False)
    return where


def _export(out: Path, *args: str) -> tuple[dict, Path]:
    doc = json.loads(run_cli("export", "digits-cnn", *args, "--out", str(out), "--json").stdout)
    return doc["report"], Path(doc["bundle"])


def _model_sha(bundle: Path) -> str:
    model = next(p for p in bundle.iterdir() if p.name.startswith("model."))
    return hashlib.sha256(model.read_bytes()).hexdigest()


@pytest.mark.parametrize("target", ["generic-cpu", "raspberrypi"])
def test_a_cached_export_is_the_uncached_one(cache, tmp_path, target, monkeypatch):
    first, b1 = _export(tmp_path / "a", "--target", target)
    assert first["cache_hits"] == []
    second, b2 = _export(tmp_path / "b", "--target", target)
    fmt = first["format"]
    assert {f"fp32 {fmt}", f"variant {fmt} int8", "reference"} <= set(second["cache_hits"])
    third, b3 = _export(tmp_path / "c", "--target", target, "--no-cache")
    os.environ.pop("EDGEZOO_NO_CACHE", None)  # the CLI set it for its own process (CliRunner runs it in ours)
    assert third["cache_hits"] == []
    assert _model_sha(b1) == _model_sha(b2) == _model_sha(b3)
    q = [r["variants"]["int8"]["quality"] for r in (first, second, third)]
    assert q[0]["metrics"] == q[1]["metrics"] == q[2]["metrics"] and q[0]["sqnr_db"] == q[1]["sqnr_db"] == q[2]["sqnr_db"]
    # the lineage is the same: a cache hit records how the file was made, not that it was reused
    lineage = [json.loads((b / "manifest.json").read_text())["lineage"] for b in (b1, b2, b3)]
    assert lineage[0] == lineage[1] == lineage[2]
    run_cli("verify", str(b2))
    # the int8 entry holds the kept model only (LiteRT's auto builds two and keeps one)
    stored = [json.loads(e.read_text()) for e in cache.glob("stages/*/*/entry.json")]
    variant = next(m for m in stored if m.get("stage") == "variant")
    assert len(variant["files"]) == 1, variant["files"]


def test_a_fully_cached_export_never_builds_the_model(cache, tmp_path, monkeypatch):
    """Every stage that needs the PyTorch model is in the cache, so the repeat does not build
    it (building it would fail here) and gives the same file."""
    first, b1 = _export(tmp_path / "a", "--target", "generic-cpu")
    from edgezoo.zoo import models

    def refuse(*_args, **_kwargs):
        raise AssertionError("the model was built for a fully cached export")

    monkeypatch.setattr(models, "build", refuse)
    second, b2 = _export(tmp_path / "b", "--target", "generic-cpu")
    assert {"fp32 onnx", "variant onnx int8", "reference"} <= set(second["cache_hits"])
    assert _model_sha(b1) == _model_sha(b2)
    assert second["variants"]["int8"]["quality"]["metrics"] == first["variants"]["int8"]["quality"]["metrics"]
    with pytest.raises(AssertionError, match="fully cached"):  # the guard is live: an uncached export builds it
        _export(tmp_path / "c", "--target", "generic-cpu", "--no-cache")
    os.environ.pop("EDGEZOO_NO_CACHE", None)


def test_another_precision_reuses_the_shared_stages(cache, tmp_path):
    _export(tmp_path / "a", "--target", "generic-cpu", "--precision", "fp32")
    report, _ = _export(tmp_path / "b", "--target", "generic-cpu", "--precision", "int8")
    assert "fp32 onnx" in report["cache_hits"] and "prepare onnx" in report["cache_hits"]
    assert not any(h.startswith("variant") for h in report["cache_hits"])
    # another target with the same format spec and scheme shares them too; a different scheme does not
    other, _ = _export(tmp_path / "c", "--target", "raspberrypi", "--format", "onnx", "--precision", "int8")
    assert not any(h.startswith("variant") for h in other["cache_hits"])  # S8S8 on ARM, U8S8 on x86


def test_cache_info_clear_and_damaged_entries(cache, tmp_path):
    _export(tmp_path / "a", "--target", "generic-cpu")
    info = json.loads(run_cli("cache", "info", "--json").stdout)
    assert info["entries"] >= 4 and {"fp32", "variant", "reference", "prepare"} <= set(info["stages"]) and info["bytes"] > 0
    # damage the int8 model in its entry: it is not used, the stage runs again, the bundle is right
    entry = next(Path(e).parent for e in (cache / "stages").glob("*/*/entry.json")
                 if json.loads(Path(e).read_text())["stage"] == "variant")
    victim = next(p for p in (entry / "files").rglob("*") if p.is_file())
    victim.write_bytes(b"\0" * victim.stat().st_size)
    report, bundle = _export(tmp_path / "b", "--target", "generic-cpu")
    assert not any(h.startswith("variant") for h in report["cache_hits"])
    run_cli("verify", str(bundle))
    removed = json.loads(run_cli("cache", "clear", "--json").stdout)["removed"]
    assert removed >= 4
    assert json.loads(run_cli("cache", "info", "--json").stdout)["entries"] == 0
    assert _export(tmp_path / "c", "--target", "generic-cpu")[0]["cache_hits"] == []


def test_the_cache_stays_within_its_limit(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEZOO_CACHE_LIMIT_MB", "0.2")  # smaller than the fp32 model: least recently used entries go
    _export(tmp_path / "a", "--target", "generic-cpu")
    info = json.loads(run_cli("cache", "info", "--json").stdout)
    assert info["bytes"] <= 0.2 * 1024 * 1024


def test_concurrent_exports_share_the_cache(cache, tmp_path):
    env = dict(os.environ, EDGEZOO_CACHE=str(cache))
    procs = [subprocess.Popen([sys.executable, "-m", "edgezoo", "export", "digits-cnn", "--target", "generic-cpu",
                               "--out", str(tmp_path / f"p{i}"), "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(2)]
    bundles = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        bundles.append(Path(json.loads(out)["bundle"]))
    assert _model_sha(bundles[0]) == _model_sha(bundles[1])
    third, _ = _export(tmp_path / "after", "--target", "generic-cpu")
    assert "variant onnx int8" in third["cache_hits"]
    assert not list((cache / "stages").glob(".put-*"))  # no half-written entries left

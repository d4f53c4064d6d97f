"""A full disk in each stage that writes files (ONNX export, simplification, quantization):
one line naming the stage, exit 3, and nothing left in --out. The disk is a real tmpfs of a
few hundred KB mounted by the test (root only; skipped elsewhere)."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def small_disk(tmp_path):
    mounted = []

    def make(size: str) -> Path:
        where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True)
        if res.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({res.stderr.strip() or 'not root'})")
        mounted.append(where)
        return where

    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield make
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


@pytest.mark.parametrize("size,stage", [("300k", "check compatibility"), ("700k", "convert onnx fp32"), ("1000k", "build int8")])
def test_disk_full_is_one_line_exit_3_and_leaves_nothing(small_disk, size, stage):
    disk = small_disk(size)
    # --no-cache: each stage writes its files itself (a cache hit only copies the finished ones)
    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--out", str(disk / "out"), "--no-cache", ok=None)
    assert res.exit_code == 3, res.output
    errors = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "out of disk space" in errors[0] and f"'{stage}'" in errors[0], res.output
    assert "Traceback" not in res.output and "Wire format" not in res.output
    assert list(disk.iterdir()) == []  # no bundle, no build folder, not even the --out folder it created


def test_openvino_telemetry_is_declined(digits_openvino_int8):
    """edgezoo reaches package registries only: OpenVINO's usage telemetry (on by default
    without a consent file) is declined for the process that converted and ran the model."""
    telemetry = pytest.importorskip("openvino_telemetry")
    instance = getattr(telemetry.Telemetry, "_SingletonMetaClass__single_instance", None)
    assert instance is None or instance.consent is False
    from openvino_telemetry.utils.opt_in_checker import ConsentCheckResult, OptInChecker

    assert OptInChecker().check(False) == ConsentCheckResult.DECLINED

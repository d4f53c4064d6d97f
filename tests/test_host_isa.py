"""The host's instruction set: the `native` target describes it, int8 schemes follow the
profile's ISA (7-bit weights without VNNI, for onnxruntime and OpenVINO alike), and a host
whose ISA differs from the profile's in the way that matters is said, with what it does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgezoo import host
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]


def _plan(*args: str) -> dict:
    return json.loads(run_cli("export", *args, "--dry-run", "--json").stdout)


def test_native_target_describes_this_machine():
    doc = json.loads(run_cli("targets", "show", "native", "--json").stdout)
    assert doc["hardware"]["arch"] in ("x86_64", "arm64", "armv7")
    assert tuple(doc["hardware"]["isa"]) == host.isa()
    assert "native" in json.loads(run_cli("targets", "--json").stdout).__repr__()
    plan = _plan("digits-cnn", "--target", "native")
    assert plan["target"] == "native" and plan["format"] == "onnx"
    if host.arch() == "x86_64":
        assert plan["quantization"]["reduce_range"] is (not host.has_vnni())


@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
def test_the_int8_scheme_follows_the_profiles_vnni(tmp_path, fmt):
    text = (ROOT / "targets" / "generic-cpu.toml").read_text()
    with_vnni = tmp_path / "with-vnni.toml"
    with_vnni.write_text(text.replace('id = "generic-cpu"', 'id = "with-vnni"'))
    without = tmp_path / "no-vnni.toml"
    without.write_text(text.replace('id = "generic-cpu"', 'id = "no-vnni"').replace(', "avx512_vnni"', ""))
    assert _plan("digits-cnn", "--target", str(with_vnni), "--format", fmt)["quantization"]["reduce_range"] is False
    assert _plan("digits-cnn", "--target", str(without), "--format", fmt)["quantization"]["reduce_range"] is True


def test_a_host_without_the_profiles_vnni_is_said(monkeypatch):
    monkeypatch.setattr(host, "arch", lambda: "x86_64")
    monkeypatch.setattr(host, "isa", lambda: ("avx", "avx2", "fma", "sse4.2"))
    warnings = _plan("digits-cnn", "--target", "generic-cpu")["warnings"]
    said = [w for w in warnings if "lacks the VNNI" in w]
    assert len(said) == 1 and "--target native" in said[0] and "understate" in said[0]
    assert not [w for w in _plan("digits-cnn", "--target", "generic-cpu", "--precision", "fp32")["warnings"] if "VNNI" in w]
    monkeypatch.setattr(host, "isa", lambda: ("avx2", "avx512f", "avx512_vnni", "fma"))
    assert not [w for w in _plan("digits-cnn", "--target", "generic-cpu")["warnings"] if "VNNI" in w]


def test_reports_name_the_isa_they_were_measured_on(tmp_path):
    doc = json.loads(run_cli("export", "digits-cnn", "--target", "native", "--out", str(tmp_path), "--json").stdout)
    assert doc["report"]["host"]["isa"] == (host.isa_label() if host.isa() else "")
    assert "native" in Path(doc["bundle"]).name

"""Fast checks of the command line: help, listings, JSON, start-up cost."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import run_cli

COMMANDS = [["list"], ["info"], ["targets"], ["targets", "show"], ["export"], ["verify"]]


@pytest.mark.parametrize("cmd", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_has_help_with_examples_and_exit_codes(cmd):
    out = run_cli(*cmd, "--help").output
    assert "Examples:" in out
    assert "Exit codes:" in out


def test_list_json_has_cards_with_licenses():
    data = json.loads(run_cli("list", "--json").output)
    ids = {d["id"] for d in data}
    assert {"digits-cnn", "mobilenet_v2", "mobilenet_v3_small", "resnet18", "resnet50"} <= ids
    assert all(d["license"] for d in data)
    assert all(d["params"] > 0 and d["macs"] > 0 for d in data)


def test_list_table_for_humans():
    out = run_cli("list").output
    assert "digits-cnn" in out and "Apache-2.0" in out and "BSD-3-Clause" in out


def test_info_renders_card():
    out = run_cli("info", "digits-cnn").output
    assert "Digits CNN" in out and "Apache-2.0" in out and "sklearn-digits" in out


def test_targets_show_includes_derived_scheme():
    data = json.loads(run_cli("targets", "show", "generic-cpu", "--json").output)
    assert data["quantization"]["onnx"]["activation_type"] == "uint8"
    assert data["quantization"]["onnx"]["weight_type"] == "int8"
    assert data["quantization"]["tflite"]["format"] == "tflite"
    assert data["hardware"]["arch"] == "x86_64"


def test_unknown_model_suggests_close_name():
    res = run_cli("info", "digit-cnn", ok=None)
    assert res.exit_code == 2
    assert "unknown model 'digit-cnn'" in res.output and "digits-cnn" in res.output
    assert "Traceback" not in res.output


def test_unknown_target_is_one_line_error(tmp_path):
    res = run_cli("export", "digits-cnn", "--target", "raspberry", "--out", str(tmp_path), ok=None)
    assert res.exit_code == 2
    assert "unknown target 'raspberry'" in res.output and "raspberrypi" in res.output
    assert list(tmp_path.iterdir()) == []


def test_cli_start_does_not_import_heavy_libraries():
    code = (
        "import sys; from edgezoo.cli.main import cli; "
        "from click.testing import CliRunner; CliRunner().invoke(cli, ['list']); "
        "heavy = [m for m in ('torch', 'onnx', 'onnxruntime', 'openvino', 'sklearn') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_console_script_runs():
    res = subprocess.run(["edgezoo", "--version"], capture_output=True, text=True)
    assert res.returncode == 0 and "edgezoo" in res.stdout

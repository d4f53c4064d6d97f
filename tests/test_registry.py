"""Plug-ins come from entry points, the built-ins and a third-party package alike; a broken
plug-in is named and leaves the built-ins working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


@pytest.fixture()
def plugin_path(tmp_path):
    """A third-party distribution on sys.path declaring one working task and one broken format."""
    dist = tmp_path / "acme_edge-1.2.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-edge\nVersion: 1.2\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [edgezoo.formats]
        acmefmt = acme_missing_module:AcmeFormat

        [edgezoo.tasks]
        acme-echo = acme_tasks:Echo
        """))
    (tmp_path / "acme_tasks.py").write_text(textwrap.dedent("""\
        from edgezoo.tasks.base import Task

        class Echo(Task):
            name = "acme-echo"
            description = "echoes its input"
            outputs = ("y",)
            gate_metric = "none"

            def compare(self, ref, out, labels):
                raise AssertionError("not run by these tests")
        """))
    return tmp_path


def _cli(*args, pythonpath):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(pythonpath), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "edgezoo.cli.main", *args], capture_output=True, text=True, env=env)


def test_builtins_register_through_entry_points():
    from edgezoo import registry

    entries = {e.name: e for e in registry.entries("formats")}
    assert {"onnx", "tflite", "openvino", "tflm", "pte"} <= set(entries)
    assert all(entries[n].origin == "built-in" for n in ("onnx", "pte"))
    assert entries["pte"].target == "edgezoo.formats.pte:PteFormat"


def test_third_party_plugins_are_listed_and_a_broken_one_is_named(plugin_path):
    res = _cli("formats", "--json", pythonpath=plugin_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    fmts = {r["name"]: r for r in data["formats"]}
    assert fmts["acmefmt"]["origin"] == "plug-in from acme-edge 1.2"
    assert "acme_missing_module" in fmts["acmefmt"]["error"] and "failed to load" in fmts["acmefmt"]["error"]
    assert "error" not in fmts["onnx"] and fmts["onnx"]["runtime"] == "onnxruntime"
    tasks = {r["name"]: r for r in data["tasks"]}
    assert tasks["acme-echo"]["origin"] == "plug-in from acme-edge 1.2" and tasks["acme-echo"]["outputs"] == ["y"]
    # the built-ins keep working beside the broken plug-in
    res = _cli("export", "digits-cnn", "--target", "generic-cpu", "--dry-run", "--json", pythonpath=plugin_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["format"] == "onnx"


def test_asking_for_a_broken_plugin_is_one_line_exit_2(plugin_path, tmp_path):
    board = tmp_path / "board.toml"
    from edgezoo.targets import profile_file

    board.write_text(profile_file("generic-cpu").read_text() + '\n[formats.acmefmt]\nruntime = "x"\nprecisions = ["fp32"]\ndefault_precision = "fp32"\n')
    res = _cli("export", "digits-cnn", "--target", str(board), "--dry-run", pythonpath=plugin_path)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "acmefmt" in res.stderr and "failed to load" in res.stderr


def test_unknown_format_flag_lists_the_known_ones():
    from tests.conftest import run_cli

    res = run_cli("export", "digits-cnn", "--target", "generic-cpu", "--format", "onyx", "--dry-run", ok=None)
    assert res.exit_code == 2 and "unknown format 'onyx'" in res.output and "onnx" in res.output

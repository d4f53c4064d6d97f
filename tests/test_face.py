"""Face detection (MTCNN's output network from the facenet-pytorch wheel) slid over images:
F1 against pasted faces, and the runner finding the astronaut's face and none in a cup."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from .conftest import _export_once, needs_pulled

pytestmark = needs_pulled("face-mtcnn-onet")


def _the_astronauts_face(bundle, tmp_path) -> dict:
    """The bundle's runner on scikit-image's astronaut (one face, top centre) and coffee cup
    (none); returns the face it found."""
    from PIL import Image
    import skimage.data

    astro, cup = tmp_path / "astronaut.png", tmp_path / "coffee.png"
    Image.fromarray(skimage.data.astronaut()).save(astro)
    Image.fromarray(skimage.data.coffee()).save(cup)
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(astro), "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    faces = json.loads(res.stdout)["faces"]
    assert len(faces) == 1
    x1, y1, x2, y2 = faces[0]["box"]
    assert 140 < (x1 + x2) / 2 < 310 and 20 < (y1 + y2) / 2 < 200  # the head, top centre of the photograph
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(cup)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "no face found" in res.stdout
    return faces[0]


@pytest.fixture(scope="module")
def face_pi(tmp_path_factory):
    return _export_once(tmp_path_factory, "face-mtcnn-onet", "--target", "raspberrypi")


def test_detection_metrics_in_the_target_runtime(face_pi):
    report = json.loads((face_pi[0] / "report.json").read_text())
    for name, v in report["variants"].items():
        m = v["quality"]["metrics"]
        assert v["runtime"] == "litert" and m["f1"] >= 85 and m["recall"] >= 85, (name, m)


def test_prelu_relus_stay_in_float_inside_xnnpack(face_pi):
    """ONet's PReLUs lower to standalone RELUs that XNNPACK refuses in int8: the bundle's
    model keeps them in float, and LiteRT delegates every operator of it."""
    from edgezoo.runtimes import litert

    bundle = face_pi[0]
    step = json.loads((bundle / "manifest.json").read_text())["lineage"][-1]
    assert step["params"]["float_for_xnnpack"] == ["RELU"]
    ops = litert.operators(bundle / "model.tflite")
    assert all(o["placement"] == "CPU (XNNPACK)" for o in ops)
    assert {o["dtype"] for o in ops if o["op"] == "CONV_2D"} == {"int8"}


def test_runner_finds_the_astronauts_face(face_pi, tmp_path):
    from PIL import Image

    bundle = face_pi[0]
    assert len(_the_astronauts_face(bundle, tmp_path)["landmarks"]) == 5
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (10, 10)).save(tiny)
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(tiny)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "at least 24 pixels" in res.stderr


@pytest.fixture(scope="module")
def blazeface(tmp_path_factory):
    return _export_once(tmp_path_factory, "face-blazeface", "--target", "raspberrypi")


@needs_pulled("face-blazeface")
def test_blazeface_a_tflite_only_model_imported_and_decoded_by_the_runner(blazeface, tmp_path):
    bundle = blazeface[0]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["precision"] == "fp32" and manifest["task_options"]["anchors"] == 896
    report = json.loads((bundle / "report.json").read_text())
    # the graph rebuilt in PyTorch from the .tflite, converted back to LiteRT: the same detections
    assert report["export_check"]["agreement"] == 100.0 and report["export_check"]["max_abs_diff"] < 1e-2
    m = report["variants"]["fp32"]["quality"]["metrics"]
    assert m["f1"] >= 85 and m["recall"] >= 85, m
    assert len(_the_astronauts_face(bundle, tmp_path)["landmarks"]) == 6


@pytest.mark.slow
@needs_pulled("face-blazeface")
def test_blazeface_int8_through_nncf_and_for_the_edge_tpu(tmp_path):
    from .conftest import run_cli

    res = run_cli("export", "face-blazeface", "--target", "intel-cpu", "--precision", "int8", "--out", str(tmp_path), "--json")
    bundle = tmp_path / json.loads(res.stdout)["bundle"].split("/")[-1]
    q = json.loads((bundle / "report.json").read_text())["variants"]["int8"]["quality"]["metrics"]
    assert q["f1"] >= 85, q
    # the Edge TPU: every tensor int8, inputs and outputs too, within the profile's accuracy budget
    # (the channel-padded residuals are rebuilt as add + concatenate, which litert-torch can lay out)
    res = run_cli("export", "face-blazeface", "--target", "coral-edgetpu", "--out", str(tmp_path / "tpu"), "--json")
    bundle = tmp_path / "tpu" / json.loads(res.stdout)["bundle"].split("/")[-1]
    report = json.loads((bundle / "report.json").read_text())
    f1 = {k: v["quality"]["metrics"]["f1"] for k, v in report["variants"].items()}
    assert f1["fp32"] - f1["int8"] <= 2.0, f1
    from edgezoo.runtimes.litert import _interp

    it = _interp().Interpreter(model_path=str(bundle / "model.tflite"))
    assert {np.dtype(d["dtype"]).name for d in it.get_input_details() + it.get_output_details()} == {"int8"}
    assert len(_the_astronauts_face(bundle, tmp_path)["landmarks"]) == 6


@needs_pulled("face-blazeface")
def test_tflite_graph_rebuilt_in_pytorch_matches_litert(tmp_path):
    """edgezoo.intake.tflite_torch: BlazeFace's .tflite rebuilt as a PyTorch module computes
    what LiteRT computes from the file, and torch.export traces it (the converters need that)."""
    import numpy as np
    import torch

    from edgezoo import registry
    from edgezoo.intake import tflite_file, tflite_torch
    from edgezoo.runtimes.base import run_batch
    from edgezoo.zoo import catalog
    from edgezoo.zoo.sources import resolve_version

    src = tmp_path / "blazeface.tflite"
    src.write_bytes(resolve_version(catalog.get_card("face-blazeface").version()).read_bytes())
    assert tflite_file.float16_weights_to_float32(src) == 74
    x = np.random.default_rng(0).uniform(-1, 1, (3, 128, 128, 3)).astype(np.float32)
    ref = run_batch(registry.runtime("litert").open(src, 1), x)
    module = tflite_torch.build(src).eval()
    with torch.no_grad():
        got = [module(torch.from_numpy(x[i : i + 1])) for i in range(3)]
    for k in range(2):
        out = np.concatenate([g[k].numpy() for g in got])
        assert np.abs(out - ref[k]).max() < 1e-3 * max(1.0, np.abs(ref[k]).max())
    torch.export.export(module, (torch.from_numpy(x[:1]),), strict=True)

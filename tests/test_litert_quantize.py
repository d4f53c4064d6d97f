"""LiteRT static int8 through AI Edge Quantizer: edgezoo's one calibration pass gives AI Edge
Quantizer's own min/max ranges (to the bit) and histogram ranges beside them; both are
offered from the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli


def _fp32_tflite(tmp_path):
    import torch

    class Net(torch.nn.Module):  # padding, a residual addition, hard-swish, pooling, a linear head
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.act = torch.nn.Hardswish()
            self.fc = torch.nn.Linear(8, 4)

        def forward(self, x):
            y = torch.relu(self.conv1(x))
            y = self.act(self.conv2(y)) + y
            return self.fc(torch.nn.functional.adaptive_avg_pool2d(y, 1).flatten(1))

    torch.manual_seed(0)
    return _convert(Net().eval(), tmp_path)


def _convert(net, tmp_path) -> Path:
    """``net`` (taking one 1x3x16x16 input) converted to tmp_path/fp32.tflite by litert-torch."""
    from edgezoo.stages import torch_to_litert as tl

    class Card:  # the fields the stage reads
        id = "test-net"
        input = type("I", (), {"shape": (1, 3, 16, 16), "layout": "NCHW", "dtype": "float32"})()
        inputs = (input,)

    out = tmp_path / "fp32.tflite"
    tl.convert_fp32(net, Card(), out, "test")
    return out


def test_minmax_ranges_are_ai_edge_quantizers_own(tmp_path):
    from ai_edge_litert.interpreter import Interpreter
    from ai_edge_quantizer import quantizer, recipe

    from edgezoo.stages import torch_to_litert as tl

    fp32 = _fp32_tflite(tmp_path)
    calib = np.random.default_rng(1).standard_t(3, (12, 3, 16, 16)).astype(np.float32)  # heavy tails
    it = Interpreter(model_path=str(fp32))  # AI Edge Quantizer's documented calls, nothing of edgezoo's
    key = next(iter(it.get_signature_list()))
    names = list(it.get_signature_runner(key).get_input_details())
    q = quantizer.Quantizer(str(fp32))
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    theirs = q.calibrate({key: [{names[0]: calib[i : i + 1]} for i in range(len(calib))]}, num_threads=1)
    ours = tl.calibrate_litert(fp32, [calib], ("minmax", "histogram"), threads=2, fp32_outputs=5)
    assert set(ours["minmax"]) == set(theirs) == set(ours["histogram"]) and len(theirs) >= 6
    # the fp32 outputs the same pass kept are the interpreter's own on those samples
    it.allocate_tensors()
    out = it.get_output_details()[0]
    for i in range(5):
        it.set_tensor(it.get_input_details()[0]["index"], calib[i : i + 1])
        it.invoke()
        np.testing.assert_allclose(ours["fp32_outputs"][0][i : i + 1], it.get_tensor(out["index"]), rtol=1e-5, atol=1e-6)
    assert len(ours["fp32_outputs"][0]) == 5
    for name, qsv in theirs.items():
        assert set(ours["minmax"][name]) == set(qsv), name
        for field, value in qsv.items():
            mine = ours["minmax"][name][field]
            assert mine.shape == np.shape(value) and mine.dtype == np.asarray(value).dtype and np.array_equal(mine, value), (name, field)
    # histogram ranges are int8 grids that hold zero; on the input, inside what was seen (one step of slack)
    for name, qsv in ours["histogram"].items():
        lo, hi = qsv["min"].item(), qsv["max"].item()
        assert lo <= 0 <= hi and hi > lo, name
    inp = next(n for n in theirs if n.startswith("serving_default"))
    lo, hi = ours["histogram"][inp]["min"].item(), ours["histogram"][inp]["max"].item()
    step = (hi - lo) / 255
    assert calib.min() - step <= lo and hi <= calib.max() + step
    # and they are PT2E's observer's choice on the same values, not min/max under another name
    import torch
    from torchao.quantization.pt2e.observer import HistogramObserver

    obs = HistogramObserver(dtype=torch.int8, quant_min=-128, quant_max=127, qscheme=torch.per_tensor_affine, eps=2**-12)
    for sample in calib:
        obs(torch.from_numpy(sample.reshape(-1).copy()))
    scale, zero = (float(v) for v in obs.calculate_qparams())
    assert np.isclose(lo, (-128 - zero) * scale) and np.isclose(hi, (127 - zero) * scale)
    assert (lo, hi) != (ours["minmax"][inp]["min"].item(), ours["minmax"][inp]["max"].item())
    # min/max is a moving average of each sample's extremes: inside the extremes of all samples
    assert calib.min() < ours["minmax"][inp]["min"].item() and ours["minmax"][inp]["max"].item() < calib.max()


@pytest.mark.parametrize("choice, ranges", [("aeq-histogram", "histogram"), ("aeq", "min/max")])
def test_each_ai_edge_quantizer_range_kind_from_the_cli(tmp_path, choice, ranges):
    res = run_cli("export", "digits-cnn", "--target", "raspberrypi", "--tflite-quantizer", choice, "--out", str(tmp_path), "--json")
    doc = json.loads(res.stdout)
    report = doc["report"]
    step = json.loads((tmp_path / doc["bundle"].split("/")[-1] / "manifest.json").read_text())["lineage"][-1]
    assert step["tool"] == "ai-edge-quantizer" and step["params"]["activation_ranges"].startswith(ranges)
    assert not any(n.startswith("auto:") for n in step.get("notes", []))
    fp32, int8 = report["variants"]["fp32"]["quality"], report["variants"]["int8"]["quality"]
    assert fp32["top1"] - int8["top1"] <= 1.0


def test_auto_scores_on_more_samples_only_when_the_choice_is_close(tmp_path, monkeypatch):
    """auto scores both candidates on 16 calibration samples, and on 32 when their SQNRs are
    closer than CLOSE_DB (digits-cnn's are 18 dB apart: made "close" by a huge CLOSE_DB)."""
    from edgezoo.formats import tflite

    def note(close_db, name):
        monkeypatch.setattr(tflite, "CLOSE_DB", close_db)
        res = run_cli("export", "digits-cnn", "--target", "raspberrypi", "--no-cache", "--out", str(tmp_path / name), "--json")
        step = json.loads((Path(json.loads(res.stdout)["bundle"]) / "manifest.json").read_text())["lineage"][-1]
        return next(n for n in step["notes"] if n.startswith("auto: SQNR against fp32"))

    clear, close = note(tflite.CLOSE_DB, "clear"), note(1000.0, "close")
    assert " on 16 calibration samples" in clear and " on 32 calibration samples" in close
    assert clear.split(": ", 2)[2] != close.split(": ", 2)[2]  # scored on other samples
    assert clear.endswith("kept histogram") and close.endswith("kept histogram")


def test_int8_operators_xnnpack_cannot_take_stay_in_float(tmp_path):
    """PReLU lowers to standalone RELUs; in int8 XNNPACK refuses them and they would run on
    LiteRT's builtin kernels between pieces of the delegated graph. They are left in float,
    checked against the interpreter's own delegation of the built file."""
    import torch

    from edgezoo.runtimes import litert
    from edgezoo.stages import torch_to_litert as tl

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.PReLU(16), torch.nn.Conv2d(16, 16, 3), torch.nn.PReLU(16),
                              torch.nn.Flatten(), torch.nn.Linear(16 * 12 * 12, 4)).eval()
    torch.manual_seed(0)

    fp32, out = _convert(net, tmp_path), tmp_path / "int8.tflite"
    calib = [np.random.default_rng(0).standard_normal((16, 3, 16, 16)).astype(np.float32)]
    plain = tl.calibrate_litert(fp32, calib)["minmax"]
    from ai_edge_quantizer import quantizer, recipe

    q = quantizer.Quantizer(str(fp32))  # AI Edge Quantizer alone: the int8 RELUs fall out of XNNPACK
    q.load_quantization_recipe(recipe.static_wi8_ai8())
    (tmp_path / "aeq.tflite").write_bytes(bytes(q.quantize(plain).quantized_model))
    assert {o["op"] for o in litert.operators(tmp_path / "aeq.tflite") if o["placement"] == "CPU (builtin kernel)"} == {"RELU"}
    step = tl.quantize_aeq_static(fp32, out, calib, "test")
    assert step.params["float_for_xnnpack"] == ["RELU"]
    ops = litert.operators(out)
    assert all(o["placement"] == "CPU (XNNPACK)" for o in ops)
    assert any(o["op"] == "CONV_2D" and o["dtype"] == "int8" for o in ops) and any(o["op"] == "RELU" and o["dtype"] == "float32" for o in ops)
    # a full-integer target (Edge TPU, TFLite Micro) keeps every operator int8 instead
    step = tl.quantize_aeq_static(fp32, out, calib, "test", xnnpack=False)
    assert "float_for_xnnpack" not in step.params
    assert {o["dtype"] for o in litert.operators(out) if o["op"] in ("RELU", "CONV_2D", "MUL")} == {"int8"}


def test_operators_xnnpack_refuses_in_float_too_stay_int8(tmp_path):
    """A max pool with padding lowers to PADV2 (padding with the lowest value), which XNNPACK
    takes in neither precision: rebuilding it in float would only add conversions around it."""
    import torch

    from edgezoo.runtimes import litert
    from edgezoo.stages import torch_to_litert as tl

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(3, 2, padding=1),
                              torch.nn.Conv2d(8, 8, 3), torch.nn.Flatten(), torch.nn.Linear(8 * 5 * 5, 4)).eval()

    fp32, out = _convert(net, tmp_path), tmp_path / "int8.tflite"
    assert {o["op"] for o in litert.operators(fp32) if o["placement"] == "CPU (builtin kernel)"} == {"PADV2"}
    calib = [np.random.default_rng(0).standard_normal((16, 3, 16, 16)).astype(np.float32)]
    step = tl.quantize_aeq_static(fp32, out, calib, "test")
    assert "float_for_xnnpack" not in step.params
    outside = [o for o in litert.operators(out) if o["placement"] == "CPU (builtin kernel)"]
    assert [(o["op"], o["dtype"]) for o in outside] == [("PADV2", "int8")]

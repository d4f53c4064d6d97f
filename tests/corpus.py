"""A corpus of third-party-style models, built here without the internet.

Each entry is a model as other tools write them: the TorchScript exporter at old opsets
with dynamic axes and Constant / ConstantOfShape nodes, the dynamo exporter, several
inputs and outputs, If and Loop control flow, and ONNX files from a non-PyTorch producer
(skl2onnx). Every entry comes with calibration samples (.npy or .npz keyed by input name)
and the --input-shape flags its dynamic dimensions need.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Entry:
    name: str
    path: Path
    calib: Path
    shape_flags: list[str] = field(default_factory=list)  # ["--input-shape", "..."] pairs
    bridges: bool = True  # onnx2torch can rebuild it for the PyTorch-built formats
    note: str = ""


def _torch_cnn(torch, classes: int = 6):
    class Cnn(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(8)
            self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1, stride=2)
            self.fc = torch.nn.Linear(16, classes)

        def forward(self, x):
            x = torch.relu(self.bn(self.conv1(x)))
            x = torch.relu(self.conv2(x))
            return self.fc(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(x, 1), 1))

    torch.manual_seed(0)
    return Cnn().eval()


def build(root: Path) -> dict[str, Entry]:
    import onnx
    import torch
    from onnx import TensorProto, helper, numpy_helper

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    entries: dict[str, Entry] = {}
    img = rng.standard_normal((40, 3, 16, 16)).astype(np.float32)
    np.save(root / "img.npy", img)

    def export(model, args, name, **kw):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, args, str(root / name), **kw)
        return root / name

    cnn = _torch_cnn(torch)
    x = torch.from_numpy(img[:1])

    # TorchScript exporter, opset 9, dynamic batch, height and width
    p = export(cnn, (x,), "ts_opset9_dynamic.onnx", opset_version=9, dynamo=False, input_names=["image"], output_names=["logits"],
               dynamic_axes={"image": {0: "batch", 2: "height", 3: "width"}, "logits": {0: "batch"}})
    entries["ts_opset9_dynamic"] = Entry("ts_opset9_dynamic", p, root / "img.npy", ["--input-shape", "1x3x16x16"])

    # opset 11 without constant folding: Constant nodes, and a ConstantOfShape built from the input's shape
    class WithConstants(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cnn = cnn

        def forward(self, x):
            y = self.cnn(x)
            return y + torch.ones(y.shape[0], y.shape[1]) * 0.5

    p = export(WithConstants().eval(), (x,), "ts_opset11_constants.onnx", opset_version=11, dynamo=False, do_constant_folding=False,
               input_names=["image"], output_names=["logits"], dynamic_axes={"image": {0: "n"}})
    entries["ts_opset11_constants"] = Entry("ts_opset11_constants", p, root / "img.npy", ["--input-shape", "1x3x16x16"])

    # two inputs, two outputs, dynamic batch, opset 13
    class TwoInTwoOut(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.fc = torch.nn.Linear(8, 5)

        def forward(self, image, extra):
            z = torch.relu(self.conv(image)).mean((2, 3))
            return self.fc(z) + extra, z

    torch.manual_seed(1)
    extra = rng.standard_normal((40, 5)).astype(np.float32)
    p = export(TwoInTwoOut().eval(), (x, torch.from_numpy(extra[:1])), "two_in_two_out.onnx", opset_version=13, dynamo=False,
               input_names=["image", "extra"], output_names=["scores", "features"], dynamic_axes={"image": {0: "b"}, "extra": {0: "b"}})
    np.savez(root / "two.npz", image=img, extra=extra)
    entries["two_in_two_out"] = Entry("two_in_two_out", p, root / "two.npz",
                                      ["--input-shape", "image:1x3x16x16", "--input-shape", "extra:1x5"])

    # the torch.export-based (dynamo) exporter, its default opset
    p = export(cnn, (x,), "dynamo.onnx", dynamo=True, input_names=["image"], output_names=["logits"])
    entries["dynamo"] = Entry("dynamo", p, root / "img.npy")

    # If on a shape: folded once the input shape is fixed (how dynamic-shape exports often look)
    class ShapeIf(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.cnn = cnn

        def forward(self, x):
            if x.shape[2] > 8:
                x = torch.nn.functional.avg_pool2d(x, 2) * 4.0
            return self.cnn(x)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scripted = torch.jit.script(ShapeIf().eval())
    p = export(scripted, (x,), "if_on_shape.onnx", opset_version=13, dynamo=False, input_names=["image"], output_names=["logits"],
               dynamic_axes={"image": {2: "h", 3: "w"}})
    entries["if_on_shape"] = Entry("if_on_shape", p, root / "img.npy", ["--input-shape", "1x3x16x16"])

    # Loop (a fixed 3-step recurrence over a dense layer), written with onnx.helper: a non-PyTorch producer
    w = numpy_helper.from_array((rng.standard_normal((12, 12)) * 0.2).astype(np.float32), "w")
    body = helper.make_graph(
        [helper.make_node("MatMul", ["h_in", "w"], ["mm"]), helper.make_node("Tanh", ["mm"], ["h_out"]),
         helper.make_node("Identity", ["cond_in"], ["cond_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("h_in", TensorProto.FLOAT, [1, 12])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("h_out", TensorProto.FLOAT, [1, 12])],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)],
        "loop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 12])], [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 12])],
        [numpy_helper.from_array(np.array(3, np.int64), "trips"), numpy_helper.from_array(np.array(True), "cond"), w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgezoo-corpus")
    model.ir_version = 8
    onnx.save(model, root / "loop.onnx")
    np.save(root / "vec12.npy", rng.standard_normal((40, 12)).astype(np.float32))
    entries["loop"] = Entry("loop", root / "loop.onnx", root / "vec12.npy", bridges=False, note="onnx2torch has no Loop")

    # a non-PyTorch producer: scikit-learn's MLP through skl2onnx (dynamic batch)
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPRegressor

    xd, yd = load_digits(return_X_y=True)
    xd = (xd / 16.0).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=60, random_state=0).fit(xd[:600], yd[:600].astype(np.float64))
        onx = to_onnx(reg, xd[:1], target_opset=13)
    (root / "skl_mlp.onnx").write_bytes(onx.SerializeToString())
    np.save(root / "digits64.npy", xd[600:640])
    entries["skl_mlp"] = Entry("skl_mlp", root / "skl_mlp.onnx", root / "digits64.npy", ["--input-shape", "1x64"])
    return entries


def build_ml_domain(root: Path) -> Path:
    """A scikit-learn pipeline whose ONNX uses the ai.onnx.ml domain (Scaler,
    ArrayFeatureExtractor): onnxruntime runs it, so `check` must not refuse it."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_digits
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xd, yd = load_digits(return_X_y=True)
    xd = xd.astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(16,), max_iter=30, random_state=0)).fit(xd[:400], yd[:400])
        onx = to_onnx(clf, xd[:1], options={"zipmap": False}, target_opset=13)
    path = root / "skl_pipeline_ml.onnx"
    path.write_bytes(onx.SerializeToString())
    return path

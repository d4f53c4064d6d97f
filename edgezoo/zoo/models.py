"""Builders for the zoo's architectures (imports torch: only call from pipeline stages)."""

from __future__ import annotations

from edgezoo.errors import NotFoundError


def _digits_cnn():
    import torch.nn as nn

    class DigitsCNN(nn.Module):
        """A small CNN for 8x8 digits: three conv blocks, global pooling, a linear head."""

        def __init__(self, num_classes: int = 10):
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 32, 3, padding=1, bias=False),
                nn.BatchNorm2d(32),
                nn.ReLU(inplace=True),
                nn.Conv2d(32, 64, 3, padding=1, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
                nn.Conv2d(64, 128, 3, padding=1, bias=False),
                nn.BatchNorm2d(128),
                nn.ReLU(inplace=True),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )
            self.classifier = nn.Linear(128, num_classes)

        def forward(self, x):
            return self.classifier(self.features(x))

    return DigitsCNN()


def _kws_dscnn(width: int = 64):
    """A depthwise-separable CNN for keyword spotting (the MLPerf Tiny DS-CNN layout, 64
    channels; ``edgezoo.kws_dscnn:32`` is half as wide) on 49 frames of features (40 log-mel
    bands, or the MLPerf reference's 10 MFCCs: the card's input shape): one second of audio
    in, 12 scores out."""
    import torch.nn as nn

    def block(cin, cout, k, stride, pad, groups=1):
        return [nn.Conv2d(cin, cout, k, stride, pad, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    layers = block(1, width, (10, 4), (2, 2), (5, 1))
    for _ in range(4):
        layers += block(width, width, 3, 1, 1, groups=width) + block(width, width, 1, 1, 0)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 12)]
    return nn.Sequential(*layers)


def _efficientnet_lite0():
    """EfficientNet-Lite0 (Tan & Le; the "lite" variant for mobile and MCU accelerators: ReLU6,
    no squeeze-excitation, fixed stem and head) with the parameter names of lukemelas'
    EfficientNet-PyTorch, and TensorFlow's "same" padding (the weights come from TF)."""
    import math

    import torch.nn as nn
    import torch.nn.functional as F

    class SameConv(nn.Conv2d):
        def forward(self, x):
            ih, iw = x.shape[-2:]
            kh, kw = self.weight.shape[-2:]
            sh, sw = self.stride
            ph = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
            pw = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
            if ph or pw:
                x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
            return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, cin, cout, k, s, e):
            super().__init__()
            mid = cin * e
            self.expand = e != 1
            if self.expand:
                self._expand_conv, self._bn0 = SameConv(cin, mid, 1, bias=False), bn(mid)
            self._depthwise_conv, self._bn1 = SameConv(mid, mid, k, s, groups=mid, bias=False), bn(mid)
            self._project_conv, self._bn2 = SameConv(mid, cout, 1, bias=False), bn(cout)
            self.skip = s == 1 and cin == cout

        def forward(self, x):
            y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
            y = F.relu6(self._bn1(self._depthwise_conv(y)))
            y = self._bn2(self._project_conv(y))
            return y + x if self.skip else y

    stages = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]

    class EfficientNetLite0(nn.Module):
        def __init__(self):
            super().__init__()
            self._conv_stem, self._bn0 = SameConv(3, 32, 3, 2, bias=False), bn(32)
            blocks, cin = [], 32
            for repeats, k, s, e, cout in stages:
                for r in range(repeats):
                    blocks.append(Block(cin, cout, k, s if r == 0 else 1, e))
                    cin = cout
            self._blocks = nn.ModuleList(blocks)
            self._conv_head, self._bn1 = SameConv(320, 1280, 1, bias=False), bn(1280)
            self._fc = nn.Linear(1280, 1000)

        def forward(self, x):
            x = F.relu6(self._bn0(self._conv_stem(x)))
            for b in self._blocks:
                x = b(x)
            x = F.relu6(self._bn1(self._conv_head(x)))
            return self._fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

    return EfficientNetLite0()


def _imu_cnn():
    """A small 1-D CNN for 100 x 3 accelerometer windows (channels first): three convolution
    blocks, global average pooling, six gesture scores."""
    import torch.nn as nn

    def block(cin, cout, stride):
        return [nn.Conv1d(cin, cout, 5, stride, 2, bias=False), nn.BatchNorm1d(cout), nn.ReLU()]

    return nn.Sequential(*block(3, 16, 1), *block(16, 32, 2), *block(32, 32, 2), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 6))


def _mtcnn_onet():
    """MTCNN's output network (Zhang et al. 2016) with facenet-pytorch's parameter names: a
    48x48 RGB window ((pixel - 127.5) / 128) in; face/non-face logits, a box correction
    (fractions of the window) and five landmarks out. The softmax is left to the task."""
    import torch.nn as nn

    class ONet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

        def forward(self, x):
            x = self.pool1(self.prelu1(self.conv1(x)))
            x = self.pool2(self.prelu2(self.conv2(x)))
            x = self.pool3(self.prelu3(self.conv3(x)))
            x = self.prelu4(self.conv4(x))
            x = self.prelu5(self.dense5(x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)))  # the Caffe original's order
            return self.dense6_1(x), self.dense6_2(x), self.dense6_3(x)

    return ONet()


def _silero_vad_16k():
    """Silero VAD v6 (16 kHz), a port of its published architecture that loads the
    ``silero_vad_16k.safetensors`` state dict as is. One call classifies a 512-sample chunk
    (32 ms) with 64 samples of left context; the LSTM state is an input and an output, so the
    caller streams (the bundle's runner and the voice-activity task do)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class SileroVad16k(nn.Module):
        def __init__(self):
            super().__init__()
            self.stft_conv = nn.Conv1d(1, 258, 256, stride=128, bias=False)  # STFT as a convolution: 129 bins x (re, im)
            self.conv1 = nn.Conv1d(129, 128, 3, padding=1)
            self.conv2 = nn.Conv1d(128, 64, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(64, 64, 3, stride=2, padding=1)
            self.conv4 = nn.Conv1d(64, 128, 3, padding=1)
            self.lstm_cell = nn.LSTMCell(128, 128)  # its parameters; the cell is computed below with static slices
            self.final_conv = nn.Conv1d(128, 1, 1)

        def forward(self, audio, state):
            x = F.pad(audio.unsqueeze(1), (0, 64), mode="reflect")
            spec = self.stft_conv(x)
            mag = torch.sqrt(spec[:, :129] ** 2 + spec[:, 129:] ** 2)
            for conv in (self.conv1, self.conv2, self.conv3, self.conv4):
                mag = torch.relu(conv(mag))
            x, h, c = mag.squeeze(-1), state[:, 0], state[:, 1]  # state: (batch, h/c, 128)
            cell = self.lstm_cell  # written out: exporters trace nn.LSTMCell's chunk() poorly
            gates = F.linear(x, cell.weight_ih, cell.bias_ih) + F.linear(h, cell.weight_hh, cell.bias_hh)
            i, f = torch.sigmoid(gates[:, :128]), torch.sigmoid(gates[:, 128:256])
            g, o = torch.tanh(gates[:, 256:384]), torch.sigmoid(gates[:, 384:])
            c = f * c + i * g
            h = o * torch.tanh(c)
            prob = torch.sigmoid(self.final_conv(torch.relu(h).unsqueeze(-1))).squeeze(-1)
            return prob, torch.stack([h, c], dim=1)

    return SileroVad16k()


def _minilm_l6():
    """all-MiniLM-L6-v2: a 6-layer BERT encoder (hidden 384, 12 heads) with mean pooling
    over the attention mask and L2 normalisation, as sentence-transformers runs it. Module
    names follow Hugging Face's BertModel, so its safetensors load as they are. Inputs:
    token ids and attention mask (int64, 1 x 128); output: the unit-length embedding."""
    import math

    import torch
    import torch.nn as nn

    hidden, heads, inter, layers = 384, 12, 1536, 6

    class Embeddings(nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = nn.Embedding(30522, hidden)
            self.position_embeddings = nn.Embedding(512, hidden)
            self.token_type_embeddings = nn.Embedding(2, hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)
            self.register_buffer("position_ids", torch.arange(512).unsqueeze(0))

        def forward(self, ids):
            n = ids.shape[1]
            x = self.word_embeddings(ids) + self.position_embeddings(self.position_ids[:, :n]) + self.token_type_embeddings.weight[0]
            return self.LayerNorm(x)

    class SelfAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

        def forward(self, x, bias):
            b, n, _ = x.shape
            q, k, v = (lin(x).view(b, n, heads, hidden // heads).transpose(1, 2) for lin in (self.query, self.key, self.value))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hidden // heads) + bias, dim=-1)
            return (att @ v).transpose(1, 2).reshape(b, n, hidden)

    class DenseNorm(nn.Module):
        def __init__(self, d_in):
            super().__init__()
            self.dense = nn.Linear(d_in, hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=1e-12)

        def forward(self, x, residual):
            return self.LayerNorm(self.dense(x) + residual)

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.self = SelfAttention()
            self.output = DenseNorm(hidden)

    class Intermediate(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense = nn.Linear(hidden, inter)

        def forward(self, x):
            return torch.nn.functional.gelu(self.dense(x))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = Attention()
            self.intermediate = Intermediate()
            self.output = DenseNorm(inter)

        def forward(self, x, bias):
            a = self.attention.output(self.attention.self(x, bias), x)
            return self.output(self.intermediate(a), a)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.ModuleList(Layer() for _ in range(layers))

    class MiniLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embeddings = Embeddings()
            self.encoder = Encoder()
            self.pooler = nn.Module()  # BERT's CLS pooler: in the published weights, unused by sentence-transformers
            self.pooler.dense = nn.Linear(hidden, hidden)

        def forward(self, input_ids, attention_mask):
            mask = attention_mask.to(torch.float32)
            bias = ((1.0 - mask) * -1e4)[:, None, None, :]  # padded tokens get no attention
            x = self.embeddings(input_ids)
            for layer in self.encoder.layer:
                x = layer(x, bias)
            summed = (x * mask[:, :, None]).sum(dim=1)
            pooled = summed / mask.sum(dim=1, keepdim=True).clamp(min=1.0)
            return pooled / pooled.norm(dim=1, keepdim=True).clamp(min=1e-12)

    return MiniLM()


def _torchvision(name: str):
    def build():
        from edgezoo.errors import require

        models = require("torchvision.models", package="torchvision", extra="torch", purpose=f"the {name} architecture")
        return getattr(models, name)(weights=None)

    return build


ARCHITECTURES = {
    "edgezoo.digits_cnn": _digits_cnn,
    "silero.vad16k": _silero_vad_16k,
    "edgezoo.kws_dscnn": _kws_dscnn,
    "mtcnn.onet": _mtcnn_onet,
    "edgezoo.imu_cnn": _imu_cnn,
    "efficientnet.lite0": _efficientnet_lite0,
    "sentence-transformers.all-minilm-l6-v2": _minilm_l6,
    "torchvision.mobilenet_v2": _torchvision("mobilenet_v2"),
    "torchvision.mobilenet_v3_small": _torchvision("mobilenet_v3_small"),
    "torchvision.resnet18": _torchvision("resnet18"),
    "torchvision.resnet50": _torchvision("resnet50"),
}


def _mlp(spec: str):
    """``edgezoo.mlp:IN-H1-...-OUT``: ReLU MLP; with ``+affine`` the output is mapped to the
    target's units by a stored scale and shift (regression models predict in real units)."""
    import torch
    import torch.nn as nn

    affine = spec.endswith("+affine")
    dims = [int(d) for d in spec.removesuffix("+affine").split("-")]

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            layers = []
            for a, b in zip(dims[:-2], dims[1:-1]):
                layers += [nn.Linear(a, b), nn.ReLU()]
            layers.append(nn.Linear(dims[-2], dims[-1]))
            self.net = nn.Sequential(*layers)
            if affine:
                self.register_buffer("out_scale", torch.ones(dims[-1]))
                self.register_buffer("out_shift", torch.zeros(dims[-1]))

        def forward(self, x):
            y = self.net(x)
            return y * self.out_scale + self.out_shift if affine else y

    return MLP()


# Weights published inside an ONNX file: initializer name -> the architecture's parameter name.
ONNX_WEIGHT_NAMES = {
    "silero.vad16k": {
        "model.stft.forward_basis_buffer": "stft_conv.weight",
        **{f"model.encoder.{i}.reparam_conv.{p}": f"conv{i + 1}.{p}" for i in range(4) for p in ("weight", "bias")},
        **{f"model.decoder.rnn.{p}": f"lstm_cell.{p}" for p in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")},
        "model.decoder.decoder.2.weight": "final_conv.weight", "model.decoder.decoder.2.bias": "final_conv.bias",
    },
}


def onnx_state_dict(architecture: str, path) -> dict:
    """Tensors read from an ONNX file's initializers (arrays only: nothing is executed)."""
    import torch

    from edgezoo.errors import require

    onnx = require("onnx", extra="onnx", purpose="reading weights stored in an ONNX file")
    from onnx import numpy_helper

    names = ONNX_WEIGHT_NAMES.get(architecture)
    if names is None:
        raise NotFoundError("architecture with ONNX weights", architecture, sorted(ONNX_WEIGHT_NAMES))
    model = onnx.load(str(path))
    found = {i.name: i for i in model.graph.initializer}
    return {ours: torch.from_numpy(numpy_helper.to_array(found[theirs]).copy()) for theirs, ours in names.items() if theirs in found}


def _keras(name: str, layout: str):
    import json
    from importlib import resources

    path = resources.files("edgezoo.zoo") / "architectures" / f"{name}.json"
    if not path.is_file():
        raise NotFoundError("Keras architecture", name, sorted(p.name[:-5] for p in (resources.files("edgezoo.zoo") / "architectures").iterdir()))
    from edgezoo.zoo import keras

    return keras.build(json.loads(path.read_text(encoding="utf-8")), layout)


def _autoencoder(spec: str):
    """``edgezoo.autoencoder:IN-H...-CODE``: a ReLU autoencoder; it returns the reconstruction
    (only Linear and ReLU: every format and int8 kernel takes it), and the anomaly score, the
    mean squared reconstruction error over a threshold, is computed beside it by the task and
    the runner (``score`` here, for training)."""
    import torch
    import torch.nn as nn

    dims = [int(d) for d in spec.split("-")]

    def mlp(ds):
        layers = []
        for a, b in zip(ds[:-1], ds[1:]):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return layers[:-1]

    class AutoEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.Sequential(*mlp(dims), nn.ReLU())
            self.decoder = nn.Sequential(*mlp(dims[::-1]))
            self.register_buffer("threshold", torch.ones(1))

        def score(self, x):
            return ((x - self(x)) ** 2).mean(dim=1, keepdim=True) / self.threshold

        def forward(self, x):
            return self.decoder(self.encoder(x))

    return AutoEncoder()


# Architectures named with a parameter: PREFIX:PARAMETER (or PREFIX.NAME for Keras graphs)
PARAMETRIZED = {
    "edgezoo.mlp": (_mlp, "edgezoo.mlp:IN-H1-...-OUT[+affine]"),
    "edgezoo.autoencoder": (_autoencoder, "edgezoo.autoencoder:IN-H...-CODE"),
    "edgezoo.kws_dscnn": (lambda width: _kws_dscnn(int(width)), "edgezoo.kws_dscnn:WIDTH"),
    "keras": (lambda name: _keras(name, "keras"), "keras.NAME"),
    "keras-nchw": (lambda name: _keras(name, "NCHW"), "keras-nchw.NAME"),
}


def build(architecture: str):
    """A zoo architecture by name: ``edgezoo.*`` and ``torchvision.*`` (ARCHITECTURES), or one
    of PARAMETRIZED: ``edgezoo.mlp:IN-...-OUT``, ``edgezoo.autoencoder:...``,
    ``edgezoo.kws_dscnn:WIDTH``, ``keras.NAME`` / ``keras-nchw.NAME`` (a Keras layer graph
    committed in edgezoo/zoo/architectures, taking its own channels-last input or NCHW images)."""
    base, sep, head = architecture.partition("+head=")
    if sep:  # a zoo architecture with a new classifier head (edgezoo finetune)
        try:
            n = int(head)
        except ValueError:
            raise NotFoundError("architecture", architecture, ["ARCH+head=N"]) from None
        model = build(base)
        replace_head(model, n)
        return model.eval()
    if architecture in ARCHITECTURES:
        model = ARCHITECTURES[architecture]()
    else:
        prefix, sep, param = architecture.partition(":") if ":" in architecture else architecture.partition(".")
        if not sep or prefix not in PARAMETRIZED:
            raise NotFoundError("architecture", architecture, sorted(ARCHITECTURES) + [form for _, form in PARAMETRIZED.values()])
        make, form = PARAMETRIZED[prefix]
        try:
            model = make(param)
        except ValueError:
            raise NotFoundError("architecture", architecture, [form]) from None
    model.eval()
    return model


def count_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model, input_shape, *extra_shapes, dtypes=()) -> int:
    """Multiply-accumulates of one forward pass: half the FLOPs torch's own FlopCounterMode
    counts for convolutions and matrix products (the figure cards state and the
    microcontroller latency estimate uses)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        shapes = (input_shape, *extra_shapes)
        kinds = list(dtypes) + ["float32"] * (len(shapes) - len(dtypes))
        model(*(torch.zeros(tuple(s), dtype=getattr(torch, k)) for s, k in zip(shapes, kinds)))
    return counter.get_total_flops() // 2


def replace_head(model, classes: int) -> str:
    """Replace the model's last linear layer (its classifier) with a fresh one of ``classes``
    outputs; returns the layer's name."""
    import torch

    from edgezoo.errors import UsageError

    name = next((n for n, m in reversed(list(model.named_modules())) if isinstance(m, torch.nn.Linear)), None)
    if name is None:
        raise UsageError("the model has no linear classifier layer to replace", hint="fine-tune it with the same classes as its card")
    parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    old = model.get_submodule(name)
    torch.manual_seed(0)
    new = torch.nn.Linear(old.in_features, classes, bias=old.bias is not None)
    if isinstance(parent, torch.nn.Sequential) or hasattr(parent, name.rpartition(".")[2]):
        setattr(parent, name.rpartition(".")[2], new)
    return name

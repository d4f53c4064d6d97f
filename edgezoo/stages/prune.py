"""Pruning and fine-tuning of the PyTorch source model, before any format is built.

- **structured**: whole channels removed with torch-pruning's dependency graph (a channel
  dropped from a convolution is dropped from everything that consumes it: batch norms,
  residual adds, the next layer's inputs), so the exported file is really smaller and
  faster. Importance: the group's L2 weight magnitude. Channel counts are kept multiples
  of 8 where a layer has at least 16 (the vector width CPU kernels tile by). The layers
  that produce the model's outputs keep every channel.
- **unstructured**: the smallest weights (global L1 magnitude over convolutions and linear
  layers) set to zero with ``torch.nn.utils.prune``. The dense file keeps its size and the
  CPU runtimes their speed; only the compressed size shrinks, and the report says so.
- **fine-tuning**: a few epochs on the card's training split (never its calibration or
  evaluation split) to win back what pruning cost.

Ratios are fractions of channels (structured) or of weights (unstructured) to remove.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from edgezoo.errors import UsageError, require

METHODS = ("structured", "unstructured")
ROUND_TO = 8
PRUNE_HINT = "write it like structured:0.5, unstructured:0.7 or structured:0.5,layer1.0.conv1=0.25 (ratios in (0, 1))"


@dataclass(frozen=True)
class PruneSpec:
    method: str
    ratio: float  # global (0 when only listed layers are pruned)
    layers: dict[str, float] = field(default_factory=dict)  # module name -> its own ratio

    def label(self) -> str:
        parts = ([f"{self.ratio:g}"] if self.ratio else []) + [f"{k}={v:g}" for k, v in self.layers.items()]
        return f"{self.method}:{','.join(parts)}"


def parse_prune(text: str) -> PruneSpec:
    """``structured:0.5``, ``unstructured:0.7``, ``structured:0.5,features.3=0.25``
    (a layer given 0 keeps all its channels)."""
    method, _, rest = text.partition(":")
    method = method.strip().lower()
    if method not in METHODS:
        raise UsageError(f"--prune {text!r}: unknown method {method!r}", hint=PRUNE_HINT)
    ratio, layers = 0.0, {}
    for item in (p.strip() for p in rest.split(",") if p.strip()):
        name, eq, value = item.rpartition("=")
        value = value if eq else item
        try:
            r = float(value)
        except ValueError:
            raise UsageError(f"--prune {text!r}: {value!r} is not a ratio", hint=PRUNE_HINT) from None
        lo_ok = r >= 0 if eq else r > 0
        if not (lo_ok and r < 1) or math.isnan(r):
            raise UsageError(f"--prune {text!r}: ratio {value} is outside (0, 1)", hint=PRUNE_HINT)
        if eq:
            layers[name.strip()] = r
        else:
            ratio = r
    if not ratio and not any(layers.values()):
        raise UsageError(f"--prune {text!r} names no ratio", hint=PRUNE_HINT)
    return PruneSpec(method, ratio, layers)


def _torch():
    return require("torch", extra="torch", purpose="pruning")


def prunable_layers(model) -> dict[str, object]:
    torch = _torch()
    return {n: m for n, m in model.named_modules() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))}


def _check_layers(model, spec: PruneSpec) -> dict:
    layers = prunable_layers(model)
    for name in spec.layers:
        if name not in layers:
            import difflib

            close = difflib.get_close_matches(name, list(layers), n=3, cutoff=0.4)
            raise UsageError(f"--prune names layer {name!r}, which the model does not have (or which is not a convolution or linear layer)",
                             hint=("did you mean " + ", ".join(close) + "?") if close else
                             f"its prunable layers are {', '.join(list(layers)[:8])}{', ...' if len(layers) > 8 else ''}")
    return layers


def _output_layers(model, example) -> list:
    """The convolutions and linear layers whose outputs reach the model's outputs without
    passing another one (the classifier head): their output channels are the model's
    contract and stay."""
    torch = _torch()
    order = []
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(mod)) for m in prunable_layers(model).values()]
    try:
        with torch.no_grad():
            model(*example)
    finally:
        for h in hooks:
            h.remove()
    return order[-1:] if order else []


def count(model, example) -> tuple[int, int]:
    """(MACs, parameters) of the PyTorch model on one example, counted by torch-pruning."""
    tp = require("torch_pruning", package="torch-pruning", extra="prune", purpose="pruning")
    macs, params = tp.utils.count_ops_and_params(model, example[0] if len(example) == 1 else tuple(example))
    return int(macs), int(params)


def prune(model, example: list, spec: PruneSpec):
    """A pruned copy of ``model`` (the original is left as it was) and what was done."""
    torch = _torch()
    tp = require("torch_pruning", package="torch-pruning", extra="prune", purpose="pruning")
    model = copy.deepcopy(model).eval()
    layers = _check_layers(model, spec)
    ex = [torch.from_numpy(np.ascontiguousarray(a)) for a in example]
    macs0, params0 = count(model, ex)
    record = {"method": spec.method, "ratio": spec.ratio, "layers": dict(spec.layers), "params_before": params0, "macs_before": macs0}
    if spec.method == "structured":
        heads = _output_layers(model, ex)
        per_layer = {layers[n]: r for n, r in spec.layers.items() if r > 0}
        ignored = heads + [layers[n] for n, r in spec.layers.items() if r == 0]
        wide = all(getattr(m, "out_channels", getattr(m, "out_features", 0)) >= 2 * ROUND_TO for m in layers.values() if m not in ignored)
        try:
            pruner = tp.pruner.MetaPruner(
                model, ex[0] if len(ex) == 1 else tuple(ex), importance=tp.importance.GroupMagnitudeImportance(p=2),
                pruning_ratio=spec.ratio, pruning_ratio_dict=per_layer or None, ignored_layers=ignored,
                round_to=ROUND_TO if wide else None)
            pruner.step()
        except Exception as exc:  # the dependency graph of an unusual model
            from edgezoo.errors import PipelineError, first_line

            raise PipelineError(f"structured pruning failed: {type(exc).__name__}: {first_line(exc)[:200]}",
                                hint="try unstructured:RATIO, or name the layers to prune (structured:layer=0.5)") from exc
        record["round_to"] = ROUND_TO if wide else 1
        record["kept_whole"] = [n for n, m in layers.items() if m in heads]
    else:
        import torch.nn.utils.prune as tprune

        targets = [(m, "weight") for n, m in layers.items() if (spec.layers.get(n, spec.ratio) > 0)]
        if spec.layers:  # per layer: each its own amount
            for n, m in layers.items():
                r = spec.layers.get(n, spec.ratio)
                if r > 0:
                    tprune.l1_unstructured(m, "weight", amount=r)
        else:
            tprune.global_unstructured(targets, pruning_method=tprune.L1Unstructured, amount=spec.ratio)
        for m, _ in targets:
            tprune.remove(m, "weight")  # the zeros become the weights: no masks left in the graph
    model.eval()
    macs1, params1 = count(model, ex)
    zeros = total = 0
    for m in prunable_layers(model).values():
        w = m.weight.detach()
        zeros += int((w == 0).sum())
        total += w.numel()
    record.update(params_after=params1, macs_after=macs1, weight_sparsity=round(zeros / max(total, 1), 4))
    return model, record


def finetune(model, x: list[np.ndarray], y: np.ndarray, epochs: int, *, lr: float = 1e-3, batch: int = 64, seed: int = 0,
             x_val: list[np.ndarray] | None = None, y_val: np.ndarray | None = None, patience: int = 3, progress=None) -> dict:
    """Train ``model`` in place with cross-entropy on (x, y); with a validation set, the best
    epoch's weights are kept and training stops after ``patience`` epochs without gain.
    Deterministic for a given seed (one generator orders the batches)."""
    torch = _torch()
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xs = [torch.from_numpy(np.ascontiguousarray(a)) for a in x]
    ys = torch.from_numpy(np.asarray(y).astype(np.int64))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * math.ceil(len(ys) / batch))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    history, best, best_key, best_state, stale = [], -1.0, (-1.0, 0.0), None, 0

    def validate(feeds, labels) -> tuple[float, float]:
        """(accuracy %, mean cross-entropy) on the hold-out."""
        model.eval()
        with torch.no_grad():
            logits = []
            for i in range(0, len(labels), 256):
                out = model(*[torch.from_numpy(np.ascontiguousarray(f[i : i + 256])) for f in feeds])
                logits.append(out[0] if isinstance(out, (tuple, list)) else out)
            z = torch.cat(logits)
            target = torch.from_numpy(np.asarray(labels).astype(np.int64))
            return float((z.argmax(1) == target).float().mean() * 100), float(torch.nn.functional.cross_entropy(z, target))

    ran = 0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(ys), generator=gen)
        total = 0.0
        for i in range(0, len(ys), batch):
            idx = perm[i : i + batch]
            out = model(*[t[idx] for t in xs])
            loss = torch.nn.functional.cross_entropy(out[0] if isinstance(out, (tuple, list)) else out, ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        ran = epoch + 1
        row = {"epoch": ran, "loss": round(total / len(ys), 5)}
        if x_val is not None and y_val is not None and len(y_val):
            acc, vloss = validate(x_val, y_val)
            row["val_accuracy"], row["val_loss"] = round(acc, 3), round(vloss, 5)
            if (acc, -vloss) > best_key:  # higher accuracy; at equal accuracy, lower loss
                best, best_key, stale = acc, (acc, -vloss), 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                stale += 1
        history.append(row)
        if progress:
            progress(f"fine-tune epoch {ran}/{epochs}: loss {row['loss']:.4f}"
                     + (f", validation {row['val_accuracy']:.2f}%" if "val_accuracy" in row else ""))
        if stale >= patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {"epochs": epochs, "epochs_run": ran, "lr": lr, "batch": batch, "seed": seed, "optimizer": "AdamW, cosine schedule",
            "samples": int(len(ys)), "best_val_accuracy": round(best, 3) if best >= 0 else None, "history": history}


def onnx_macs(path) -> int:
    """Multiply-accumulates of an ONNX graph's convolutions and matrix products, from its
    shape-inferred tensor shapes (weights as given: a pruned channel that is still in the
    file is still counted). Works on fp32 and QDQ int8 graphs alike."""
    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    g = model.graph
    shapes = {}
    for vi in list(g.value_info) + list(g.input) + list(g.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if dims and all(dims):
            shapes[vi.name] = dims
    for init in g.initializer:
        shapes[init.name] = list(init.dims)
    producers = {o: n for n in g.node for o in n.output}

    def shape_of(name):  # through DequantizeLinear to the stored weight
        if name in shapes:
            return shapes[name]
        n = producers.get(name)
        return shape_of(n.input[0]) if n is not None and n.op_type in ("DequantizeLinear", "Identity", "Cast") else None

    total = 0
    for n in g.node:
        if n.op_type in ("Conv", "ConvInteger", "QLinearConv"):
            w = shape_of(n.input[3] if n.op_type == "QLinearConv" else n.input[1])
            out = shape_of(n.output[0])
            if w and out:
                total += int(np.prod(out)) * int(np.prod(w[1:]))
        elif n.op_type in ("Gemm", "MatMul", "MatMulInteger", "QLinearMatMul"):
            a = shape_of(n.input[0])
            out = shape_of(n.output[0])
            if a and out:
                total += int(np.prod(out)) * int(a[-1])
    return total

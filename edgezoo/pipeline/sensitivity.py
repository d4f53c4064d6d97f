"""Per-layer quantization sensitivity, and the layers to keep in float.

Sensitivity of a layer is measured in the target runtime's own int8 scheme: an int8 model
is built with *only that layer's* weights and inputs quantized (every other weighted layer
left in float: onnxruntime ``nodes_to_quantize``, NNCF's ignored scope), run in the
runtime on held-out samples, and compared with the fp32 export (SQNR of the outputs,
agreement of the decisions, and the task metric where there are labels). The layers whose
quantization alone hurts most are the candidates to keep in float.

One-layer probes calibrate on ``PROBE_CALIBRATION`` samples (they rank layers against each
other); every kept-float trial calibrates on the plan's full calibration set.

``--keep-float auto`` then keeps the fewest of them that meet the goal: the worst layer,
then the worst 2, 4, 8, ... until a full int8 build meets it, then the smallest count
between the last two tried (each trial is a real build and run, never an estimate).

Layer names are the fp32 ONNX graph's node names, the vocabulary shared by onnxruntime and
OpenVINO (which are both built from that graph).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

WEIGHTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
# operators without weights whose inputs the int8 schemes quantize too (the activations of a
# residual add, a squeeze-and-excitation product, a pooled mean): they can hurt as much as a layer
ACTIVATION_OPS = ("Add", "Mul", "GlobalAveragePool", "AveragePool", "ReduceMean", "MatMul", "Concat", "Softmax")
PROBE_SAMPLES = 128  # held-out samples each probe is run on (the final export is evaluated on all)
PROBE_CALIBRATION = 32  # calibration samples of a one-layer probe (ranking only; kept-float trials use the plan's)
DEFAULT_MIN_SQNR_DB = 12.0  # goal without labels or --max-accuracy-drop: fidelity the int8 variant must reach


def weighted_layers(onnx_path, activations: bool = False) -> list[tuple[str, str]]:
    """(node name, operator) of every convolution and matrix product with a stored weight, in
    graph order; with ``activations``, also the weightless operators whose inputs int8 quantizes."""
    from edgezoo.errors import require

    onnx = require("onnx", extra="onnx", purpose="reading ONNX models")
    g = onnx.load(str(onnx_path), load_external_data=False).graph
    inits = {i.name for i in g.initializer}
    consts = {o for n in g.node if n.op_type == "Constant" for o in n.output}
    rows = []
    for n in g.node:
        weighted = n.op_type in WEIGHTED_OPS and len(n.input) > 1 and (n.input[1] in inits or n.input[1] in consts)
        if weighted or (activations and n.op_type in ACTIVATION_OPS and n.name):
            rows.append((n.name or n.output[0], n.op_type))
    return rows


@dataclass
class LayerRow:
    layer: str
    op: str
    sqnr_db: float | None  # None: identical to fp32
    agreement: float
    metric_drop: float | None = None  # points of the task metric lost against fp32 (labelled data only)

    def as_dict(self) -> dict:
        return {"layer": self.layer, "op": self.op, "sqnr_db": None if self.sqnr_db is None else round(self.sqnr_db, 2),
                "agreement": round(self.agreement, 2), "metric_drop": None if self.metric_drop is None else round(self.metric_drop, 3)}


@dataclass
class Goal:
    """What a kept-float choice must reach. ``max_drop``: points of the task metric (labelled,
    real weights) or, without labels, of decision agreement with fp32; ``min_sqnr_db``: output SQNR."""

    max_drop: float | None = None
    min_sqnr_db: float | None = None
    labelled: bool = False

    def met(self, q, fp32_q) -> bool:
        ok = True
        if self.max_drop is not None:
            if self.labelled and q.gate_value is not None and fp32_q.gate_value is not None:
                ok &= fp32_q.gate_value - q.gate_value <= self.max_drop
            else:
                ok &= 100.0 - q.agreement <= self.max_drop
        if self.min_sqnr_db is not None:
            ok &= q.sqnr_db is None or q.sqnr_db >= self.min_sqnr_db
        return ok

    def describe(self) -> str:
        parts = []
        if self.max_drop is not None:
            parts.append(f"{'task metric' if self.labelled else 'agreement with fp32'} drop <= {self.max_drop:g} points")
        if self.min_sqnr_db is not None:
            parts.append(f"SQNR >= {self.min_sqnr_db:g} dB")
        return " and ".join(parts)


def _drop(q, fp32_q) -> float | None:
    if q.gate_value is None or fp32_q.gate_value is None:
        return None
    return fp32_q.gate_value - q.gate_value


def layer_sensitivity(layers: list[tuple[str, str]], probe: Callable, fp32_q, progress=None) -> list[LayerRow]:
    """``probe(only=(layer,))`` builds and runs an int8 model with only that layer quantized
    and returns its Quality against fp32. Rows come back worst first."""
    rows = []
    for i, (name, op) in enumerate(layers):
        if progress:
            progress(f"sensitivity {i + 1}/{len(layers)}: {name}")
        q = probe(only=(name,))
        rows.append(LayerRow(name, op, q.sqnr_db, q.agreement, _drop(q, fp32_q)))
    return sorted(rows, key=lambda r: (float("inf") if r.sqnr_db is None else r.sqnr_db, r.agreement))


@dataclass
class KeepFloatChoice:
    layers: tuple[str, ...]
    met: bool
    reason: str
    trials: list[dict] = field(default_factory=list)  # every full build tried: kept count, SQNR, agreement, metric


def choose_keep_float(ranked: list[LayerRow], probe: Callable, fp32_q, goal: Goal, progress=None) -> KeepFloatChoice:
    """The fewest worst-ranked layers to keep in float so that the int8 build meets ``goal``."""
    trials, cache = [], {}

    def trial(k: int):
        if k not in cache:
            keep = tuple(r.layer for r in ranked[:k])
            if progress:
                progress(f"keep-float: trying {k} layer{'s' if k != 1 else ''} in float")
            q = probe(keep=keep)
            cache[k] = q
            trials.append({"kept": k, "sqnr_db": None if q.sqnr_db is None else round(q.sqnr_db, 2), "agreement": round(q.agreement, 2),
                           "metric_drop": None if _drop(q, fp32_q) is None else round(_drop(q, fp32_q), 3), "met": goal.met(q, fp32_q)})
        return goal.met(cache[k], fp32_q)

    if trial(0):
        return KeepFloatChoice((), True, f"full int8 already meets the goal ({goal.describe()}): nothing kept in float", trials)
    lo, k = 0, 1
    while k < len(ranked) and not trial(k):
        lo, k = k, min(2 * k, len(ranked))
    if k >= len(ranked) and not trial(len(ranked)):
        q = cache[len(ranked)]
        return KeepFloatChoice(tuple(r.layer for r in ranked), False,
                               f"even with all {len(ranked)} weighted layers in float the goal ({goal.describe()}) is not met "
                               f"(SQNR {q.sqnr_db if q.sqnr_db is not None else float('inf'):.1f} dB): the activations' quantization "
                               "alone is too coarse; use fp32 or fp16", trials)
    hi = k
    while hi - lo > 1:  # the smallest count that meets it, between the last miss and the first hit
        mid = (lo + hi) // 2
        if trial(mid):
            hi = mid
        else:
            lo = mid
    kept = tuple(r.layer for r in ranked[:hi])
    worst = ", ".join(f"{r.layer} ({'exact' if r.sqnr_db is None else f'{r.sqnr_db:.1f} dB'} alone)" for r in ranked[:hi][:4])
    return KeepFloatChoice(kept, True, f"{hi} of {len(ranked)} weighted layers kept in float, the most sensitive when quantized alone: "
                                       f"{worst}{', ...' if hi > 4 else ''}; with them the goal ({goal.describe()}) is met", trials)


def plot(rows: list[dict], path, title: str) -> None:
    """A bar per layer (``LayerRow.as_dict`` rows, worst first): its SQNR when quantized alone."""
    from edgezoo.reports import pyplot, save_png

    plt = pyplot()
    vals = [60.0 if r["sqnr_db"] is None else min(r["sqnr_db"], 60.0) for r in rows]
    fig, ax = plt.subplots(figsize=(10, max(3, 0.22 * len(rows) + 1)))
    y = list(range(len(rows)))
    ax.barh(y, vals, color=["#c0392b" if v < 20 else "#2e86c1" for v in vals])
    ax.set_yticks(y, [r["layer"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("output SQNR vs fp32 with only this layer quantized (dB, higher is better; capped at 60)")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    save_png(fig, path)

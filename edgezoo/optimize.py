"""``edgezoo optimize``: a recipe search over the one executor.

Candidates are ordinary export plans that differ in precision, int8 scheme (calibration
method; LiteRT's quantizer; layers kept in float), and structured pruning ratio (with
fine-tuning on the card's training split). Each is built, evaluated and timed in the
target's runtime exactly as ``export`` would (``Executor.run(until="measure")``); the
constraints are the user's ``--max-accuracy-drop`` (against the unpruned fp32 export, on
the card's evaluation split) and the target's budgets (model size, latency); the objective
is the p50 latency or the file size. The winner is exported as a normal bundle whose
lineage holds an ``optimize`` step (the search, its constraints and every candidate's
figures); the log of every candidate (JSON) and the Pareto plot are written beside it.

Measured candidates are cached under ``$EDGEZOO_CACHE/optimize`` keyed by everything that
decides the result (model, version, weights, profile bytes, format, candidate, edgezoo and
tool versions), so a rerun with the same inputs measures nothing again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_PRUNE_RATIOS = (0.25, 0.5)
DEFAULT_FINETUNE_EPOCHS = 5


@dataclass(frozen=True)
class Candidate:
    precision: str
    calibration_method: str = ""
    tflite_quantizer: str = "auto"
    keep_float_auto: bool = False
    prune: float = 0.0  # structured ratio
    finetune_epochs: int = 0

    @property
    def label(self) -> str:
        parts = [self.precision]
        if self.calibration_method:
            parts.append(self.calibration_method)
        if self.tflite_quantizer != "auto":
            parts.append(self.tflite_quantizer)
        if self.keep_float_auto:
            parts.append("keep-float auto")
        if self.prune:
            parts.append(f"pruned {self.prune:g}" + (f" +ft{self.finetune_epochs}" if self.finetune_epochs else ""))
        return ", ".join(parts)

    def export_args(self) -> dict:
        return {"precision": self.precision, "calibration_method": self.calibration_method or None,
                "tflite_quantizer": self.tflite_quantizer, "keep_float": "auto" if self.keep_float_auto else (),
                "prune": f"structured:{self.prune:g}" if self.prune else None, "finetune_epochs": self.finetune_epochs}

    def cli_args(self) -> list[str]:
        out = ["--precision", self.precision]
        if self.calibration_method:
            out += ["--calibration-method", self.calibration_method]
        if self.tflite_quantizer != "auto":
            out += ["--tflite-quantizer", self.tflite_quantizer]
        if self.keep_float_auto:
            out += ["--keep-float", "auto"]
        if self.prune:
            out += ["--prune", f"structured:{self.prune:g}"]
        if self.finetune_epochs:
            out += ["--finetune-epochs", str(self.finetune_epochs)]
        return out


@dataclass
class Result:
    candidate: Candidate
    ok: bool = False  # built and measured
    feasible: bool = False  # and meets every constraint
    error: str = ""
    violations: list[str] = field(default_factory=list)
    metric: float | None = None  # the task metric (labelled, real weights) on the full evaluation split
    drop: float | None = None  # points below the unpruned fp32 reference
    sqnr_db: float | None = None  # against this candidate's own fp32 (unpruned candidates: the reference)
    agreement: float | None = None
    p50_ms: float | None = None
    spread: float | None = None
    size_bytes: int | None = None
    keep_float: list[str] = field(default_factory=list)
    keep_float_reason: str = ""
    seconds: float = 0.0
    cached: bool = False
    pareto: bool = False

    def as_dict(self) -> dict:
        d = asdict(self)
        d["candidate"] = asdict(self.candidate) | {"label": self.candidate.label}
        return d


def candidates(plan, *, prune_ratios, finetune_epochs: int, labelled: bool) -> tuple[list[Candidate], list[str]]:
    """The search space the target's format allows, cheapest first; and what was left out, said."""
    from edgezoo.pipeline.plan import KEEP_FLOAT_FORMATS

    spec = plan.target.formats[plan.format]
    notes = []
    precisions = [p for p in ("fp32", "fp16", "int8", "dynamic-int8") if p in spec.precisions]
    if "dynamic-int8" in precisions and "cnn" in plan.card.tags:
        precisions.remove("dynamic-int8")
        notes.append("dynamic-int8 left out: it quantizes a CNN's activations at run time, slower than fp32 (measured: see the README)")
    out = [Candidate(p) for p in precisions if p != "int8"]
    if "int8" in precisions:
        if plan.format in ("onnx", "openvino"):  # OpenVINO: NNCF's range estimators (minmax, mean quantile, histogram)
            out += [Candidate("int8", m) for m in ("minmax", "entropy", "percentile")]
        elif plan.format in ("tflite",) and plan.source == "zoo" and plan.card.architecture not in ("tflite-file", "tflite-graph"):
            # auto builds AI Edge Quantizer's min/max and histogram ranges; PT2E is the other quantizer
            out += [Candidate("int8"), Candidate("int8", tflite_quantizer="pt2e")]
        else:
            out.append(Candidate("int8"))
        if plan.format in KEEP_FLOAT_FORMATS:
            out.append(Candidate("int8", keep_float_auto=True))
    torch_source = plan.source in ("zoo", "torch-factory") and plan.card.architecture not in ("tflite-file", "tflite-graph")
    if prune_ratios and not torch_source:
        notes.append("pruning left out: it works on PyTorch models")
    elif prune_ratios and not labelled:
        notes.append("pruning left out: without labelled data and real weights a pruned model cannot be judged against the unpruned one")
    elif prune_ratios:
        ft = finetune_epochs if plan.card.evaluation.train_split and plan.source == "zoo" else 0
        if not ft and finetune_epochs:
            notes.append(f"pruned candidates are not fine-tuned: {plan.card.id} has no training split")
        first_int8 = next((c for c in out if c.precision == "int8" and not c.keep_float_auto), None)
        for r in prune_ratios:
            out.append(Candidate("fp32", prune=r, finetune_epochs=ft))
            if first_int8 is not None:
                out.append(Candidate("int8", first_int8.calibration_method, first_int8.tflite_quantizer, prune=r, finetune_epochs=ft))
    return out, notes


def _key(plan, cand: Candidate) -> str:
    from importlib.metadata import PackageNotFoundError, version

    from edgezoo import __version__

    tools = {}
    for dist in ("torch", "onnxruntime", "openvino", "nncf", "litert-torch", "ai-edge-quantizer", "ai-edge-litert", "executorch", "torch-pruning"):
        try:
            tools[dist] = version(dist)
        except PackageNotFoundError:
            pass
    doc = {"model": plan.model_id, "version": plan.model_version, "weights": plan.weights,
           "weights_file": str(plan.weights_path or ""), "target_sha256": plan.target_sha256, "format": plan.format,
           "threads": plan.threads, "calibration_samples": plan.calibration_samples, "candidate": asdict(cand),
           "edgezoo": __version__, "tools": tools, "host": os.uname().nodename if hasattr(os, "uname") else ""}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def _cache_dir() -> Path:
    from edgezoo.zoo.sources import cache_dir

    return cache_dir() / "optimize"


def search(base_plan, plan_for, *, objective: str, max_drop: float | None, min_sqnr: float | None, budget_minutes: float,
           prune_ratios, finetune_epochs: int, use_cache: bool = True, progress=None) -> dict:
    """Measure every candidate (within the time budget) and pick the winner. ``plan_for(c)``
    returns the Plan of a candidate."""
    from edgezoo.errors import EdgezooError
    from edgezoo.pipeline.executor import Executor, Shared

    labelled = base_plan.card.evaluation.metric != "fidelity" and base_plan.weights != "random"
    cands, notes = candidates(base_plan, prune_ratios=prune_ratios, finetune_epochs=finetune_epochs, labelled=labelled)
    shared = Shared()
    results: list[Result] = []
    t_start = time.monotonic()
    skipped = []
    reference = None  # the unpruned fp32 quality: what accuracy drops are measured from
    for i, cand in enumerate(cands):
        if cand.keep_float_auto and not cand.calibration_method:
            # layers kept in float on top of the best calibration measured so far
            plain = [r for r in results if r.ok and r.candidate.precision == "int8" and not r.candidate.prune
                     and not r.candidate.keep_float_auto and r.candidate.calibration_method]
            if plain:
                best = max(plain, key=lambda r: (r.metric if r.metric is not None else -1.0,
                                                 float("inf") if r.sqnr_db is None else r.sqnr_db))
                cand = Candidate("int8", best.candidate.calibration_method, keep_float_auto=True)
        if time.monotonic() - t_start > budget_minutes * 60:
            skipped.append(cand.label)
            continue
        if progress:
            progress(f"candidate {i + 1}/{len(cands)}: {cand.label}")
        key = _key(base_plan, cand)
        cached = _cache_dir() / f"{key}.json"
        res = Result(cand)
        if use_cache and cached.is_file():
            try:
                data = json.loads(cached.read_text())
                data.pop("candidate", None)
                res = Result(cand, **{k: v for k, v in data.items() if k in Result.__dataclass_fields__})
                res.cached = True
            except (OSError, ValueError, TypeError):
                res = Result(cand)
        if not res.cached:
            t0 = time.monotonic()
            try:
                plan = plan_for(cand)
                out = Executor(plan, shared=shared).run(until="measure")
                v = out.variants[plan.precision]
                q = v.quality
                res.ok = True
                res.metric = q.gate_value if (q is not None and labelled) else None
                res.sqnr_db = q.sqnr_db if q is not None else None
                res.agreement = q.agreement if q is not None else None
                res.p50_ms = v.latency.p50_ms if v.latency else None
                res.spread = round(v.latency.spread, 4) if v.latency else None
                res.size_bytes = v.size_bytes
                res.keep_float = list(out.keep_float)
                res.keep_float_reason = out.keep_float_reason
            except EdgezooError as exc:
                res.error = str(exc).splitlines()[0][:300]
            res.seconds = round(time.monotonic() - t0, 2)
            if res.ok and use_cache:
                cached.parent.mkdir(parents=True, exist_ok=True)
                tmp = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
                doc = res.as_dict()
                tmp.write_text(json.dumps(doc))
                os.replace(tmp, cached)
        if cand == Candidate("fp32"):
            reference = res
        results.append(res)
    _judge(results, reference, base_plan, max_drop=max_drop, min_sqnr=min_sqnr, labelled=labelled)
    _pareto(results, objective)
    feasible = [r for r in results if r.feasible]
    key = (lambda r: (r.p50_ms, r.size_bytes)) if objective == "latency" else (lambda r: (r.size_bytes, r.p50_ms))
    winner = min(feasible, key=key) if feasible else None
    closest = sorted((r for r in results if r.ok and not r.feasible), key=lambda r: len(r.violations))[:3] if winner is None else []
    return {"model": base_plan.model_id, "target": base_plan.target_id, "format": base_plan.format, "runtime": base_plan.runtime,
            "weights": base_plan.weights, "objective": objective,
            "constraints": _constraints(base_plan, max_drop, min_sqnr, labelled), "notes": notes, "skipped": skipped,
            "reference": reference.as_dict() if reference else None, "seconds": round(time.monotonic() - t_start, 1),
            "candidates": [r.as_dict() for r in results], "winner": winner.as_dict() if winner else None,
            "closest": [r.as_dict() for r in closest], "_winner": winner}


def _constraints(plan, max_drop, min_sqnr, labelled) -> dict:
    b = plan.target.budgets
    return {"max_accuracy_drop": max_drop if labelled else None, "min_sqnr_db": min_sqnr if (min_sqnr is not None or not labelled) else None,
            "max_model_mb": b.max_model_mb, "max_latency_ms": b.max_latency_ms,
            "accuracy_from": "the unpruned fp32 export on the card's evaluation split" if labelled else "fidelity against fp32 (no labels or random weights)"}


def _judge(results, reference, plan, *, max_drop, min_sqnr, labelled) -> None:
    from edgezoo.pipeline.sensitivity import DEFAULT_MIN_SQNR_DB

    b = plan.target.budgets
    floor = min_sqnr if min_sqnr is not None else (None if labelled else DEFAULT_MIN_SQNR_DB)
    for r in results:
        if not r.ok:
            r.violations = [f"failed: {r.error}"]
            continue
        v = []
        if labelled and reference is not None and reference.metric is not None and r.metric is not None:
            r.drop = round(reference.metric - r.metric, 4)
            if max_drop is not None and r.drop > max_drop:
                v.append(f"accuracy drop {r.drop:.2f} > {max_drop:g}")
        if floor is not None and r.sqnr_db is not None and r.sqnr_db < floor:
            v.append(f"SQNR {r.sqnr_db:.1f} dB < {floor:g}")
        if b.max_model_mb is not None and r.size_bytes / 1e6 > b.max_model_mb:
            v.append(f"size {r.size_bytes / 1e6:.2f} MB > {b.max_model_mb:g}")
        if b.max_latency_ms is not None and r.p50_ms is not None and r.p50_ms > b.max_latency_ms:
            v.append(f"p50 {r.p50_ms:.2f} ms > {b.max_latency_ms:g} (host proxy)")
        r.violations, r.feasible = v, not v


def _pareto(results, objective: str) -> None:
    """Non-dominated candidates in (objective, accuracy): lower cost, higher metric (or SQNR)."""
    ok = [r for r in results if r.ok]

    def cost(r):
        return r.p50_ms if objective == "latency" else r.size_bytes

    def quality(r):
        if r.metric is not None:
            return r.metric
        return float("inf") if r.sqnr_db is None else r.sqnr_db

    for r in ok:
        r.pareto = not any(cost(o) <= cost(r) and quality(o) >= quality(r) and (cost(o) < cost(r) or quality(o) > quality(r)) for o in ok)


def plot(doc: dict, path: Path) -> None:
    from edgezoo.reports import pyplot, save_png

    plt = pyplot()
    rows = [r for r in doc["candidates"] if r["ok"]]
    lat = doc["objective"] == "latency"
    xs = [r["p50_ms"] if lat else r["size_bytes"] / 1024 for r in rows]
    labelled = any(r["metric"] is not None for r in rows)
    ys = [r["metric"] if labelled else (60.0 if r["sqnr_db"] is None else r["sqnr_db"]) for r in rows]
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for x, y, r in zip(xs, ys, rows):
        color = "#27ae60" if r["feasible"] else "#c0392b"
        ax.scatter([x], [y], s=70 if r["pareto"] else 30, facecolors=color if r["pareto"] else "none", edgecolors=color, zorder=3)
        ax.annotate(r["candidate"]["label"], (x, y), fontsize=7, xytext=(4, 3), textcoords="offset points")
    front = sorted((x, y) for x, y, r in zip(xs, ys, rows) if r["pareto"])
    if front:
        ax.step([f[0] for f in front], [f[1] for f in front], where="post", linestyle="--", color="#555", zorder=2)
    if doc["winner"]:
        w = doc["winner"]
        wx = w["p50_ms"] if lat else w["size_bytes"] / 1024
        wy = w["metric"] if labelled else (60.0 if w["sqnr_db"] is None else w["sqnr_db"])
        ax.scatter([wx], [wy], marker="*", s=260, color="#f1c40f", edgecolors="k", zorder=4, label="winner")
        ax.legend(loc="best")
    ax.set_xlabel("host p50 latency (ms)" if lat else "model size (KB)")
    ax.set_ylabel("task metric (%)" if labelled else "SQNR vs fp32 (dB, exact = 60)")
    ax.set_title(f"optimize {doc['model']} for {doc['target']} ({doc['runtime']}): filled = Pareto front, green = meets constraints",
                 fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_png(fig, path)

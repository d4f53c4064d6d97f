"""``edgezoo bench``: every format x precision a target deploys, built with the real tools and
measured on each format's runtime in one run (size, accuracy or fidelity, p50/p90 latency at
1 and N threads, build wall time): one executor per format, its variants in one run."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Row:
    format: str
    runtime: str
    precision: str
    size_bytes: int
    top1: float | None  # the task's gate metric on labelled data (top-1 for classifiers)
    agreement: float
    sqnr_db: float | None
    torch_agreement: float | None  # fp32 rows: agreement with PyTorch
    torch_max_abs_diff: float | None
    p50_ms_1t: float
    p90_ms_1t: float
    p50_ms_nt: float
    p90_ms_nt: float
    threads: int
    build_s: float
    effective_precision: str = ""
    error: str = ""
    deployable: bool = True
    metric: str = "top1"


def run_matrix(card, target, formats: list[str], *, weights: str = "random", weights_path=None, precisions: list[str] | None = None,
               threads: int | None = None, progress=None, target_sha256: str = "") -> tuple[list[Row], dict]:
    from edgezoo.pipeline.executor import Executor, Shared
    from edgezoo.pipeline.plan import make_plan

    rows: list[Row] = []
    seconds: dict = {}
    shared = Shared()
    with tempfile.TemporaryDirectory(prefix="edgezoo-bench-") as nowhere:
        for fmt in formats:
            spec = target.formats[fmt]
            plan = make_plan(card, target, fmt=fmt, precision=spec.default_precision, weights=weights, weights_path=weights_path,
                             out_dir=Path(nowhere) / "unused", threads=threads, for_check=True, target_sha256=target_sha256)
            # fp32 always comes first: it is the reference the others are judged against,
            # even where the target cannot deploy it (the Edge TPU)
            wanted = [p for p in spec.precisions if p != "fp32" and (precisions is None or p in precisions)]
            ex = Executor(plan, progress=(lambda s, f=fmt: progress(f"{f}: {s}")) if progress else None, shared=shared)
            out = ex.run(until="measure", precisions=wanted or ["fp32"], latency_threads=[1, plan.threads], keep_going=True)
            for k, v in ex.seconds.items():
                seconds[f"{fmt}: {k}"] = seconds.get(f"{fmt}: {k}", 0.0) + v
            source_s = sum(v for k, v in ex.seconds.items() if not k.startswith(("build ", "evaluate", "benchmark", "load data")))
            for precision in ["fp32", *wanted]:
                v = out.variants.get(precision)
                if v is None:
                    continue
                if v.error:
                    rows.append(Row(fmt, spec.runtime, precision, 0, None, 0, None, None, None, 0, 0, 0, 0, plan.threads, 0, error=v.error))
                    continue
                q, tq = v.quality, (out.export_check if precision == "fp32" else None)
                l1, ln = v.latency_by_threads[1], v.latency_by_threads[plan.threads]
                # with random weights a task metric (top-1 11 %) is noise, not an accuracy: none is reported
                rows.append(Row(fmt, v.artifact.runtime, precision, v.size_bytes, q.gate_value if weights != "random" else None,
                                q.agreement, q.sqnr_db,
                                tq.agreement if tq else None, tq.max_abs_diff if tq else None,
                                l1.p50_ms, l1.p90_ms, ln.p50_ms, ln.p90_ms, plan.threads,
                                v.build_s + (source_s if precision == "fp32" else 0.0), v.effective_precision,
                                deployable=precision in spec.precisions, metric=q.gate_metric))
    meta = {"model": card.id, "target": target.id, "weights": weights, "formats": formats,
            "eval_data": f"{card.evaluation.dataset}:{card.evaluation.eval_split}", "metric": card.evaluation.metric,
            "stage_seconds": {k: round(v, 2) for k, v in seconds.items()}}
    return rows, meta


def to_markdown(rows: list[Row], meta: dict) -> str:
    nt = rows[0].threads if rows else 1
    metric = rows[0].metric if rows else "top1"
    accuracy_note = " Random weights: the accuracy column is not an accuracy (fidelity columns still hold)." if meta["weights"] == "random" else ""
    lines = [
        f"# edgezoo bench: {meta['model']} on {meta['target']}",
        "",
        f"Weights: {meta['weights']}. Data: `{meta['eval_data']}` ({meta['metric']}). Latency measured on this host (a proxy for the device).{accuracy_note}",
        "",
        f"| format | runtime | precision | size MB | {metric} | agree % vs fp32 | SQNR dB | vs PyTorch | p50 1t ms | p90 1t ms | p50 {nt}t ms | p90 {nt}t ms | build s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.format} | {r.runtime} | {r.precision} | failed: {r.error} |||||||||| |")
            continue
        top1 = f"{r.top1:.2f}" if r.top1 is not None and meta["weights"] != "random" else "-"
        sq = "exact" if r.sqnr_db is None else f"{r.sqnr_db:.1f}"
        vs = f"{r.torch_agreement:.1f}% (max diff {r.torch_max_abs_diff:.2g})" if r.torch_agreement is not None else ""
        prec = r.precision + ("" if r.deployable else " (reference only)")
        if r.precision == "bf16" and r.effective_precision and r.effective_precision != "bf16":
            prec += f" (host ran {r.effective_precision})"
        lines.append(f"| {r.format} | {r.runtime} | {prec} | {r.size_bytes / 1e6:.2f} | {top1} | {r.agreement:.1f} | {sq} | {vs} | "
                     f"{r.p50_ms_1t:.3f} | {r.p90_ms_1t:.3f} | {r.p50_ms_nt:.3f} | {r.p90_ms_nt:.3f} | {r.build_s:.1f} |")
    return "\n".join(lines) + "\n"


def to_json(rows: list[Row], meta: dict) -> dict:
    return {**meta, "rows": [asdict(r) for r in rows]}

"""``edgezoo bench``: every format x precision a target deploys, built with the real tools and
measured on each format's runtime in one run (size, accuracy or fidelity, p50/p90 latency at
1 and N threads, build wall time)."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edgezoo.pipeline.build import Context, _Timer, load_data, prepare_source
from edgezoo.pipeline.formats import BUILDERS
from edgezoo.pipeline.plan import make_plan


@dataclass
class Row:
    format: str
    runtime: str
    precision: str
    size_bytes: int
    top1: float | None
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


def run_matrix(card, target, formats: list[str], *, weights: str = "random", weights_path=None, precisions: list[str] | None = None,
               threads: int | None = None, progress=None) -> tuple[list[Row], dict]:
    from edgezoo import runtimes
    from edgezoo.bench.accuracy import compare
    from edgezoo.bench.latency import measure
    from edgezoo.errors import EdgezooError

    rows: list[Row] = []
    seconds: dict = {}
    work = Path(tempfile.mkdtemp(prefix="edgezoo-bench-"))
    torch_model = None
    try:
        data = None
        for fmt in formats:
            spec = target.formats[fmt]
            plan = make_plan(card, target, fmt=fmt, precision=spec.default_precision, weights=weights, weights_path=weights_path,
                             out_dir=work / "unused", threads=threads, for_check=True)
            if data is None:
                with _Timer(seconds, "load data", progress):
                    data = load_data(plan)
            x_cal, x_eval, labels, calib_rec = data
            fdir = work / fmt
            fdir.mkdir()
            ctx = Context(plan, fdir, [], x_cal, calib_rec["sha256"] if calib_rec else "", torch_model=torch_model)
            t0 = time.perf_counter()
            _, torch_ref = prepare_source(plan, ctx, seconds, progress, x_eval)
            torch_model = ctx.torch_model
            builder = BUILDERS[fmt]
            if progress:
                progress(f"{fmt} fp32")
            fp32 = builder.fp32(ctx)
            source_s = time.perf_counter() - t0
            rt = runtimes.get(spec.runtime)
            ref = None
            # fp32 always comes first: it is the reference the others are judged against,
            # even where the target cannot deploy it (the Edge TPU)
            order = ["fp32"] + [p for p in spec.precisions if p != "fp32" and (precisions is None or p in precisions)]
            for precision in order:
                if progress:
                    progress(f"{fmt} {precision}")
                t1 = time.perf_counter()
                try:
                    art = fp32 if precision == "fp32" else builder.variant(ctx, fp32, precision)
                except EdgezooError as exc:
                    rows.append(Row(fmt, spec.runtime, precision, 0, None, 0, None, None, None, 0, 0, 0, 0, plan.threads, 0, error=str(exc)))
                    continue
                build_s = time.perf_counter() - t1 + (source_s if precision == "fp32" else 0.0)
                runner = rt.open(art.path, plan.threads, art.config)
                eff = ""
                if spec.runtime == "openvino":
                    from edgezoo.runtimes.openvino import effective_precision

                    eff = effective_precision(runner)
                logits = runtimes.run_batch(runner, x_eval)
                if ref is None:
                    ref = logits
                q = compare(ref, logits, labels)
                tq = compare(torch_ref, logits, labels) if (torch_ref is not None and precision == "fp32") else None
                l1 = measure(art.path, runtime=spec.runtime, threads=1, config=art.config, warmup=5, runs=30, min_seconds=0.5)
                ln = l1 if plan.threads == 1 else measure(art.path, runtime=spec.runtime, threads=plan.threads, config=art.config, warmup=5, runs=30, min_seconds=0.5)
                rows.append(Row(fmt, spec.runtime, precision, art.size_bytes, q.top1, q.agreement, q.sqnr_db,
                                tq.agreement if tq else None, tq.max_abs_diff if tq else None,
                                l1.p50_ms, l1.p90_ms, ln.p50_ms, ln.p90_ms, plan.threads, build_s, eff,
                                deployable=precision in spec.precisions))
        meta = {"model": card.id, "target": target.id, "weights": weights, "formats": formats,
                "eval_data": f"{card.evaluation.dataset}:{card.evaluation.eval_split}", "metric": card.evaluation.metric,
                "stage_seconds": {k: round(v, 2) for k, v in seconds.items()}}
        return rows, meta
    finally:
        shutil.rmtree(work, ignore_errors=True)


def to_markdown(rows: list[Row], meta: dict) -> str:
    nt = rows[0].threads if rows else 1
    lines = [
        f"# edgezoo bench: {meta['model']} on {meta['target']}",
        "",
        f"Weights: {meta['weights']}. Data: `{meta['eval_data']}` ({meta['metric']}). Latency measured on this host (a proxy for the device).",
        "",
        f"| format | runtime | precision | size MB | top-1 % | agree % vs fp32 | SQNR dB | vs PyTorch | p50 1t ms | p90 1t ms | p50 {nt}t ms | p90 {nt}t ms | build s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.format} | {r.runtime} | {r.precision} | failed: {r.error} |||||||||| |")
            continue
        top1 = f"{r.top1:.2f}" if r.top1 is not None else "-"
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

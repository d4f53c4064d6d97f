#!/usr/bin/env python3
"""fp32 vs int8 vs dynamic-int8 vs fp16 on onnxruntime, and edgezoo's int8 against
onnxruntime's ``quantize_static`` with its defaults, on the same model and calibration data.

    python benchmarks/ort_precisions.py                      # all five zoo models
    python benchmarks/ort_precisions.py --models resnet18 --rounds 5 --json out.json

For each model (digits-cnn with its trained weights; the torchvision ones with seeded
random weights and BatchNorm re-estimated on the calibration photos) it builds the fp32
ONNX once, then each variant with the real quantizers, and measures in onnxruntime:
size, accuracy (digits) or fidelity against fp32 (top-1 agreement, SQNR), latency p50
for 1 and 2 threads (each figure the median of ``--rounds`` interleaved rounds, every
round a fresh process), and the wall time of the step that made the variant.

Variants:
  fp32            simplified ONNX export
  int8[<target>]  edgezoo's static int8 with the scheme the target profile implies
                  (generic-cpu: U8S8 QDQ per-channel; raspberrypi: S8S8 QDQ per-channel)
  ort-default     quantize_static(model, out, reader) with every option at its default
                  (QDQ, int8 activations and weights, per-tensor, MinMax)
  dynamic-int8    quantize_dynamic defaults
  fp16            float16 weights and compute, float32 I/O
Only prints what it measured.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MODELS = ["digits-cnn", "mobilenet_v2", "mobilenet_v3_small", "resnet18", "resnet50"]
TARGETS = ["generic-cpu", "raspberrypi", "native"]


def build_variants(model_id: str, work: Path) -> tuple[dict, dict]:
    from edgezoo.pipeline.plan import make_plan
    from edgezoo.stages import quantize_onnx as qo
    from edgezoo.stages import torch_to_onnx
    from edgezoo.stages.simplify import simplify
    from edgezoo.targets import load_target, quant_scheme
    from edgezoo.zoo import catalog, datasets, sources

    card = catalog.get_card(model_id)
    random = card.version().weights.kind == "url"
    ev = card.evaluation
    calib_split = datasets.load_split(ev.dataset, ev.calibration_split)
    eval_split = datasets.load_split(ev.dataset, ev.eval_split)
    x_cal = datasets.preprocess_split(calib_split, card)[:128]
    x_eval = datasets.preprocess_split(eval_split, card)
    wall = {}
    t = time.perf_counter()
    weights = None if random else sources.resolve_weights(card.version().weights)
    model = torch_to_onnx.load_model(card, weights, recalib=x_cal if random else None)
    raw = work / f"{model_id}-export.onnx"
    torch_to_onnx.export_onnx(model, card, raw, torch_to_onnx.ExportConfig(input_names=(card.input.name,)), "bench")
    paths = {"fp32": work / f"{model_id}-fp32.onnx"}
    simplify(raw, paths["fp32"])
    wall["fp32"] = time.perf_counter() - t
    for target_id in TARGETS:
        q = quant_scheme(load_target(target_id), "onnx")
        plan = make_plan(card, load_target(target_id), fmt="onnx", precision="int8", out_dir=work / "unused", for_check=True)
        cfg = qo.StaticConfig(q.activation_type, q.weight_type, q.format, q.per_channel, q.reduce_range, plan.calibration_method, calib_split.sha256, len(x_cal))
        name = f"int8[{target_id}]"
        paths[name] = work / f"{model_id}-int8-{target_id}.onnx"
        t = time.perf_counter()
        qo.quantize_static(paths["fp32"], paths[name], [x_cal], cfg)
        wall[name] = time.perf_counter() - t
    # the peer: quantize_static with all defaults, same calibration samples
    from onnxruntime.quantization import quantize_static

    paths["ort-default"] = work / f"{model_id}-ort-default.onnx"
    t = time.perf_counter()
    quantize_static(str(paths["fp32"]), str(paths["ort-default"]), qo._Reader([card.input.name], [x_cal]))
    wall["ort-default"] = time.perf_counter() - t
    paths["dynamic-int8"] = work / f"{model_id}-dynamic.onnx"
    t = time.perf_counter()
    qo.quantize_dynamic(paths["fp32"], paths["dynamic-int8"])
    wall["dynamic-int8"] = time.perf_counter() - t
    paths["fp16"] = work / f"{model_id}-fp16.onnx"
    t = time.perf_counter()
    qo.convert_fp16(paths["fp32"], paths["fp16"])
    wall["fp16"] = time.perf_counter() - t
    return paths, {"x_eval": x_eval, "labels": eval_split.labels, "wall": wall, "random": random}


def measure_quality(paths: dict, data: dict) -> dict:
    from edgezoo import registry
    from edgezoo.runtimes.base import run_batch

    task = registry.task("image-classification")
    rt = registry.runtime("onnxruntime")
    ref = run_batch(rt.open(paths["fp32"], 2), data["x_eval"])
    return {name: task.compare(ref, ref if name == "fp32" else run_batch(rt.open(p, 2), data["x_eval"]), data["labels"]) for name, p in paths.items()}


def measure_latency(paths: dict, threads: int, rounds: int, runs: int) -> dict:
    from edgezoo.bench.latency import measure

    p50s = {name: [] for name in paths}
    for _ in range(rounds):  # interleaved: every variant once per round
        for name, p in paths.items():
            p50s[name].append(measure(p, threads=threads, warmup=5, runs=runs).p50_ms)
    return {name: statistics.median(v) for name, v in p50s.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=20, help="timed runs per round")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()

    import onnxruntime

    print(f"onnxruntime {onnxruntime.__version__}; medians of {args.rounds} interleaved rounds x {args.runs} runs\n")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model_id in args.models:
            paths, data = build_variants(model_id, Path(tmp))
            quality = measure_quality(paths, data)
            lat = {th: measure_latency(paths, th, args.rounds, args.runs) for th in args.threads}
            rows = {}
            for name, p in paths.items():
                q = quality[name]
                rows[name] = {
                    "size_mb": p.stat().st_size / 1e6,
                    "top1": q.top1,
                    "agreement": q.agreement,
                    "sqnr_db": q.sqnr_db,
                    "build_s": data["wall"][name],
                    **{f"p50_ms_{th}t": lat[th][name] for th in args.threads},
                }
            results[model_id] = rows
            _print_model(model_id, rows, args.threads, data["random"])
    _print_goals(results, args.threads)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True))


def _print_model(model_id, rows, threads, random):
    print(f"## {model_id}" + (" (random weights, fidelity vs fp32)" if random else " (trained weights, accuracy on held-out split)"))
    head = f"{'variant':<22}{'MB':>8}{'top1%':>8}{'agree%':>8}{'SQNR':>7}" + "".join(f"{f'p50 {t}t':>10}{'x fp32':>8}" for t in threads) + f"{'build s':>9}"
    print(head)
    for name, r in rows.items():
        line = f"{name:<22}{r['size_mb']:>8.2f}"
        line += f"{r['top1']:>8.2f}" if r["top1"] is not None else f"{'-':>8}"
        line += f"{r['agreement']:>8.1f}"
        line += f"{r['sqnr_db']:>7.1f}" if r["sqnr_db"] is not None else f"{'exact':>7}"
        for t in threads:
            ms = r[f"p50_ms_{t}t"]
            line += f"{ms:>10.3f}{rows['fp32'][f'p50_ms_{t}t'] / ms:>8.2f}"
        line += f"{r['build_s']:>9.2f}"
        print(line)
    print()


def _print_goals(results, threads):
    print("## edgezoo int8[generic-cpu] vs quantize_static defaults (speed-up = default p50 / ours; SQNR dB ours vs default)")
    for model_id, rows in results.items():
        ours, peer = rows["int8[generic-cpu]"], rows["ort-default"]
        parts = [f"{t}t {peer[f'p50_ms_{t}t'] / ours[f'p50_ms_{t}t']:.2f}x" for t in threads]
        sq = lambda v: "exact" if v is None else f"{v:.1f}"  # noqa: E731
        faster = [f"{t}t {rows['fp32'][f'p50_ms_{t}t'] / ours[f'p50_ms_{t}t']:.2f}x" for t in threads]
        print(f"{model_id:<20} vs default: {', '.join(parts)}; SQNR {sq(ours['sqnr_db'])} vs {sq(peer['sqnr_db'])}; vs fp32: {', '.join(faster)}")


if __name__ == "__main__":
    main()

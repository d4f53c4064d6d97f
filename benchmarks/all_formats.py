#!/usr/bin/env python3
"""LiteRT and OpenVINO: edgezoo's int8 against fp32 and against the peers' defaults, in one run.

    python benchmarks/all_formats.py                                   # mobilenet_v2 resnet18 mobilenet_v3_small
    python benchmarks/all_formats.py --models resnet18 --rounds 5 --json out.json

torchvision architectures with seeded random weights and BatchNorm re-estimated on the
calibration photos (the same model object feeds every converter); calibration on 64 crops
of scikit-image's bundled photos, fidelity (SQNR and top-1 agreement against the runtime's
own fp32) on 200 other crops.

Variants per runtime:
  LiteRT (ai-edge-litert, XNNPACK)
    fp32          litert_torch.convert
    edgezoo int8  auto: AI Edge Quantizer static_wi8_ai8 with min/max and with histogram
                  activation ranges from one calibration pass, the one closer to fp32 on
                  calibration samples kept
    AEQ default   AI Edge Quantizer static_wi8_ai8 on the fp32 .tflite (its documented recipe,
                  its own Quantizer.calibrate)
    PT2E default  PT2E as litert-torch documents it (non-strict torch.export), per-channel
  OpenVINO (CPU plugin)
    fp32          IR with INFERENCE_PRECISION_HINT pinned to f32 (edgezoo's fp32)
    fp32 unpinned the same IR with the plugin's default hint (bf16 on AVX512_BF16 CPUs)
    edgezoo int8  nncf.quantize as edgezoo calls it
    NNCF default  nncf.quantize(model, dataset) with every option at its default
Latency: p50 of fresh-process runs, median over --rounds interleaved rounds, 1 thread and 2.
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

MODELS = ["mobilenet_v2", "resnet18", "mobilenet_v3_small"]


def _nncf_default(onnx_path: Path, out_xml: Path, calib):
    import contextlib
    import io

    import nncf
    import openvino as ov

    from edgezoo.stages.onnx_to_openvino import canonicalize_names

    model = ov.convert_model(str(onnx_path))
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        q = nncf.quantize(model, nncf.Dataset([calib[i : i + 1] for i in range(len(calib))]))
    ov.save_model(q, str(out_xml), compress_to_fp16=False)
    canonicalize_names(out_xml)


def build(model_id: str, work: Path):
    from edgezoo.stages import onnx_to_openvino as ovs
    from edgezoo.stages import torch_to_litert as tl
    from edgezoo.stages import torch_to_onnx
    from edgezoo.stages.simplify import simplify
    from edgezoo.zoo import catalog, datasets

    card = catalog.get_card(model_id)
    cal = datasets.preprocess_split(datasets.load_split(card.evaluation.dataset, "calib"), card)
    x_cal = [cal]  # one array per model input
    x_eval = [datasets.preprocess_split(datasets.load_split(card.evaluation.dataset, "eval"), card)]
    model = torch_to_onnx.load_model(card, None, recalib=cal)
    v, wall = {}, {}

    def timed(name, fn):
        t = time.perf_counter()
        fn()
        wall[name] = time.perf_counter() - t

    lite = {k: work / f"{model_id}-{k}.tflite" for k in ("fp32", "ours", "aeq", "pt2e")}
    timed("litert fp32", lambda: tl.convert_fp32(model, card, lite["fp32"], "bench"))
    def ours():  # exactly what `edgezoo export --format tflite --precision int8` does (auto)
        from types import SimpleNamespace

        from edgezoo import registry
        from edgezoo.formats.base import Artifact, Context

        ctx = Context(plan=SimpleNamespace(card=card, threads=2, quantization=None), work=work, lineage=[], x_cal=x_cal, calib_sha="bench")
        step = registry.format("tflite").auto_int8(ctx, Artifact("fp32", lite["fp32"], [lite["fp32"]]), lite["ours"])
        wall["litert auto choice"] = step.notes[-1]

    timed("litert edgezoo int8", ours)
    def aeq_default():  # AI Edge Quantizer's documented calls, nothing of edgezoo's
        from ai_edge_litert.interpreter import Interpreter
        from ai_edge_quantizer import quantizer, recipe

        q = quantizer.Quantizer(str(lite["fp32"]))
        q.load_quantization_recipe(recipe.static_wi8_ai8())
        key = next(iter(Interpreter(model_path=str(lite["fp32"])).get_signature_list()))
        name = next(iter(Interpreter(model_path=str(lite["fp32"])).get_signature_runner(key).get_input_details()))
        result = q.calibrate({key: [{name: x_cal[0][i : i + 1]} for i in range(len(x_cal[0]))]})
        lite["aeq"].write_bytes(bytes(q.quantize(result).quantized_model))

    timed("litert AEQ default", aeq_default)
    timed("litert PT2E default", lambda: tl.quantize_pt2e(model, card, lite["pt2e"], x_cal, "bench", strict=False))
    v["litert"] = {"fp32": (lite["fp32"], {}), "edgezoo int8": (lite["ours"], {}), "AEQ default": (lite["aeq"], {}), "PT2E default": (lite["pt2e"], {})}

    raw, onnx_fp32 = work / f"{model_id}-raw.onnx", work / f"{model_id}.onnx"
    torch_to_onnx.export_onnx(model, card, raw, torch_to_onnx.ExportConfig(input_names=(card.input.name,)), "bench")
    simplify(raw, onnx_fp32)
    ovd = {k: work / f"ov-{model_id}-{k}" / "model.xml" for k in ("fp32", "ours", "nncf")}
    for p in ovd.values():
        p.parent.mkdir()
    timed("openvino fp32", lambda: ovs.convert(onnx_fp32, ovd["fp32"], compress_to_fp16=False))
    timed("openvino edgezoo int8", lambda: ovs.quantize_nncf(onnx_fp32, ovd["ours"], x_cal, "bench", card.input.name))
    timed("openvino NNCF default", lambda: _nncf_default(onnx_fp32, ovd["nncf"], cal))
    f32 = {"INFERENCE_PRECISION_HINT": "f32"}
    v["openvino"] = {"fp32": (ovd["fp32"], f32), "fp32 unpinned": (ovd["fp32"], {}), "edgezoo int8": (ovd["ours"], f32), "NNCF default": (ovd["nncf"], {})}
    return v, x_eval, wall


def fidelity(variants: dict, x_eval):
    from edgezoo import registry
    from edgezoo.runtimes.base import run_batch

    task = registry.task("image-classification")
    out = {}
    for rt_name, vs in variants.items():
        rt = registry.runtime(rt_name)
        ref = run_batch(rt.open(vs["fp32"][0], 2, vs["fp32"][1]), x_eval)
        for name, (path, cfg) in vs.items():
            out[(rt_name, name)] = task.compare(ref, run_batch(rt.open(path, 2, cfg), x_eval), None)
    return out


def latency(variants: dict, threads: int, rounds: int, runs: int):
    from edgezoo.bench.latency import measure

    p50 = {(r, n): [] for r, vs in variants.items() for n in vs}
    for _ in range(rounds):
        for r, vs in variants.items():
            for n, (path, cfg) in vs.items():
                p50[(r, n)].append(measure(path, runtime=r, threads=threads, config=cfg, warmup=5, runs=runs).p50_ms)
    return {k: statistics.median(v) for k, v in p50.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (this 2-vCPU VM's noise needs 5 or more)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import openvino

    from edgezoo import registry

    print(f"ai-edge-litert {registry.runtime('litert').version()}, openvino {openvino.__version__}; p50 medians of {args.rounds} interleaved rounds x {args.runs} runs\n")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for model_id in args.models:
            variants, x_eval, wall = build(model_id, Path(tmp))
            fid = fidelity(variants, x_eval)
            lat = {t: latency(variants, t, args.rounds, args.runs) for t in (1, 2)}
            print(f"## {model_id}")
            print(f"{'runtime':<10}{'variant':<16}{'MB':>7}{'SQNR':>7}{'agree%':>8}{'p50 1t':>9}{'x fp32':>8}{'p50 2t':>9}{'x fp32':>8}")
            rows = {}
            for (r, n), q in fid.items():
                path = variants[r][n][0]
                size = sum(f.stat().st_size for f in ([path, path.with_suffix(".bin")] if r == "openvino" else [path])) / 1e6
                rows[f"{r}/{n}"] = {"size_mb": size, "sqnr_db": q.sqnr_db, "agreement": q.agreement, "p50_1t": lat[1][(r, n)], "p50_2t": lat[2][(r, n)]}
                sq = "exact" if q.sqnr_db is None else f"{q.sqnr_db:.1f}"
                print(f"{r:<10}{n:<16}{size:>7.2f}{sq:>7}{q.agreement:>8.1f}{lat[1][(r, n)]:>9.3f}{lat[1][(r, 'fp32')] / lat[1][(r, n)]:>8.2f}"
                      f"{lat[2][(r, n)]:>9.3f}{lat[2][(r, 'fp32')] / lat[2][(r, n)]:>8.2f}")
            print("build s: " + ", ".join(f"{k} {s:.1f}" for k, s in wall.items() if isinstance(s, float)))
            print(f"litert {wall.get('litert auto choice', '')}")
            for r, peers in (("litert", ("AEQ default", "PT2E default")), ("openvino", ("NNCF default",))):
                ours = rows[f"{r}/edgezoo int8"]
                for p in peers:
                    peer = rows[f"{r}/{p}"]
                    print(f"  {r} edgezoo int8 vs {p}: speed {peer['p50_1t'] / ours['p50_1t']:.2f}x (1t), {peer['p50_2t'] / ours['p50_2t']:.2f}x (2t); "
                          f"SQNR {ours['sqnr_db']:.1f} vs {peer['sqnr_db']:.1f} dB")
            print()
            results[model_id] = {"rows": rows, "build_s": wall}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()

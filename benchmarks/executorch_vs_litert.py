"""ExecuTorch (.pte, XNNPACK delegate) next to LiteRT (XNNPACK) on the same models, from one
run, through the public API only (``edgezoo.api.bench``, what ``edgezoo bench`` runs).

For each model: fp32 and int8 in each runtime, p50 latency at 1 and 2 threads, int8/fp32
speed-up per runtime, SQNR of int8 against that runtime's own fp32, size and build time.
Random weights (BatchNorm re-estimated on the calibration photos): fidelity and latency are
meaningful, top-1 is not. Latency is measured on this host; the host's CPU is printed.

    python benchmarks/executorch_vs_litert.py                       # mobilenet_v2, resnet18
    python benchmarks/executorch_vs_litert.py --models digits-cnn --weights pretrained
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    from edgezoo import api, registry

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["mobilenet_v2", "resnet18"])
    ap.add_argument("--target", default="raspberrypi", help="a profile offering both tflite and pte")
    ap.add_argument("--weights", default="random")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print(f"host: {cpu_name()} ({platform.machine()}); executorch {registry.runtime('executorch').version()}, "
          f"ai-edge-litert {registry.runtime('litert').version()}\n")
    print("| model | runtime | fp32 p50 1t / 2t ms | int8 p50 1t / 2t ms | int8 speed-up 1t / 2t | int8 SQNR dB | size fp32 / int8 MB | build s fp32 / int8 |")
    print("|---|---|---|---|---|---|---|---|")
    results = {}
    for model in args.models:
        rows, meta = api.bench(model, args.target, formats=["tflite", "pte"], precisions=["int8"],
                               weights=None if args.weights == "pretrained" else args.weights)
        results[model] = [r.__dict__ for r in rows]
        for fmt in ("tflite", "pte"):
            by = {r.precision: r for r in rows if r.format == fmt}
            f, q = by.get("fp32"), by.get("int8")
            if f is None or q is None or f.error or q.error:
                print(f"| {model} | {fmt} | failed: {(f and f.error) or (q and q.error)} |||||||")
                continue
            sq = "exact" if q.sqnr_db is None else f"{q.sqnr_db:.1f}"
            print(f"| {model} | {q.runtime} | {f.p50_ms_1t:.2f} / {f.p50_ms_nt:.2f} | {q.p50_ms_1t:.2f} / {q.p50_ms_nt:.2f} | "
                  f"{f.p50_ms_1t / q.p50_ms_1t:.2f}x / {f.p50_ms_nt / q.p50_ms_nt:.2f}x | {sq} | "
                  f"{f.size_bytes / 1e6:.2f} / {q.size_bytes / 1e6:.2f} | {f.build_s:.1f} / {q.build_s:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()

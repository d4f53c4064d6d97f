#!/usr/bin/env python3
"""Pruning, layers kept in float and the recipe search, measured side by side through the CLI
(one process per command, as a user runs them). Prints what it measured and whether each
target of the optimize issue holds on this machine; a miss is printed as a miss.

    python benchmarks/compression.py                 # every check (about 25 minutes on 2 cores)
    python benchmarks/compression.py --only prune-resnet18,optimize-digits
    python benchmarks/compression.py --json out.json

Checks:
  prune-resnet18    resnet18 (random weights) pruned 50% structured, onnxruntime int8: MACs
                    of the exported ONNX <= 55% of the unpruned export's, p50 ratio < 0.7
  prune-digits      digits-cnn pruned 50% + fine-tuned 5 epochs, onnxruntime int8: top-1
                    within 1.5 points of the unpruned fp32 export, faster than the unpruned int8
  mnv3-openvino     mobilenet_v3_small (random weights) on OpenVINO, --keep-float auto with
                    the histogram range estimator, for this host (native) and for intel-cpu:
                    SQNR >= 12 dB against fp32 and p50 below fp32's
  mnv3-optimize     `optimize --objective latency` of mobilenet_v3_small (random weights) on
                    onnxruntime (native) and LiteRT (raspberrypi): the winner is never slower
                    than that runtime's fp32, and the layers it kept in float are listed
  optimize-digits   `optimize digits-cnn --target raspberrypi --max-accuracy-drop 1.0`:
                    finishes within 10 minutes; winner at least as fast as the plain int8
                    candidate, accuracy drop inside the bound

Run it alone on the machine: latency ratios need a quiet host (every ratio is printed with
the round-to-round spread of both sides).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHECKS = ("prune-resnet18", "prune-digits", "mnv3-openvino", "mnv3-optimize", "optimize-digits")


def edgezoo(*args: str) -> tuple[dict | None, float, str]:
    cmd = [sys.executable, "-m", "edgezoo", *args, "--json"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    try:
        doc = json.loads(proc.stdout) if proc.stdout.strip() else None
    except ValueError:
        doc = None
    err = "" if proc.returncode == 0 else f"exit {proc.returncode}: {(proc.stderr.strip().splitlines() or ['no output'])[-1]}"
    return doc, wall, err


def spread(lat: dict) -> float:
    r = sorted(lat.get("round_p50_ms") or [])
    return (r[-1] - r[0]) / r[len(r) // 2] if len(r) > 1 else 0.0


class Out:
    def __init__(self):
        self.rows: list[dict] = []

    def check(self, name: str, ok: bool, measured: str):
        self.rows.append({"check": name, "ok": ok, "measured": measured})
        print(f"  [{'PASS' if ok else 'MISS'}] {name}: {measured}", flush=True)


def prune_resnet18(out: Out, tmp: Path) -> None:
    doc, wall, err = edgezoo("export", "resnet18", "--target", "generic-cpu", "--weights", "random", "--prune", "structured:0.5",
                             "--out", str(tmp / "r18"), "--force")
    if doc is None:
        out.check("resnet18 pruned 50%", False, err)
        return
    p = doc["report"]["pruning"]
    rows = {c["measure"]: c for c in p["compare"]}
    print(f"resnet18 pruned 50% structured, onnxruntime int8 ({wall:.0f} s):")
    for c in p["compare"]:
        print(f"    {c['measure']:<22} unpruned {c['unpruned']:>16,.3f}  pruned {c['pruned']:>16,.3f}  ratio {c['ratio']:.3f}")
    out.check("resnet18 exported MACs <= 55%", rows["MACs (exported ONNX)"]["ratio"] <= 0.55, f"{rows['MACs (exported ONNX)']['ratio']:.3f}")
    lat = rows["p50 ms"]
    out.check("resnet18 ORT latency ratio < 0.7", lat["ratio"] < 0.7,
              f"{lat['ratio']:.3f} ({lat['pruned']:.2f} vs {lat['unpruned']:.2f} ms; pruned spread "
              f"{spread(doc['report']['variants']['int8']['latency']) * 100:.0f}%)")


def prune_digits(out: Out, tmp: Path) -> None:
    ref, _, err0 = edgezoo("export", "digits-cnn", "--target", "generic-cpu", "--precision", "fp32", "--out", str(tmp / "dfp32"), "--force")
    doc, wall, err = edgezoo("export", "digits-cnn", "--target", "generic-cpu", "--prune", "structured:0.5", "--finetune-epochs", "5",
                             "--out", str(tmp / "dpr"), "--force")
    if doc is None or ref is None:
        out.check("digits pruned + fine-tuned", False, err or err0)
        return
    fp32 = ref["report"]["variants"]["fp32"]["quality"]["metrics"]["top1"]
    rep = doc["report"]
    int8 = rep["variants"]["int8"]["quality"]["metrics"]["top1"]
    rows = {c["measure"]: c for c in rep["pruning"]["compare"]}
    print(f"digits-cnn pruned 50% + 5 epochs, onnxruntime int8 ({wall:.0f} s): unpruned fp32 top-1 {fp32:.2f}, pruned int8 {int8:.2f}")
    for c in rep["pruning"]["compare"]:
        print(f"    {c['measure']:<22} unpruned {c['unpruned']:>12,.3f}  pruned {c['pruned']:>12,.3f}  ratio {c['ratio']:.3f}")
    out.check("digits pruned int8 within 1.5 points of unpruned fp32", fp32 - int8 <= 1.5, f"{int8:.2f} vs {fp32:.2f}")
    lat = rows["p50 ms"]
    out.check("digits pruned int8 faster than unpruned int8", lat["ratio"] < 1.0, f"ratio {lat['ratio']:.3f} ({lat['pruned']:.4f} vs {lat['unpruned']:.4f} ms)")


def mnv3_openvino(out: Out, tmp: Path) -> None:
    for target, extra in (("native", ["--calibration-method", "entropy"]), ("intel-cpu", ["--calibration-method", "entropy"])):
        for mode in ("plain", "keep-float auto"):
            args = ["export", "mobilenet_v3_small", "--target", target, "--format", "openvino", "--weights", "random", *extra,
                    "--out", str(tmp / f"ov-{target}-{mode.split()[0]}"), "--force", "--allow-over-budget"]
            if mode != "plain":
                args += ["--keep-float", "auto"]
            doc, wall, err = edgezoo(*args)
            if doc is None:
                out.check(f"mnv3 OpenVINO {target} {mode}", False, err)
                continue
            rep = doc["report"]
            v, f = rep["variants"]["int8"], rep["variants"]["fp32"]
            sq = v["quality"].get("sqnr_db")
            ratio = v["latency"]["p50_ms"] / f["latency"]["p50_ms"]
            kept = len(rep.get("keep_float") or [])
            measured = (f"SQNR {sq:.1f} dB, p50 {v['latency']['p50_ms']:.2f} vs fp32 {f['latency']['p50_ms']:.2f} ms ({ratio:.2f}x; spreads "
                        f"{spread(v['latency']) * 100:.0f}% / {spread(f['latency']) * 100:.0f}%), {kept} layers in float, {wall:.0f} s")
            if mode == "plain":
                print(f"  mnv3 OpenVINO {target} plain int8: {measured}")
            else:
                out.check(f"mnv3 OpenVINO {target} keep-float auto: >= 12 dB and faster than fp32", sq is not None and sq >= 12 and ratio < 1.0, measured)


def mnv3_optimize(out: Out, tmp: Path) -> None:
    for target in ("native", "raspberrypi"):
        doc, wall, err = edgezoo("optimize", "mobilenet_v3_small", "--target", target, "--weights", "random", "--objective", "latency",
                                 "--prune-ratios", "", "--out", str(tmp / f"opt-mnv3-{target}"), "--force")
        if doc is None:
            out.check(f"mnv3 optimize {target}", False, err)
            continue
        print(f"mobilenet_v3_small optimize on {target} ({doc['runtime']}), {wall:.0f} s:")
        for c in doc["candidates"]:
            print(f"    {c['candidate']['label']:<28} p50 {c['p50_ms'] or float('nan'):>7.3f} ms  SQNR "
                  f"{'exact' if c['ok'] and c['sqnr_db'] is None else (c['sqnr_db'] if c['sqnr_db'] is not None else float('nan')):>6}  "
                  f"{'feasible' if c['feasible'] else '; '.join(c['violations'])}")
        fp32 = next(c for c in doc["candidates"] if c["candidate"]["label"] == "fp32")
        w = doc["winner"]
        if w is None:
            out.check(f"mnv3 optimize {target}: a winner", False, "no candidate met the constraints")
            continue
        out.check(f"mnv3 optimize {target}: winner not slower than fp32", w["p50_ms"] <= fp32["p50_ms"] * 1.0001,
                  f"{w['candidate']['label']} {w['p50_ms']:.3f} ms vs fp32 {fp32['p50_ms']:.3f} ms; kept in float: {len(w['keep_float'])} "
                  f"({', '.join(w['keep_float'][:3])}{', ...' if len(w['keep_float']) > 3 else ''})")


def optimize_digits(out: Out, tmp: Path) -> None:
    doc, wall, err = edgezoo("optimize", "digits-cnn", "--target", "raspberrypi", "--max-accuracy-drop", "1.0", "--no-cache",
                             "--out", str(tmp / "opt-digits"), "--force")
    if doc is None:
        out.check("optimize digits-cnn raspberrypi", False, err)
        return
    print(f"optimize digits-cnn raspberrypi ({wall:.0f} s):")
    for c in doc["candidates"]:
        print(f"    {c['candidate']['label']:<30} top-1 {c['metric'] if c['metric'] is not None else float('nan'):>6.2f}  "
              f"p50 {c['p50_ms'] or float('nan'):.4f} ms  {'feasible' if c['feasible'] else '; '.join(c['violations'])}")
    out.check("optimize digits-cnn within 10 minutes", wall < 600, f"{wall:.0f} s")
    w = doc["winner"]
    plain = [c for c in doc["candidates"] if c["candidate"]["precision"] == "int8" and not c["candidate"]["prune"] and c["ok"]]
    fastest_plain = min(c["p50_ms"] for c in plain) if plain else None
    ok = w is not None and fastest_plain is not None and w["p50_ms"] <= fastest_plain and w["drop"] <= 1.0
    out.check("optimize digits-cnn winner at least as fast as plain int8, drop <= 1", ok,
              f"{w['candidate']['label'] if w else '-'} {w['p50_ms'] if w else float('nan'):.4f} ms vs plain int8 "
              f"{fastest_plain if fastest_plain is not None else float('nan'):.4f} ms, drop {w['drop'] if w else float('nan'):+.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", default=",".join(CHECKS), help=f"comma-separated subset of {', '.join(CHECKS)}")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    chosen = [c.strip() for c in args.only.split(",") if c.strip()]
    bad = [c for c in chosen if c not in CHECKS]
    if bad:
        ap.error(f"unknown check {bad[0]!r}; choose from {', '.join(CHECKS)}")
    out = Out()
    fns = {"prune-resnet18": prune_resnet18, "prune-digits": prune_digits, "mnv3-openvino": mnv3_openvino,
           "mnv3-optimize": mnv3_optimize, "optimize-digits": optimize_digits}
    with tempfile.TemporaryDirectory(prefix="edgezoo-compression-") as tmp:
        for name in chosen:
            print(f"== {name}", flush=True)
            fns[name](out, Path(tmp))
    print("\nsummary:")
    for r in out.rows:
        print(f"  {'PASS' if r['ok'] else 'MISS'}  {r['check']}: {r['measured']}")
    if args.json:
        args.json.write_text(json.dumps(out.rows, indent=1))


if __name__ == "__main__":
    main()

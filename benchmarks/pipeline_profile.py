"""Where an export's time and memory go: export a fixed set of models for a set of targets
through the CLI (one process each, as a user runs it) and print every stage's wall time, CPU
time (the exporting process and the latency workers it waited for) and peak memory, from the
``stage_seconds`` and ``stage_profile`` each bundle's report.json records.

    python benchmarks/pipeline_profile.py                       # digits-cnn, mobilenet_v2, resnet50 x 3 targets
    python benchmarks/pipeline_profile.py --models digits-cnn --targets raspberrypi,intel-cpu
    python benchmarks/pipeline_profile.py --markdown profile.md

Every run starts from an empty stage cache of its own (a first export, as on a fresh
machine; the user's cache is not touched); with ``--second`` each model/target is exported
again at another precision right after, and that export's time (stages reused from the
cache) is printed beside the first's.

Run it alone on the machine: other load inflates wall time (CPU time is less affected).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def export(model: str, target: str, out: Path, weights: str, cache: Path, precision: str | None = None) -> tuple[dict | None, float, str]:
    import os

    cmd = [sys.executable, "-m", "edgezoo", "export", model, "--target", target, "--out", str(out), "--json", "--force"]
    if weights != "pretrained":
        cmd += ["--weights", weights]
    if precision:
        cmd += ["--precision", precision]
    env = dict(os.environ, EDGEZOO_CACHE=str(cache), EDGEZOO_DISTS=str(Path(os.environ.get("EDGEZOO_CACHE") or Path.home() / ".cache" / "edgezoo") / "dists"))
    env.pop("EDGEZOO_NO_CACHE", None)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None, wall, f"exit {proc.returncode}: {last}"
    bundle = Path(json.loads(proc.stdout)["bundle"])
    return json.loads((bundle / "report.json").read_text()), wall, ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default="digits-cnn,mobilenet_v2,resnet50")
    ap.add_argument("--targets", default="generic-cpu,raspberrypi,intel-cpu")
    ap.add_argument("--weights", default="random", help="'random' (as in the performance issue) or 'pretrained'")
    ap.add_argument("--markdown", type=Path, help="also write the tables here")
    ap.add_argument("--second", default="fp32", help="precision of the second export of each model/target ('' for none)")
    args = ap.parse_args()
    lines: list[str] = []

    def emit(text: str = "") -> None:
        print(text, flush=True)
        lines.append(text)

    summary = []
    with tempfile.TemporaryDirectory(prefix="edgezoo-profile-") as tmp:
        for model in [m for m in args.models.split(",") if m]:
            for target in [t for t in args.targets.split(",") if t]:
                weights = "pretrained" if model == "digits-cnn" else args.weights  # digits-cnn ships its weights
                cache = Path(tmp) / f"cache-{model}-{target}"  # empty: a first export
                report, wall, error = export(model, target, Path(tmp) / f"{model}-{target}", weights, cache)
                emit(f"## {model} -> {target} ({weights} weights): {wall:.1f} s wall for the whole command")
                emit()
                if report is None:
                    emit(f"failed: {error}")
                    emit()
                    summary.append((model, target, wall, None, None, error, None))
                    continue
                secs, prof = report["stage_seconds"], report.get("stage_profile", {})
                emit("| stage | wall s | CPU s | children CPU s | peak RSS MB |")
                emit("|---|---|---|---|---|")
                for stage, s in sorted(secs.items(), key=lambda kv: -kv[1]):
                    p = prof.get(stage, {})
                    emit(f"| {stage} | {s:.2f} | {p.get('cpu_s', float('nan')):.2f} | {p.get('children_cpu_s', float('nan')):.2f} | "
                         f"{p.get('peak_rss_mb', float('nan')):.0f} |")
                total = sum(secs.values())
                emit(f"| **stages total** | {total:.2f} | {sum(p.get('cpu_s', 0) for p in prof.values()):.2f} | "
                     f"{sum(p.get('children_cpu_s', 0) for p in prof.values()):.2f} | "
                     f"{max((p.get('peak_rss_mb', 0) for p in prof.values()), default=0):.0f} |")
                emit(f"(process start-up, imports and writing outside the stages: {wall - total:.1f} s)")
                emit()
                top = max(secs.items(), key=lambda kv: kv[1])
                second = None
                if args.second and args.second != report["precision"]:
                    rep2, wall2, err2 = export(model, target, Path(tmp) / f"{model}-{target}-2", weights, cache, args.second)
                    second = (args.second, wall2, rep2["cache_hits"] if rep2 else err2)
                    emit(f"second export ({args.second}): {wall2:.1f} s = {wall2 / wall:.0%} of the first; reused: "
                         f"{', '.join(rep2['cache_hits']) if rep2 else err2}")
                    emit()
                summary.append((model, target, wall, total, top, "", second))
    emit("## Summary")
    emit()
    emit("| model | target | command s | stages s | largest stage | second export s (share of first) |")
    emit("|---|---|---|---|---|---|")
    for model, target, wall, total, top, error, second in summary:
        emit(f"| {model} | {target} | {wall:.1f} | {'-' if total is None else f'{total:.1f}'} | "
             f"{error or f'{top[0]} {top[1]:.1f} s'} | {'-' if second is None else f'{second[0]} {second[1]:.1f} ({second[1] / wall:.0%})'} |")
    if args.markdown:
        args.markdown.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()

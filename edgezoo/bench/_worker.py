"""Child process for :mod:`edgezoo.bench.latency`: load, warm up, time, report JSON on stdout."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import numpy as np


def _peak_rss_kb() -> float:
    """This process's own peak resident set (VmHWM). Not ru_maxrss: Linux carries that
    across exec from the parent, which would charge the parent's torch to the runtime."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _input_shape(runtime: str, runner) -> list[int]:
    if runtime == "onnxruntime":
        shape = runner.sess.get_inputs()[0].shape
    elif runtime in ("litert", "tflite-micro"):
        shape = runner.inp["shape"]
    else:
        shape = runner.compiled.inputs[0].get_partial_shape().to_shape()
    return [d if isinstance(d, int) and d > 0 else 1 for d in (int(v) if str(v).isdigit() else v for v in shape)]


def main(argv: list[str]) -> None:
    runtime, model, threads, warmup, runs, min_seconds, config = argv
    threads, warmup, runs, min_seconds = int(threads), int(warmup), int(runs), float(min_seconds)
    from edgezoo import runtimes

    rt = runtimes.get(runtime)
    t0 = time.perf_counter()
    runner = rt.open(Path(model), threads, json.loads(config))
    load_ms = (time.perf_counter() - t0) * 1000
    x = np.random.default_rng(0).standard_normal(_input_shape(runtime, runner)).astype(np.float32)
    for _ in range(warmup):
        runner.run(x)
    times = []
    start = time.perf_counter()
    while len(times) < runs or (time.perf_counter() - start) < min_seconds:
        t = time.perf_counter()
        runner.run(x)
        times.append((time.perf_counter() - t) * 1000)
    arr = np.asarray(times)
    peak_kb = _peak_rss_kb()
    print(json.dumps({
        "runs": len(times),
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
        "peak_rss_mb": peak_kb / 1024.0,
        "load_ms": load_ms,
    }))


if __name__ == "__main__":
    main(sys.argv[1:])

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


MEDIAN_CI = 0.01  # relative half-width of the median's 95 % confidence interval that counts as stable
MIN_RUNS = 20  # the fewest timed runs a stable median stops at (five rounds of four)


def _median_ci(times: list[float]) -> float:
    """Half-width of the distribution-free 95 % confidence interval of the median, relative to it."""
    x = np.sort(np.asarray(times))
    n = len(x)
    half = 1.96 * np.sqrt(n) / 2
    lo, hi = x[max(0, int(n / 2 - half))], x[min(n - 1, int(np.ceil(n / 2 + half)))]
    med = float(np.median(x))
    return float(hi - lo) / 2 / med if med > 0 else 0.0


def enough(times: list[float], elapsed: float, runs: int, min_seconds: float) -> bool:
    """Whether the timed runs so far (ms each, ``elapsed`` s in all) settle the median."""
    n = len(times)
    if n >= runs and elapsed >= min_seconds:
        return True
    return (n >= MIN_RUNS and n % (5 if n < 100 else 25) == 0 and elapsed >= min_seconds / 4
            and _median_ci(times) <= MEDIAN_CI)


def main(argv: list[str]) -> None:
    runtime, model, threads, warmup, runs, min_seconds, config = argv
    threads, warmup, runs, min_seconds = int(threads), int(warmup), int(runs), float(min_seconds)
    from edgezoo import registry

    t0 = time.perf_counter()
    session = registry.runtime(runtime).open(Path(model), threads, json.loads(config))
    load_ms = (time.perf_counter() - t0) * 1000
    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal(i.concrete_shape()).astype(np.float32) for i in session.inputs]
    for _ in range(warmup):
        session.run(feeds)
    times = []
    start = time.perf_counter()
    # `runs` runs and `min_seconds`, or fewer once the median is pinned down: its 95 %
    # confidence interval, from the order statistics, narrower than MEDIAN_CI of the median,
    # after at least MIN_RUNS runs and a quarter of `min_seconds`. Tiny models get there in a
    # fraction of the time, and large ones in fewer runs (resnet50: 20 of 52 ms, not 50); the
    # report keeps the number of runs and the round-to-round spread.
    while True:
        t = time.perf_counter()
        session.run(feeds)
        times.append((time.perf_counter() - t) * 1000)
        if enough(times, time.perf_counter() - start, runs, min_seconds):
            break
    arr = np.asarray(times)
    peak_kb = _peak_rss_kb()
    # the median of each of five consecutive rounds: their spread is the noise a later
    # comparison (edgezoo gate) must not mistake for a regression
    rounds = [float(np.median(c)) for c in np.array_split(arr, 5) if len(c)]
    print(json.dumps({
        "runs": len(times),
        "round_p50_ms": rounds,
        "quantiles_ms": {str(q): float(np.percentile(arr, q)) for q in (1, 10, 25, 50, 75, 90, 99)},
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "mean_ms": float(arr.mean()),
        "min_ms": float(arr.min()),
        "peak_rss_mb": peak_kb / 1024.0,
        "load_ms": load_ms,
    }))


if __name__ == "__main__":
    main(sys.argv[1:])

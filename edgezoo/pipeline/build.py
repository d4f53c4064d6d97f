"""Execute a Plan: source -> fp32 model in the target's format -> variant -> measurements -> bundle.

All work happens in a private temporary folder under the output folder; the bundle
appears only when everything succeeded (rename), so a failure leaves nothing behind.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgezoo.bench.accuracy import Quality, compare
from edgezoo.bench.latency import Latency, measure
from edgezoo.errors import BudgetError, ModelFileError, PipelineError, UsageError
from edgezoo.pipeline import compat
from edgezoo.pipeline.formats import BUILDERS, Artifact, Context
from edgezoo.pipeline.plan import Plan, check_writable
from edgezoo.stages import Step, sha256_path

Progress = Callable[[str], None]


@dataclass
class Variant:
    precision: str
    artifact: Artifact
    quality: Quality | None = None
    latency: Latency | None = None
    effective_precision: str = ""

    @property
    def size_bytes(self) -> int:
        return self.artifact.size_bytes


@dataclass
class BuildResult:
    plan: Plan
    bundle_dir: Path
    archive: Path
    variants: dict[str, Variant]
    lineage: list[Step]
    export_check: Quality | None
    calibration: dict | None
    verdicts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    operators: list = field(default_factory=list)
    micro: dict | None = None  # microcontroller memory, latency estimate, compile checks, Vela
    extras: Path | None = None  # a folder whose files join the bundle (firmware sources, Vela output)
    report: dict = field(default_factory=dict)


class _Timer:
    def __init__(self, sink: dict, name: str, progress: Progress | None):
        self.sink, self.name, self.progress = sink, name, progress

    def __enter__(self):
        if self.progress:
            self.progress(self.name)
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.sink[self.name] = self.sink.get(self.name, 0.0) + time.perf_counter() - self.t0


def load_data(plan: Plan):
    """(calibration inputs, eval inputs, eval labels or None, calibration record)."""
    card = plan.card
    if plan.source == "onnx-file":
        if plan.calib_data is None:
            # no data of the user's: fidelity against fp32 on seeded normal noise, labelled as such
            noise = np.random.default_rng(0).standard_normal((32, *card.input.shape[1:])).astype(np.float32)
            return np.zeros((0, *card.input.shape[1:]), np.float32), noise, None, None
        try:
            data = np.load(plan.calib_data, allow_pickle=False)
        except ValueError as exc:
            raise UsageError(f"{plan.calib_data} is not a readable .npy array: {exc}") from None
        want = tuple(card.input.shape[1:])
        if data.ndim == len(want):
            data = data[None]
        if tuple(data.shape[1:]) != want:
            raise ModelFileError(
                f"calibration data {plan.calib_data} has samples of shape {list(data.shape[1:])}; the model takes {list(want)}",
                hint="save an array of shape N x " + "x".join(map(str, want)),
            )
        data = data.astype(np.float32)
        import hashlib

        rec = {"dataset": str(plan.calib_data), "split": "all", "samples": int(min(len(data), plan.calibration_samples)), "sha256": hashlib.sha256(data.tobytes()).hexdigest()}
        return data[: plan.calibration_samples], data, None, rec
    from edgezoo.zoo import datasets

    ev = card.evaluation
    calib = datasets.load_split(ev.dataset, ev.calibration_split)
    evs = datasets.load_split(ev.dataset, ev.eval_split)
    x_cal = datasets.preprocess_split(calib, card)[: plan.calibration_samples]
    x_eval = datasets.preprocess_split(evs, card)
    rec = {"dataset": ev.dataset, "split": ev.calibration_split, "samples": int(len(x_cal)), "sha256": calib.sha256}
    return x_cal, x_eval, evs.labels, rec


def prepare_source(plan: Plan, ctx: Context, seconds: dict, progress, x_eval: np.ndarray):
    """Load the source model; produce what the format's builder starts from. Returns
    (compatibility report, PyTorch reference logits or None)."""
    card = plan.card
    torch_ref = None
    if plan.source == "zoo":
        from edgezoo.stages import torch_to_onnx
        from edgezoo.zoo.sources import resolve_weights

        src = card.version().weights
        with _Timer(seconds, "fetch weights", progress):
            wpath = None if plan.weights == "random" else resolve_weights(src, local=plan.weights_path)
        ctx.weights_sha = src.sha256 if wpath is not None else f"random(seed={torch_to_onnx.SEED})"
        with _Timer(seconds, "load model", progress):
            if ctx.torch_model is None:
                ctx.torch_model = torch_to_onnx.load_model(card, wpath, recalib=ctx.x_cal if plan.weights == "random" else None)
            torch_ref = _torch_logits(ctx.torch_model, x_eval)
    if plan.format in ("tflite", "tflm"):
        return None, torch_ref  # the compatibility check reads the converted .tflite
    raw = ctx.work / "source.onnx"
    if plan.source == "zoo":
        from edgezoo.stages import torch_to_onnx

        with _Timer(seconds, "export onnx", progress):
            ctx.lineage.append(torch_to_onnx.export_onnx(ctx.torch_model, card, raw, torch_to_onnx.ExportConfig(opset=plan.opset, input_name=card.input.name), ctx.weights_sha))
    else:
        shutil.copyfile(plan.source_path, raw)
        ctx.lineage.append(Step("load-onnx", "edgezoo", _version(), {"file": plan.source_path.name}, sha256_path(raw), sha256_path(raw)))
    with _Timer(seconds, "check compatibility", progress):
        report = compat.check_onnx(raw) if plan.format == "onnx" else compat.check_openvino(raw)
        compat.require_supported(report, plan.target_id, plan.runtime)
        if plan.source == "onnx-file":
            _check_runs(raw, card)
    with _Timer(seconds, "simplify", progress):
        from edgezoo.stages.simplify import simplify

        ctx.onnx_fp32 = ctx.work / "fp32.onnx"
        ctx.lineage.append(simplify(raw, ctx.onnx_fp32))
    return report, torch_ref


def build(plan: Plan, progress: Progress | None = None) -> BuildResult:
    from edgezoo import runtimes

    out_dir = plan.bundle_dir.parent
    check_writable(out_dir)
    work = Path(tempfile.mkdtemp(prefix=".edgezoo-build-", dir=out_dir))
    seconds: dict[str, float] = {}
    try:
        with _Timer(seconds, "load data", progress):
            x_cal, x_eval, labels, calib_rec = load_data(plan)
        ctx = Context(plan, work, [], x_cal, calib_rec["sha256"] if calib_rec else "")
        operators, torch_ref = prepare_source(plan, ctx, seconds, progress, x_eval)
        builder = BUILDERS[plan.format]
        with _Timer(seconds, f"convert {plan.format} fp32", progress):
            fp32 = builder.fp32(ctx)
        if plan.format in ("tflite", "tflm"):
            with _Timer(seconds, "check compatibility", progress):
                operators = compat.require_supported(compat.check_tflite(fp32.path), plan.target_id, plan.runtime)
        variants = {"fp32": Variant("fp32", fp32)}
        if plan.precision != "fp32":
            with _Timer(seconds, f"build {plan.precision}", progress):
                variants[plan.precision] = Variant(plan.precision, builder.variant(ctx, fp32, plan.precision))
            if plan.format == "tflite" and plan.target.formats["tflite"].accelerator:
                # the accelerator's placement is read from the quantized model it would compile
                operators = compat.check_tflite(variants[plan.precision].artifact.path, plan.target.formats["tflite"].accelerator)
        micro_info = None
        if plan.format == "tflm":
            with _Timer(seconds, "memory verdict and firmware", progress):
                micro_info = _micro(plan, ctx, variants[plan.precision].artifact)
                operators = micro_info.pop("operators")
        for v in variants.values():  # resolve once: the format's runtime unless the artifact names its own
            v.artifact.runtime = v.artifact.runtime or plan.runtime
        with _Timer(seconds, "evaluate", progress):
            ref_logits = None
            for v in variants.values():
                runner = runtimes.get(v.artifact.runtime).open(v.artifact.path, plan.threads, v.artifact.config)
                if plan.runtime == "openvino":
                    from edgezoo.runtimes.openvino import effective_precision

                    v.effective_precision = effective_precision(runner)
                logits = runtimes.run_batch(runner, x_eval)
                if ref_logits is None:
                    ref_logits = logits
                v.quality = compare(ref_logits, logits, labels)
            export_check = compare(torch_ref, ref_logits, labels) if torch_ref is not None else None
        if export_check is not None and export_check.agreement < 99.5:
            raise PipelineError(
                f"the exported {plan.format} fp32 model disagrees with PyTorch on {100 - export_check.agreement:.1f}% of samples "
                f"(max abs diff {export_check.max_abs_diff:.3g})"
            )
        with _Timer(seconds, "benchmark latency", progress):
            for v in variants.values():
                v.latency = measure(v.artifact.path, runtime=v.artifact.runtime, threads=plan.threads, config=v.artifact.config,
                                    warmup=10, runs=50, min_seconds=1.0)

        verdicts, warnings = judge(plan, variants)
        if micro_info is not None:
            from edgezoo.pipeline.micro import verdict_line

            verdicts.insert(0, verdict_line(micro_info["memory"], plan.target_id) + " (arena measured with TFLite Micro)")
            est = micro_info["latency_estimate"]
            verdicts.append(f"device latency {est['estimate_ms']:.2f} ms ({est['method']})")
        from edgezoo.bundle.writer import write_bundle

        result = BuildResult(plan, plan.bundle_dir, plan.archive, variants, ctx.lineage, export_check, calib_rec, verdicts,
                             list(plan.warnings) + warnings, seconds, operators=operators or [], micro=micro_info,
                             extras=work / "extras" if micro_info is not None else None)
        with _Timer(seconds, "bundle", progress):
            write_bundle(result, work)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _micro(plan: Plan, ctx: Context, art: Artifact) -> dict:
    """Memory verdict (refusing what does not fit), Vela for Ethos-U, firmware sources and
    compile checks, for a tflm bundle."""
    from edgezoo import __version__
    from edgezoo.bundle import firmware
    from edgezoo.pipeline import micro
    from edgezoo.runtimes import litert
    from edgezoo.stages import sha256_path
    from edgezoo.zoo.labels import load_labels

    target, spec = plan.target, plan.target.formats["tflm"]
    extras = ctx.work / "extras"
    fw_model = art.path
    vela = None
    if spec.accelerator.startswith("ethos-u"):
        fw_model, vela = micro.run_vela(art.path, spec.accelerator, extras)
        ctx.lineage.append(Step("compile-vela", "ethos-u-vela", vela["vela_version"],
                                {"accelerator": spec.accelerator, "system_config": vela["system_config"], "memory_mode": vela["memory_mode"]},
                                sha256_path(art.path), sha256_path(fw_model)))
    report = micro.memory_report(art.path, target, art.config["arena_bytes"], flash_model=fw_model)
    micro.require_fit(report, plan.target_id, plan.allow_over_budget)
    ops_detail = litert.operators(fw_model) if vela is None else None
    ops = sorted({o["op"] for o in ops_detail}) if ops_detail else _tflite_op_names(fw_model)
    mod_io = litert._interp().Interpreter(model_path=str(art.path))
    i, o = mod_io.get_input_details()[0], mod_io.get_output_details()[0]
    data = fw_model.read_bytes()
    arena = report["arena_bytes"]
    if vela and vela.get("sram_bytes"):
        arena = max(arena, int(vela["sram_bytes"]))
    info = {
        "edgezoo_version": __version__, "model": plan.card.id, "target": plan.target_id, "sha256": sha256_path(fw_model),
        "arena": arena, "arena_measured": report["arena_measured_bytes"], "headroom": report["arena_headroom"],
        "input": {"shape": [int(d) for d in i["shape"]], "scale": float(i["quantization"][0]), "zero_point": int(i["quantization"][1])},
        "output": {"shape": [int(d) for d in o["shape"]], "scale": float(o["quantization"][0]), "zero_point": int(o["quantization"][1])},
        "labels": list(load_labels(plan.card.labels)) if plan.card.labels else [], "kernel_library": target.memory.kernel_library,
    }
    firmware.write_sources(extras / "firmware", data, ops, info)
    compile_report = firmware.compile_checks(extras / "firmware", data, cpu=_cpu_flag(target))
    return {
        "memory": report,
        "latency_estimate": micro.latency_estimate(plan.card, target) if vela is None else {
            "estimate_ms": vela["inference_time_ms"], "method": f"Vela's estimate for {spec.accelerator} ({vela['total_cycles']:.0f} cycles)",
            "cycles_source": vela["method"]},
        "vela": vela,
        "compile": compile_report,
        "resolver_ops": ops,
        "firmware_model": fw_model.name,
        "operators": compat.check_tflite(art.path),
    }


def _tflite_op_names(path: Path) -> list[str]:
    """Operator names of a .tflite (builtin or custom) read from its flatbuffer with LiteRT's
    schema reader, for models the host interpreter cannot run (Vela's ethos-u custom op)."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = set()
    for oc in model.operatorCodes:
        code = max(oc.builtinCode, oc.deprecatedBuiltinCode)
        name = builtin.get(code, str(code))
        names.add(oc.customCode.decode() if name == "CUSTOM" and oc.customCode else name)
    return sorted(names)


def _cpu_flag(target) -> str:
    cpu = target.hardware.cpu.lower()
    for core in ("cortex-m55", "cortex-m7", "cortex-m33", "cortex-m4"):
        if core in cpu.replace(" ", "-"):
            return core
    return "cortex-m4"


def _torch_logits(model, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return np.concatenate([model(torch.from_numpy(x[i : i + 32])).numpy() for i in range(0, len(x), 32)])


def _check_runs(path: Path, card) -> None:
    """The user's model must load and run in onnxruntime on a sample of its shape."""
    from edgezoo.runtimes import onnxruntime as rt

    runner = rt.open(path, 1)
    try:
        runner.run(np.zeros(card.input.shape, np.float32))
    except Exception as exc:
        raise ModelFileError(f"{path.name} does not run on input shape {list(card.input.shape)}: {str(exc).splitlines()[0][:200]}") from None


def judge(plan: Plan, variants: dict[str, Variant]) -> tuple[list[str], list[str]]:
    """Budget verdicts (hard) and plain statements about speed and accuracy (never hidden)."""
    verdicts, warnings = [], []
    budgets = plan.target.budgets
    chosen = variants[plan.precision]
    fp32 = variants["fp32"]
    size_mb = chosen.size_bytes / 1e6
    if budgets.max_model_mb is not None:
        ok = size_mb <= budgets.max_model_mb
        verdicts.append(f"model size {size_mb:.2f} MB {'within' if ok else 'OVER'} budget {budgets.max_model_mb:g} MB")
        if not ok and not plan.allow_over_budget:
            raise BudgetError(
                f"{plan.model_id} {plan.precision} is {size_mb:.2f} MB; target {plan.target_id} allows {budgets.max_model_mb:g} MB",
                hint="choose a smaller model or precision, or pass --allow-over-budget",
            )
    if budgets.max_latency_ms is not None:
        p50 = chosen.latency.p50_ms
        verdicts.append(
            f"host p50 latency {p50:.2f} ms {'within' if p50 <= budgets.max_latency_ms else 'over'} budget "
            f"{budgets.max_latency_ms:g} ms (a host proxy: measure on the device before relying on it)"
        )
    if plan.precision == "bf16" and chosen.effective_precision and chosen.effective_precision != "bf16":
        warnings.append(f"this host's CPU has no bf16 support: the bf16 variant ran in {chosen.effective_precision}")
    if chosen is not fp32:
        ratio = chosen.latency.p50_ms / fp32.latency.p50_ms
        same_runtime = chosen.artifact.runtime == fp32.artifact.runtime
        if ratio > 1.0 and same_runtime:  # a reference run in another runtime is no speed baseline
            warnings.append(
                f"{plan.precision} is {ratio:.2f}x SLOWER than fp32 on this host ({chosen.latency.p50_ms:.2f} ms vs "
                f"{fp32.latency.p50_ms:.2f} ms p50): fp32 is the faster precision here; consider --precision fp32"
            )
        q, ref = chosen.quality, fp32.quality
        if q.top1 is not None and ref.top1 is not None:
            drop = ref.top1 - q.top1
            if budgets.max_accuracy_drop is not None:
                ok = drop <= budgets.max_accuracy_drop
                verdicts.append(f"accuracy drop {drop:+.2f} points {'within' if ok else 'OVER'} budget {budgets.max_accuracy_drop:g}")
                if not ok and not plan.allow_over_budget:
                    raise BudgetError(
                        f"{plan.precision} loses {drop:.2f} accuracy points against fp32 ({q.top1:.2f}% vs {ref.top1:.2f}%); "
                        f"target {plan.target_id} allows {budgets.max_accuracy_drop:g}",
                        hint="try another calibration method or precision, or pass --allow-over-budget",
                    )
        if q.sqnr_db is not None and q.sqnr_db < 10.0:
            warnings.append(f"{plan.precision} output fidelity is poor: SQNR {q.sqnr_db:.1f} dB against fp32 (top-1 agreement {q.agreement:.1f}%)")
    return verdicts, warnings


def _version() -> str:
    from edgezoo import __version__

    return __version__

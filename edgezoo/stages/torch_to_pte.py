"""PyTorch -> ExecuTorch .pte: torch.export (strict) -> to_edge_transform_and_lower with the
XNNPACK partitioner -> to_executorch. int8 through PT2E with ExecuTorch's XNNPACK quantizer
(symmetric int8, per-channel weights). Besides the .pte, each build writes
``<name>.ops.json``: every operator with whether XNNPACK took it, read from the lowered
program (the .pte itself only holds the delegate's opaque blob)."""

from __future__ import annotations

import contextlib
import json
import re
import warnings
from pathlib import Path

import numpy as np

from edgezoo.errors import PipelineError, first_line, require
from edgezoo.hashing import sha256_file
from edgezoo.stages import Step, count, example_args, sample_args

_EDGE_OP = re.compile(r"<EdgeOpOverload: ([^>]+)>")


def _version() -> str:
    from importlib.metadata import version

    return version("executorch")


@contextlib.contextmanager
def _quiet():
    import logging

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(logging.NOTSET)


def _lower(ep, out: Path) -> None:
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    edge = to_edge_transform_and_lower(ep, partitioner=[XnnpackPartitioner()])
    ops = _operators(edge.exported_program().graph_module)
    program = edge.to_executorch()
    out.write_bytes(program.buffer)
    ops_path(out).write_text(json.dumps(ops, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def ops_path(pte: Path) -> Path:
    return pte.with_suffix(".ops.json")


def _op_name(target) -> str:
    m = _EDGE_OP.match(str(target))
    name = m.group(1) if m else getattr(target, "__name__", str(target))
    return name.removesuffix(".default")


def _layer(node) -> str:
    stack = node.meta.get("nn_module_stack") or {}
    if not stack:
        return node.name
    path, cls = list(stack.values())[-1]
    return f"{path} ({cls.rsplit('.', 1)[-1]})" if path else cls.rsplit(".", 1)[-1]


def _operators(gm) -> list[dict]:
    """Operators inside XNNPACK delegates and those left to ExecuTorch's portable kernels."""
    rows = []

    def walk(graph, placement):
        for n in graph.nodes:
            if n.op != "call_function" or "getitem" in str(n.target) or "executorch_call_delegate" in str(n.target):
                continue
            rows.append({"op": _op_name(n.target), "layer": _layer(n), "placement": placement})

    for _, mod in gm.named_children():
        if hasattr(mod, "original_module"):
            walk(mod.original_module.graph, "CPU (XNNPACK delegate)")
    walk(gm.graph, "CPU (ExecuTorch portable kernel, outside the delegate)")
    return rows


def _example(card):
    require("torch", extra="torch", purpose="exporting to ExecuTorch")
    return example_args(card)


def _export(torch, model, args):
    """Strict export (the XNNPACK quantizer's annotators match on its metadata); models it
    cannot trace (a user's .pt2 re-exported, dynamic Python) fall back to non-strict."""
    try:
        return torch.export.export(model, args, strict=True)
    except Exception:  # torch raises many types for untraceable code
        return torch.export.export(model, args)


def convert_fp32(model, card, out: Path, weights_sha: str) -> Step:
    torch = require("torch", extra="torch", purpose="exporting to ExecuTorch")
    require("executorch", extra="executorch", purpose="exporting to ExecuTorch")
    from edgezoo.stages.fold import fold_batchnorm

    folded, n = fold_batchnorm(model)  # the same program, lowered in half the time (edgezoo.stages.fold)
    try:
        with _quiet(), torch.no_grad():
            _lower(_export(torch, folded, _example(card)), out)
    except Exception as exc:  # torch.export and the lowering raise many types
        raise PipelineError(f"ExecuTorch lowering of {card.id} failed: {first_line(exc)[:300]}") from exc
    return Step("convert-executorch", "executorch (XNNPACK partitioner)", _version(),
                {"batch": 1, "strict_export": True, "delegate": "xnnpack", "batchnorm_folded": n}, weights_sha, sha256_file(out))


def quantize_pt2e(model, card, out: Path, calib: list[np.ndarray], calib_sha: str) -> Step:
    torch = require("torch", extra="torch", purpose="quantizing for ExecuTorch")
    require("executorch", extra="executorch", purpose="quantizing for ExecuTorch")
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import XNNPACKQuantizer, get_symmetric_quantization_config
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    from edgezoo.stages.fold import fold_batchnorm

    folded, n = fold_batchnorm(model)  # PT2E folds them too, after tracing them: the same weights, quantized the same way
    try:
        with _quiet(), torch.no_grad():
            quantizer = XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True))
            prepared = prepare_pt2e(_export(torch, folded, _example(card)).module(), quantizer)
            for i in range(count(calib)):
                prepared(*sample_args(calib, i))
            converted = convert_pt2e(prepared)
            _lower(_export(torch, converted, _example(card)), out)
    except Exception as exc:  # torch.export, PT2E and the lowering raise many types
        raise PipelineError(f"ExecuTorch int8 quantization of {card.id} failed: {first_line(exc)[:300]}") from exc
    params = {"quantizer": "XNNPACKQuantizer", "scheme": "symmetric int8, per-channel weights", "calibration_samples": count(calib),
              "calibration_sha256": calib_sha, "batchnorm_folded": n}
    return Step("quantize-static-int8", "executorch PT2E (XNNPACKQuantizer)", _version(), params, calib_sha, sha256_file(out))

"""Constant folding and graph clean-up with onnxsim, checked against the unsimplified model."""

from __future__ import annotations

from pathlib import Path

from edgezoo.errors import PipelineError, first_line, require
from edgezoo.hashing import sha256_file
from edgezoo.stages import Step


def simplify(src: Path, out: Path) -> Step:
    onnx = require("onnx", extra="onnx", purpose="loading ONNX models")
    onnxsim = require("onnxsim", extra="onnx", purpose="simplifying ONNX graphs")
    model = onnx.load(str(src))
    import contextlib
    import io

    try:
        # check_n: onnxsim itself compares outputs of the two graphs on random inputs;
        # it prints its progress to stdout, which would corrupt --json output
        with contextlib.redirect_stdout(io.StringIO()):
            simplified, ok = onnxsim.simplify(model, check_n=3)
    except Exception as exc:
        raise PipelineError(f"onnxsim failed on {src.name}: {first_line(exc)}") from exc
    if not ok:
        raise PipelineError(f"onnxsim's simplified {src.name} does not match the original's outputs")
    from edgezoo.intake.onnx_file import flatten_gemm_biases

    flattened = flatten_gemm_biases(simplified)
    onnx.save(simplified, str(out))
    return Step(
        stage="simplify",
        tool="onnxsim",
        tool_version=getattr(onnxsim, "__version__", "unknown"),
        params={"check_n": 3},
        input_sha256=sha256_file(src),
        output_sha256=sha256_file(out),
        notes=(f"nodes {len(model.graph.node)} -> {len(simplified.graph.node)}",)
        + ((f"Gemm bias made 1-D (same result) for onnxruntime's quantizer: {', '.join(flattened)}",) if flattened else ()),
    )

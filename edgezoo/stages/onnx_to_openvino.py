"""ONNX -> OpenVINO IR (xml + bin) with ``openvino.convert_model``; fp16 weight compression;
int8 with ``nncf.quantize`` on the card's calibration split."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgezoo.errors import PipelineError, first_line, require
from edgezoo.hashing import sha256_file
from edgezoo.stages import Step


def _ov():
    from edgezoo.runtimes.openvino import decline_telemetry

    decline_telemetry()  # before openvino's import, which may start its telemetry
    return require("openvino", extra="openvino", purpose="OpenVINO conversion")


def canonicalize_names(xml_path: Path) -> None:
    """OpenVINO names the nodes it creates ``<Type>_<n>`` from a process-wide counter, so the
    same model saved twice gets different .xml bytes. Renumber those names in order of first
    appearance. Names that came from the model are paths (``/layer1/Conv``) or scoped
    (``onnx::Conv_12``) and are left alone, as are the model's input and output names."""
    import re

    text = xml_path.read_text(encoding="utf-8")
    pattern = re.compile(r"(?<![\w./:])([A-Z][A-Za-z]*)_(\d+)\b")
    mapping: dict[str, str] = {}

    def rename(m: re.Match) -> str:
        key = m.group(0)
        if key not in mapping:
            mapping[key] = f"{m.group(1)}_ez{len(mapping)}"
        return mapping[key]

    xml_path.write_text(pattern.sub(rename, text), encoding="utf-8")


def convert(onnx_path: Path, out_xml: Path, *, compress_to_fp16: bool) -> Step:
    ov = _ov()
    try:
        model = ov.convert_model(str(onnx_path))
        ov.save_model(model, str(out_xml), compress_to_fp16=compress_to_fp16)
        canonicalize_names(out_xml)
    except Exception as exc:
        raise PipelineError(f"OpenVINO conversion failed: {first_line(exc)[:300]}") from exc
    return Step(
        "convert-openvino", "openvino.convert_model", ov.__version__, {"compress_to_fp16": compress_to_fp16},
        sha256_file(onnx_path), sha256_file(out_xml.with_suffix(".bin")),
    )


_LAST_CONVERTED: dict = {}


def _converted(ov, path: Path):
    """``ov.convert_model`` of ``path``, converted once per file version and cloned for each
    quantization (sensitivity probes quantize the same graph dozens of times)."""
    st = path.stat()
    k = (str(path), st.st_mtime_ns, st.st_size)
    if k not in _LAST_CONVERTED:
        _LAST_CONVERTED.clear()  # one graph at a time: bounded memory
        _LAST_CONVERTED[k] = ov.convert_model(str(path))
    return _LAST_CONVERTED[k].clone()


NNCF_RANGES = {"minmax": "MINMAX", "percentile": "MEAN_QUANTILE", "entropy": "HISTOGRAM"}  # activations' range estimator


def quantize_nncf(onnx_path: Path, out_xml: Path, calib: list[np.ndarray], calib_sha: str, transformer: bool = False,
                  keep_float: tuple[str, ...] = (), overflow_fix: str = "first_layer", calibration_method: str = "minmax") -> Step:
    """``transformer``: NNCF's transformer model type (SmoothQuant, and the attention's
    softmax and normalisation patterns kept in float), which static int8 of a transformer needs.
    ``keep_float``: ONNX node names left in float (NNCF's ignored scope; OpenVINO names a
    convolution converted from ONNX node X ``X/WithoutBiases``, a Gemm ``X/MatMul``: hence patterns).
    ``overflow_fix``: "enable" (7-bit weights everywhere, for CPUs without VNNI) or "first_layer"
    (NNCF's default). ``calibration_method`` picks the activations' range estimator (NNCF_RANGES)."""
    ov = _ov()
    nncf = require("nncf", extra="openvino", purpose="NNCF int8 quantization")
    import contextlib
    import io

    nncf.set_log_level(logging.ERROR)
    try:
        model = _converted(ov, Path(onnx_path))
        n = len(calib[0])
        # one sample per item; several inputs go in as a tuple in the model's input order
        dataset = nncf.Dataset([calib[0][i : i + 1] if len(calib) == 1 else tuple(f[i : i + 1] for f in calib) for i in range(n)])
        # defaults: performance preset (symmetric), MinMax ranges, fast bias correction;
        # NNCF draws progress bars on the terminal, which would break --json and our own progress
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            extra = {"model_type": nncf.ModelType.TRANSFORMER} if transformer else {}
            from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
            from nncf.quantization.range_estimator import RangeEstimatorParametersSet

            adv = {"overflow_fix": OverflowFix.ENABLE if overflow_fix == "enable" else OverflowFix.FIRST_LAYER}
            if calibration_method != "minmax":
                adv["activations_range_estimator_params"] = getattr(RangeEstimatorParametersSet, NNCF_RANGES[calibration_method])
            extra["advanced_parameters"] = AdvancedQuantizationParameters(**adv)
            if keep_float:
                import re

                extra["ignored_scope"] = nncf.IgnoredScope(patterns=["^" + re.escape(name) + "(/[^/]*)?$" for name in keep_float], validate=False)
            quantized = nncf.quantize(model, dataset, subset_size=n, **extra)
        ov.save_model(quantized, str(out_xml), compress_to_fp16=False)
        canonicalize_names(out_xml)
    except Exception as exc:
        raise PipelineError(f"NNCF quantization failed: {first_line(exc)[:300]}") from exc
    params = {"preset": "performance", "subset_size": int(n), "calibration_sha256": calib_sha}
    if transformer:
        params["model_type"] = "transformer"
    if keep_float:
        params["ignored_scope"] = list(keep_float)
    params["overflow_fix"] = overflow_fix
    params["activations_range"] = NNCF_RANGES[calibration_method].lower()
    return Step("quantize-static-int8", "nncf.quantize", nncf.__version__, params, sha256_file(onnx_path), sha256_file(out_xml.with_suffix(".bin")))

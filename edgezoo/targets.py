"""Target profile loading and validation.

Profiles are TOML files in the top-level ``targets/`` folder, shipped in the package as
``edgezoo.profiles``. A user may also pass the path of their own ``.toml`` file.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from edgezoo.errors import NotFoundError, SchemaError
from edgezoo.schemas import _strict
from edgezoo.schemas.target import Quantization, Target


def _profile_files() -> dict[str, Path]:
    root = resources.files("edgezoo.profiles")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml")}


def list_targets() -> list[Target]:
    return [load_target(name) for name in sorted(_profile_files())]


@lru_cache(maxsize=None)
def _load_file(path: Path) -> Target:
    data = _strict.read_toml(path)
    target = _strict.load(Target, data, source=str(path))
    return target


def load_target(name_or_path: str | Path) -> Target:
    """A profile by id (``raspberrypi``) or by path (``./my-board.toml``)."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise NotFoundError("target profile file", text, hint="check the path, or use a profile id from `edgezoo targets`")
        return _load_file(path.resolve())
    files = _profile_files()
    if text not in files:
        raise NotFoundError("target", text, sorted(files))
    target = _load_file(files[text])
    if target.id != text:
        raise SchemaError(f"{files[text]}: key 'id' is {target.id!r} but the file is named {text!r}.toml")
    return target


def quant_scheme(target: Target, fmt: str | None = None) -> Quantization:
    """The int8 scheme for a format's runtime on the target's instruction set.

    An explicit ``quantization`` table in the profile's format wins; otherwise the scheme
    is derived from facts about the runtime's kernels (measured in benchmarks/ and
    documented by the runtimes):

    - onnxruntime on x86-64: QDQ convolutions become fused integer kernels only with
      unsigned activations and signed weights (U8S8). Without VNNI, u8*s8 pairs can
      saturate the 16-bit accumulation of ``vpmaddubsw``, so weights get 7 bits (reduce_range).
    - onnxruntime on ARM64: signed activations and weights (S8S8) in QDQ form, its
      recommended scheme on ARM.
    - LiteRT: the TFLite int8 spec (asymmetric int8 activations, symmetric per-channel
      int8 weights), which XNNPACK runs on every CPU.
    - OpenVINO: NNCF's performance preset (symmetric int8 weights and activations,
      FakeQuantize), which the CPU plugin lowers to its int8 (VNNI/AMX) kernels.
    """
    name, spec = target.format(fmt)
    if spec.quantization is not None:
        return spec.quantization
    hw = target.hardware
    if spec.runtime == "litert":
        return Quantization(
            activation_type="int8",
            weight_type="int8",
            format="tflite",
            per_channel=True,
            reduce_range=False,
            rationale="derived: LiteRT's int8 spec (int8 activations, symmetric per-channel int8 weights), run by XNNPACK",
            tool="litert-torch PT2E or ai-edge-quantizer, the one closer to fp32 on calibration data",
        )
    if spec.runtime == "openvino":
        return Quantization(
            activation_type="int8" if "amx_int8" in hw.isa else "uint8",
            weight_type="int8",
            format="fakequantize",
            per_channel=True,
            reduce_range=False,
            rationale="derived: NNCF post-training quantization, performance preset, lowered by the OpenVINO CPU plugin",
            tool="nncf.quantize",
        )
    if hw.arch == "x86_64":
        vnni = any(flag in hw.isa for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))
        return Quantization(
            activation_type="uint8",
            weight_type="int8",
            format="qdq",
            per_channel=True,
            reduce_range=not vnni,
            rationale=(
                "derived: onnxruntime on x86_64 runs QDQ int8 convolutions as fused integer kernels "
                "only with uint8 activations and int8 weights (U8S8); "
                + ("VNNI present, full 8-bit weights" if vnni else "no VNNI, 7-bit weights (reduce_range) to avoid saturation")
            ),
            tool="onnxruntime.quantization",
        )
    return Quantization(
        activation_type="int8",
        weight_type="int8",
        format="qdq",
        per_channel=True,
        reduce_range=False,
        rationale="derived: onnxruntime on ARM recommends int8 activations and weights (S8S8) in QDQ form",
        tool="onnxruntime.quantization",
    )

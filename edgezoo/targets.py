"""Target profile loading and validation.

Profiles are TOML files in the top-level ``targets/`` folder, shipped in the package as
``edgezoo.profiles``. A user may also pass the path of their own ``.toml`` file.
"""

from __future__ import annotations

from dataclasses import replace
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


def quant_scheme(target: Target) -> Quantization:
    """The int8 scheme for the target's runtime and instruction set.

    An explicit ``[quantization]`` table in the profile wins; otherwise the scheme is
    derived from facts about the runtime's kernels (measured in benchmarks/ and
    documented by onnxruntime):

    - x86-64: onnxruntime only fuses QDQ convolutions into QLinearConv/ConvInteger kernels
      with unsigned activations and signed weights (U8S8). Without VNNI, u8*s8 pairs can
      saturate the 16-bit accumulation of ``vpmaddubsw``, so weights get 7 bits (reduce_range).
    - ARM64: signed activations and weights (S8S8) in QDQ form, onnxruntime's recommended
      scheme on ARM.
    """
    if target.quantization is not None:
        return target.quantization
    hw = target.hardware
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
        )
    return Quantization(
        activation_type="int8",
        weight_type="int8",
        format="qdq",
        per_channel=True,
        reduce_range=False,
        rationale="derived: onnxruntime on ARM recommends int8 activations and weights (S8S8) in QDQ form",
    )


def with_threads(target: Target, threads: int) -> Target:
    return replace(target, runtime=replace(target.runtime, threads=threads))

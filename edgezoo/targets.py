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
    return [load_target(name) for name in sorted([*_profile_files(), NATIVE])]


NATIVE = "native"  # the machine edgezoo runs on (edgezoo.host): generated, not shipped


@lru_cache(maxsize=None)
def _load_file(path: Path) -> Target:
    data = _strict.read_toml(path)
    target = _strict.load(Target, data, source=str(path))
    return target


def profile_file(name_or_path: str | Path) -> Path:
    """The file a profile id (``raspberrypi``) or path (``./my-board.toml``) names."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text:
        path = Path(text)
        if not path.is_file():
            raise NotFoundError("target profile file", text, hint="check the path, or use a profile id from `edgezoo targets`")
        return path.resolve()
    files = _profile_files()
    if text == NATIVE and NATIVE not in files:
        from edgezoo.host import native_profile_path

        return native_profile_path()
    if text not in files:
        raise NotFoundError("target", text, sorted([*files, NATIVE]))
    return files[text]


def load_target(name_or_path: str | Path) -> Target:
    """A profile by id (``raspberrypi``) or by path (``./my-board.toml``)."""
    text = str(name_or_path)
    path = profile_file(name_or_path)
    target = _load_file(path)
    if text.endswith(".toml") or "/" in text:
        return target
    if target.id != text:
        raise SchemaError(f"{path}: key 'id' is {target.id!r} but the file is named {text!r}.toml")
    return target


def quant_scheme(target: Target, fmt: str | None = None) -> Quantization:
    """The int8 scheme for a format's runtime on the target's instruction set: the
    profile's ``quantization`` table when it has one, otherwise the format's own rule
    (e.g. onnxruntime on x86-64 needs U8S8, with 7-bit weights without VNNI; see each
    format's ``default_quantization``)."""
    from edgezoo import registry

    name, spec = target.format(fmt)
    if spec.quantization is not None:
        return spec.quantization
    return registry.format(name).default_quantization(target, spec)

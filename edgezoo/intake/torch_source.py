"""PyTorch models a user brings: ``module.py:factory`` (the user's code builds the module,
``--weights`` fills it) and ``.pt2`` ExportedPrograms.

Nothing a user hands over is unpickled: weights are safetensors or a checkpoint that
``torch.load(weights_only=True)`` accepts (tensors and containers only), and a ``.pt2``
archive is refused when any member would need the full unpickler."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

from edgezoo.errors import ModelFileError, UsageError, first_line, require


def split_factory(spec: str) -> tuple[Path, str]:
    file, _, name = spec.rpartition(":")
    path = Path(file)
    if not name.isidentifier():
        raise UsageError(f"{spec}: {name!r} is not a Python name", hint="write it as module.py:factory_function")
    if not path.is_file():
        raise UsageError(f"{path} does not exist", hint="check the path of your Python file")
    return path, name


def load_factory(spec: str, weights: Path | None):
    """Run the user's file, call the factory, load the weights; every failure of the user's
    code is one line naming it (the traceback is the error's cause, shown under --debug)."""
    torch = require("torch", extra="torch", purpose="building your PyTorch model")
    import importlib.util

    path, name = split_factory(spec)
    mod_name = f"edgezoo_user_{abs(hash(str(path.resolve())))}"
    module_spec = importlib.util.spec_from_file_location(mod_name, path)
    module = importlib.util.module_from_spec(module_spec)
    sys.path.insert(0, str(path.parent.resolve()))  # the user's own helper modules beside it
    try:
        sys.modules[mod_name] = module
        module_spec.loader.exec_module(module)
    except Exception as exc:
        raise ModelFileError(f"{path} raised {type(exc).__name__} while loading: {first_line(exc)[:200]}",
                             hint="fix the file (run with --debug for its traceback)") from exc
    finally:
        sys.path.pop(0)
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        found = [k for k, v in vars(module).items() if callable(v) and not k.startswith("_") and getattr(v, "__module__", "") == mod_name]
        raise UsageError(f"{path} defines no callable {name!r}", hint=("it defines " + ", ".join(found)) if found else "define a function that returns an nn.Module")
    try:
        model = factory()
    except Exception as exc:
        raise ModelFileError(f"{spec} raised {type(exc).__name__}: {first_line(exc)[:200]}",
                             hint="fix the factory (run with --debug for its traceback)") from exc
    if not isinstance(model, torch.nn.Module):
        raise ModelFileError(f"{spec} returned {type(model).__name__}, not a torch.nn.Module", hint="return the model instance from the factory")
    if weights is not None:
        state = load_weights(weights)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelFileError(f"{weights.name} does not fit {spec}: {first_line(exc)[:240]}",
                                 hint="pass the weights saved from this architecture (model.state_dict())") from None
    return model.eval()


def load_weights(path: Path) -> dict:
    """A state dict of tensors: safetensors, or a checkpoint readable with weights_only=True.
    A pickle carrying anything else is refused before any of it runs."""
    torch = require("torch", extra="torch", purpose="loading PyTorch weights")
    if not path.is_file():
        raise UsageError(f"weights file {path} does not exist", hint="check the path")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFileError(f"{path} is not a readable safetensors file: {first_line(exc)[:200]}") from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # UnpicklingError for objects outside the tensor allowlist, others for junk
        if "weights_only" in str(exc) or "Unsupported global" in str(exc) or type(exc).__name__ == "UnpicklingError":
            raise ModelFileError(f"{path} is a pickle that carries Python objects besides tensors; edgezoo does not unpickle it",
                                 hint="save model.state_dict() with safetensors.torch.save_file, or torch.save(model.state_dict(), ...)") from None
        raise ModelFileError(f"{path} is not a readable PyTorch checkpoint: {first_line(exc)[:200]}") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]  # Lightning-style checkpoints
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelFileError(f"{path} is not a state dict of tensors", hint="save model.state_dict()")
    return state


# -- .pt2 --------------------------------------------------------------------------------


def check_pt2_archive(path: Path) -> None:
    """Refuse a .pt2 archive that ``torch.export.load`` would fully unpickle: pickled
    weights or constants that weights_only refuses, custom or opaque objects."""
    torch = require("torch", extra="torch", purpose="reading .pt2 files")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(f"{path} is not a .pt2 archive: {first_line(exc)}", hint="save it with torch.export.save(ep, 'model.pt2')") from None
    with zf:
        names = zf.namelist()
        if not any(n.endswith("/archive_format") for n in names):
            raise ModelFileError(f"{path} is not a torch.export archive (no archive_format)", hint="save it with torch.export.save(ep, 'model.pt2')")
        for cfg_name in [n for n in names if n.endswith("_config.json") and "/data/" in n]:
            folder = cfg_name.rsplit("/", 1)[0]
            config = json.loads(zf.read(cfg_name)).get("config", {})
            for fqn, meta in config.items():
                member = f"{folder}/{meta.get('path_name', '')}"
                if meta.get("path_name", "").startswith(("custom_obj", "opaque_obj")):
                    raise ModelFileError(f"{path} carries a pickled Python object ({fqn}); edgezoo does not unpickle it",
                                         hint="export a model whose state is tensors only")
                if meta.get("use_pickle"):
                    _weights_only(torch, zf.read(member), path, fqn)
        for n in names:  # legacy constants and sample inputs are torch.save archives too
            if n.endswith(".pt"):
                _weights_only(torch, zf.read(n), path, n.rsplit("/", 1)[-1])


def _weights_only(torch, data: bytes, path: Path, what: str) -> None:
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        raise ModelFileError(f"{path}: {what} is a pickle with Python objects besides tensors; edgezoo does not unpickle it",
                             hint="export a model whose state is tensors only") from None


def load_pt2(path: Path):
    """(module, inputs as [(name, dims with None for dynamic)], output names)."""
    torch = require("torch", extra="torch", purpose="reading .pt2 files")
    if not path.is_file():
        raise UsageError(f"model file {path} does not exist", hint="check the path")
    check_pt2_archive(path)
    try:
        ep = torch.export.load(str(path))
    except Exception as exc:
        raise ModelFileError(f"{path} could not be loaded by torch.export.load: {first_line(exc)[:200]}",
                             hint=f"save it again with torch {torch.__version__}") from exc
    user_inputs = list(ep.graph_signature.user_inputs)
    inputs = []
    for node in ep.graph.nodes:
        if node.op == "placeholder" and node.name in user_inputs:
            val = node.meta.get("val")
            if not isinstance(val, torch.Tensor):
                raise ModelFileError(f"{path}: input {node.name!r} is not a tensor", hint="export with tensor inputs only")
            if val.dtype != torch.float32:
                raise ModelFileError(f"{path}: input {node.name!r} is {val.dtype}; edgezoo exports models with float32 inputs")
            inputs.append((node.name, [int(d) if isinstance(d, int) else None for d in val.shape]))
    outputs = [str(o) for o in ep.graph_signature.user_outputs]
    return ep, inputs, outputs


def pt2_module(ep):
    """A plain module to run, convert and export (ExportedProgram.module() refuses train())."""
    torch = require("torch", extra="torch", purpose="reading .pt2 files")

    class Pt2(torch.nn.Module):
        def __init__(self, gm):
            super().__init__()
            self.gm = gm

        def forward(self, *args):
            return self.gm(*args)

        def train(self, mode: bool = True):  # exporters toggle eval mode; the graph has none
            return self

    return Pt2(ep.module())


def forward_inputs(model) -> list[str]:
    """The positional inputs of ``model.forward`` (names, without defaults)."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters.values()
    except (TypeError, ValueError):
        return ["input"]
    names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return names or ["input"]


def param_count(model) -> int:
    return int(sum(p.numel() for p in model.parameters()))

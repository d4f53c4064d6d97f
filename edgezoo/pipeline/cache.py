"""A content-addressed cache of stage results, shared by every export on the machine.

An entry is the output of one stage (the fp32 build of a format, one precision's variant,
a random model's re-estimated BatchNorm statistics, the source model's reference outputs),
stored under the sha256 of everything that decides it: the stage, the hashes of its inputs
(weights, calibration and evaluation samples, the fp32 file a variant is built from), its
parameters, the versions of the tools involved and a digest of edgezoo's own code. A second
export that differs only in precision, format or budget therefore reuses what it shares
with the first, and a change of any input, tool or edgezoo itself misses.

Entries live in ``$EDGEZOO_CACHE/stages/<key[:2]>/<key>/`` (files plus ``entry.json``).
They are written into a private folder and renamed into place, so a reader sees a whole
entry or none; every file's sha256 is checked when it is copied out (a damaged entry is
removed and the stage runs); hits are copied out before use, so eviction or a concurrent ``cache clear``
never breaks a running export (it recomputes). The cache is bounded
(``$EDGEZOO_CACHE_LIMIT_MB``, default 4096): least recently used entries go first.
``--no-cache`` or ``EDGEZOO_NO_CACHE=1`` bypasses it; ``edgezoo cache info|clear`` inspects
and empties it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from functools import lru_cache
from pathlib import Path

SCHEMA = 1
DEFAULT_LIMIT_MB = 4096
TOOLS = ("torch", "torchvision", "onnx", "onnxsim", "onnxruntime", "openvino", "nncf", "litert-torch", "ai-edge-quantizer",
         "ai-edge-litert", "executorch", "torch-pruning", "onnx2torch", "tflite-micro", "ethos-u-vela", "numpy")


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over edgezoo's own source files: a changed edgezoo never reuses an old entry."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@lru_cache(maxsize=1)
def tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in TOOLS:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def digest_arrays(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        import numpy as np

        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def digest_files(paths) -> str:
    from edgezoo.hashing import sha256_file

    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).name.encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def enabled() -> bool:
    return os.environ.get("EDGEZOO_NO_CACHE", "").strip() not in ("1", "true", "yes")


def root() -> Path:
    from edgezoo.zoo.sources import cache_dir

    return cache_dir() / "stages"


def limit_bytes() -> int:
    try:
        return int(float(os.environ.get("EDGEZOO_CACHE_LIMIT_MB", DEFAULT_LIMIT_MB)) * 1024 * 1024)
    except ValueError:
        return DEFAULT_LIMIT_MB * 1024 * 1024


def key(stage: str, **parts) -> str:
    doc = {"schema": SCHEMA, "stage": stage, "edgezoo_code": code_digest(), "tools": tool_versions(), **parts}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def _entry(k: str) -> Path:
    return root() / k[:2] / k


def get(k: str, dest: Path) -> dict | None:
    """Copy entry ``k``'s files into ``dest`` and return its metadata, or None on a miss (or
    when the entry vanished mid-copy: the caller recomputes)."""
    if not enabled():
        return None
    entry = _entry(k)
    meta_path = entry / "entry.json"
    from edgezoo.hashing import sha256_file

    try:
        meta = json.loads(meta_path.read_text())
        dest.mkdir(parents=True, exist_ok=True)
        for rel in meta["files"]:
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(entry / "files" / rel, target)
            if sha256_file(target) != meta["sha256"][rel]:  # a damaged entry is dropped, never used
                shutil.rmtree(entry, ignore_errors=True)
                return None
        os.utime(meta_path)  # least recently used eviction reads this
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return meta


def put(k: str, stage: str, src: Path, files: list[str], meta: dict) -> None:
    """Store ``files`` (paths relative to ``src``) and ``meta`` as entry ``k``. Never fails the
    export: a cache that cannot be written is skipped."""
    if not enabled():
        return
    try:
        base = root()
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".put-", dir=base))
        try:
            for rel in files:
                target = tmp / "files" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src / rel, target)
            from edgezoo.hashing import sha256_file

            doc = dict(meta, stage=stage, files=list(files), created=time.time(),
                       bytes=sum((tmp / "files" / r).stat().st_size for r in files),
                       sha256={r: sha256_file(tmp / "files" / r) for r in files})
            (tmp / "entry.json").write_text(json.dumps(doc, default=str))
            final = _entry(k)
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.rename(tmp, final)  # atomic; another export that stored the same entry first wins
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        evict()
    except OSError:
        pass


def entries() -> list[dict]:
    out = []
    base = root()
    if not base.is_dir():
        return out
    for meta_path in base.glob("*/*/entry.json"):
        try:
            meta = json.loads(meta_path.read_text())
            meta["path"] = str(meta_path.parent)
            meta["used"] = meta_path.stat().st_mtime
            out.append(meta)
        except (OSError, ValueError):
            continue
    return out


def evict(limit: int | None = None) -> int:
    """Remove least recently used entries until the cache fits ``limit`` bytes; returns how many went."""
    limit = limit_bytes() if limit is None else limit
    items = sorted(entries(), key=lambda e: e["used"])
    total = sum(e.get("bytes", 0) for e in items)
    gone = 0
    for e in items:
        if total <= limit:
            break
        shutil.rmtree(e["path"], ignore_errors=True)
        total -= e.get("bytes", 0)
        gone += 1
    return gone


def info() -> dict:
    items = entries()
    by_stage: dict[str, dict] = {}
    for e in items:
        s = by_stage.setdefault(e.get("stage", "?"), {"entries": 0, "bytes": 0})
        s["entries"] += 1
        s["bytes"] += e.get("bytes", 0)
    return {"path": str(root()), "entries": len(items), "bytes": sum(e.get("bytes", 0) for e in items), "limit_bytes": limit_bytes(),
            "enabled": enabled(), "stages": by_stage}


def clear() -> int:
    n = len(entries())
    base = root()
    if base.exists():
        # rename first, then delete: an export copying an entry out sees it gone and recomputes
        trash = base.with_name(f".stages-trash-{os.getpid()}-{time.time_ns()}")
        try:
            os.rename(base, trash)
        except OSError:
            trash = base
        shutil.rmtree(trash, ignore_errors=True)
    return n

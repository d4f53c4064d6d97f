"""Weight sources: files shipped in the package, or URLs fetched into a checksummed cache.

The cache lives in ``$EDGEZOO_CACHE`` (default ``~/.cache/edgezoo``). A download goes to a
temporary file in the cache folder and is renamed into place only after its size and
sha256 match the card, so an interrupted or corrupt download never poisons the cache.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from edgezoo.hashing import sha256_file
from edgezoo.errors import FetchError, UsageError, VerificationError
from edgezoo.schemas.card import WeightsSource

CHUNK = 1 << 20


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEZOO_CACHE") or Path.home() / ".cache" / "edgezoo")


def _check(path: Path, src: WeightsSource, what: str) -> None:
    size = path.stat().st_size
    if size != src.bytes:
        raise VerificationError(
            f"{what} has {size} bytes, the card expects {src.bytes}",
            hint="the file is truncated or not the published weights; delete it and fetch again",
        )
    digest = sha256_file(path)
    if digest != src.sha256:
        raise VerificationError(
            f"{what} has sha256 {digest[:16]}..., the card expects {src.sha256[:16]}...",
            hint="the file is corrupt or not the published weights; delete it and fetch again",
        )


def cached_path(src: WeightsSource) -> Path:
    name = Path(src.url or src.path or "weights").name
    return cache_dir() / "weights" / f"{src.sha256[:16]}-{name}"


def download(url: str, dest: Path, src: WeightsSource, progress: Callable[[int, int], None] | None = None, timeout: float = 30.0) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=dest.parent)
    try:
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    total = int(resp.headers.get("Content-Length") or src.bytes)
                    while True:
                        block = resp.read(CHUNK)
                        if not block:
                            break
                        out.write(block)
                        h.update(block)
                        done += len(block)
                        if progress:
                            progress(done, total)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if isinstance(exc, urllib.error.HTTPError):
                    reason = f"HTTP {exc.code} {exc.reason}"
                else:
                    reason = getattr(exc, "reason", None) or exc
                raise FetchError(
                    f"cannot fetch weights from {url}: {reason}",
                    hint="offline? pass a local copy with --weights PATH, or --weights random for a latency-only run",
                ) from None
        if done != src.bytes or h.hexdigest() != src.sha256:
            raise VerificationError(
                f"download from {url} gave {done} bytes with sha256 {h.hexdigest()[:16]}..., "
                f"the card expects {src.bytes} bytes with sha256 {src.sha256[:16]}...",
                hint="the server sent something other than the published weights; nothing was cached",
            )
        os.replace(tmp, dest)
        return dest
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def resolve_weights(src: WeightsSource, *, local: Path | None = None, progress=None) -> Path:
    """A verified local path for ``src``: the packaged file, a user's copy, the cache, or a download."""
    if local is not None:
        if not local.is_file():
            raise UsageError(f"weights file {local} does not exist", hint="pass the path of a local copy, or --weights random")
        _check(local, src, f"weights file {local}")
        return local
    if src.kind == "package":
        path = Path(str(resources.files("edgezoo.zoo") / src.path))
        if not path.is_file():
            raise FetchError(f"packaged weights {src.path} are missing from this installation", hint="reinstall edgezoo")
        _check(path, src, f"packaged weights {src.path}")
        return path
    dest = cached_path(src)
    if dest.is_file():
        try:
            _check(dest, src, f"cached weights {dest}")
            return dest
        except VerificationError:
            dest.unlink()  # a damaged cache entry is refetched, never used
    return download(src.url, dest, src, progress=progress)

